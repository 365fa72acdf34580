import type { TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { tenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { snapshotJsonBytes } from '@vantageedge/shared/snapshot-bus/codec';
import type { TenantAccess } from '../auth/caller.js';
import { configReadBudgetOf } from '../config-history/config-read-budget.js';
import type { TenantEventSource } from '../config-history/tenant-events.js';
import { tenantFoldAt } from '../config-history/tenant-folds.js';
import { KeptSnapshots } from './kept-snapshots.js';

/**
 * The tenant's snapshot after the event at `position`, exactly as the snapshot projector built it
 * (the config-at-position fold). Folded on from the tenant's cached fold when it is not later than
 * `position` (tenant-folds.ts).
 */
export type ExplainSnapshotAt =
  | { status: 'absent' }
  | { status: 'deleted'; version: string }
  | {
      status: 'live';
      /** Shared by the explains of this config: read only. */
      snapshot: TenantSnapshot;
    };

export async function explainSnapshotAt(
  source: TenantEventSource,
  tenantId: string,
  position: bigint,
  /** The caller's: readers' explains are paid from the tenant's readers' bucket (config-read-budget.ts). */
  access: Exclude<TenantAccess, 'none'>,
): Promise<ExplainSnapshotAt> {
  const budget = configReadBudgetOf(source.store, access);
  budget.admit(tenantId);
  const charged = { ...source, chargedToReadBudget: true, chargedToReaders: access !== 'write' };
  const { state } = await tenantFoldAt(charged, tenantId, position);
  if (state === undefined) return { status: 'absent' };
  if (state.status === 'deleted') return { status: 'deleted', version: state.version.toString() };
  // Counted from the cached (frozen) fold, before the whole snapshot is decoded.
  budget.spend(tenantId, [state.snapshot]);
  const known = keptDecoded.get(state.snapshot);
  if (known !== undefined) return { status: 'live', snapshot: known };
  // Decoded now: its explains build its route matcher (explain-request.ts) once, paid here.
  budget.spendRouteMatcherBuild(tenantId, state.snapshot.routes);
  return { status: 'live', snapshot: decodedSnapshotOf(state.snapshot) };
}

/**
 * Decoded snapshots by the fold's snapshot, which folds share while the tenant is unchanged. Bounded
 * (kept-snapshots.ts): the cache of folds counts only their JSON, and what explains derive from a
 * decoded snapshot (its route matcher, its routes' compiled patterns) is ten times that or more.
 */
const keptDecoded = new KeptSnapshots<TenantSnapshot>();

/**
 * Decoded as a gateway decodes a snapshot from the bus (defaults applied), once per folded snapshot
 * while it is kept (≈270 ms for a 13 MB tenant). Shared by every explain of it: read, never changed.
 */
export function decodedSnapshotOf(folded: TenantSnapshot): TenantSnapshot {
  let snapshot = keptDecoded.get(folded);
  if (snapshot === undefined) {
    snapshot = tenantSnapshot.parse(folded);
    keptDecoded.set(folded, snapshot, snapshotJsonBytes(folded));
  }
  return snapshot;
}
