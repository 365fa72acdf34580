import type { TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { tenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { foldTenantSnapshot } from '../config-history/tenant-config.js';
import { readTenantEvents, type TenantEventSource } from '../config-history/tenant-events.js';

/**
 * The tenant's snapshot after the event at `position`, exactly as the snapshot projector built it
 * (the config-at-position fold), with the hashes of every API key issued to the tenant up to then, so
 * a key no longer in the snapshot can be told apart as revoked (or rotated out) rather than unknown.
 * Stays inside the control plane: the hashes are never part of an answer.
 */
export type ExplainSnapshotAt =
  | { status: 'absent' }
  | { status: 'deleted'; version: string }
  | {
      status: 'live';
      snapshot: TenantSnapshot;
      issuedKeyHashes: Map<string, { api_key_id: string; name: string }>;
    };

export async function explainSnapshotAt(
  source: TenantEventSource,
  tenantId: string,
  position: bigint,
): Promise<ExplainSnapshotAt> {
  const events = await readTenantEvents(source, tenantId, position);
  const state = foldTenantSnapshot(events);
  if (state === undefined) return { status: 'absent' };
  if (state.status === 'deleted') return { status: 'deleted', version: state.version.toString() };
  const issuedKeyHashes = new Map<string, { api_key_id: string; name: string }>();
  for (const event of events) {
    if (event.type === 'ApiKeyIssued') {
      issuedKeyHashes.set(event.data.key_hash, { api_key_id: event.data.api_key_id, name: event.data.name });
    }
  }
  // Decoded as a gateway decodes a snapshot from the bus (defaults applied).
  return { status: 'live', snapshot: tenantSnapshot.parse(state.snapshot), issuedKeyHashes };
}
