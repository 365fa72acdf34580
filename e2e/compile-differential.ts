import type {
  ApiResponse,
  ControlPlaneHarness,
} from '@vantageedge/control-plane/testing/control-plane-harness';
import { foldSnapshotEvent, type SnapshotState } from '@vantageedge/projections/snapshots/fold';
import { type ControlPlaneEvent, isControlPlaneEvent } from '@vantageedge/shared/domain/events';
import type { TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { decodeSnapshotRecord, encodeSnapshotMessage } from '@vantageedge/shared/snapshot-bus/codec';

/**
 * What the command-to-compile differential tests share: the tenant's snapshot as a replica receives it
 * from the events the admin API stored, and the judgement of an admin API answer.
 */

type StoredEvents = Awaited<ReturnType<ControlPlaneHarness['allEvents']>>;

/**
 * The tenant's snapshot as the snapshot projector folds it, then encoded on the bus and decoded
 * (validated) again as a replica does. An event that does not fit the snapshot (which the projector
 * would park, quarantining the tenant) is left out and reported through `skipped`.
 */
export function replicaSnapshot(
  events: StoredEvents,
  tenantId: string,
  skipped: (event: ControlPlaneEvent, message: string) => void,
): TenantSnapshot {
  let state: SnapshotState | undefined;
  for (const event of events) {
    if (!isControlPlaneEvent(event)) continue;
    if ((event.data as { tenant_id?: string }).tenant_id !== tenantId) continue;
    try {
      state = foldSnapshotEvent(state, event);
    } catch (error) {
      skipped(event, (error as Error).message);
    }
  }
  if (state?.status !== 'live') throw new Error('the tenant has no live snapshot');
  const record = encodeSnapshotMessage(
    { kind: 'snapshot', tenantId, version: BigInt(state.snapshot.version), snapshot: state.snapshot },
    64 * 1024 * 1024,
  );
  const decoded = decodeSnapshotRecord(record);
  if (!decoded.ok) throw new Error(`the gateway refuses the snapshot: ${decoded.reason}`);
  if (decoded.message.kind !== 'snapshot') throw new Error('the snapshot decoded as a tombstone');
  return decoded.message.snapshot;
}

/**
 * The problem with a command's answer, or null: a 5xx, or a 4xx whose details name no field `names`
 * accepts (a body over the admin API's size limit is refused whole, before any field is read).
 */
export function answerProblem(response: ApiResponse, names: (field: string) => boolean): string | null {
  if (response.status >= 500) return `${response.status}: ${JSON.stringify(response.body)}`;
  if (response.status < 400) return null;
  const error = (response.body as { error?: { code?: unknown; details?: Array<{ field?: string }> } }).error;
  if (response.status === 413 && error?.code === 'payload_too_large') return null;
  const named = (error?.details ?? []).some((detail) => names(detail.field ?? ''));
  return typeof error?.code === 'string' && named
    ? null
    : `${response.status} names no field: ${JSON.stringify(error)}`;
}
