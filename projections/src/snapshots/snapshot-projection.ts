import {
  type ControlPlaneEvent,
  isControlPlaneEvent,
  isTenantDeletion,
} from '@vantageedge/shared/domain/events';
import type { RecordedEvent } from '@vantageedge/shared/event-store/port';
import { statementDeadlineOf } from '@vantageedge/shared/postgres/connection-liveness';
import type pg from 'pg';
import { inTransaction } from '../runner/in-transaction.js';
import type { ProjectionDefinition } from '../runner/projection.js';
import { foldSnapshotEvent, type SnapshotState, snapshotTenantOf } from './fold.js';
import { KeptSnapshots } from './kept-snapshots.js';
import { SNAPSHOT_PROJECTION } from './snapshot-state.js';
import { loadJsonBytes, loadStates, type SavedState, saveStates } from './snapshot-state-store.js';
import { StoredSizes } from './stored-sizes.js';

export interface SnapshotProjectionOptions {
  /** Checkpoint row name (tests run several projectors in one database). */
  name?: string | undefined;
  /** Most JSON bytes of the snapshots kept between batches (KeptSnapshots). Default DEFAULT_KEPT_SNAPSHOT_BYTES. */
  keptSnapshotBytes?: number | undefined;
  /**
   * Where the tenants folded beside a large one are stored ahead of it (see STORE_AHEAD_OF_BYTES), in
   * a transaction of their own; without it every tenant of a batch is stored in the batch's.
   */
  pool?: pg.Pool | undefined;
  /** Called after tenants were stored ahead (the publisher may send them before the batch commits). */
  onStoredAhead?: (() => void) | undefined;
}

/**
 * A batch that folds a tenant whose stored snapshot has more JSON than this stores the batch's other
 * tenants first, in a transaction of their own: storing the large one takes hundreds of milliseconds
 * (one of up to 2 MiB is written whole for each of its changes), and a tenant changed meanwhile would
 * otherwise reach the gateways only after it.
 */
export const STORE_AHEAD_OF_BYTES = 1024 * 1024;

/** The position of the last event that changed a state. */
function versionOf(state: SnapshotState): bigint {
  return state.status === 'live' ? BigInt(state.snapshot.version) : state.version;
}

/**
 * Per-tenant gateway snapshots (`snapshot_state`) as one projection of the log: each batch loads the
 * touched tenants' states (locked; the ones it saved last are kept in memory and not read back), folds
 * the events into them, and saves the changed ones with a new version, each once per batch (the tenants
 * beside a large one first, in a transaction of their own: STORE_AHEAD_OF_BYTES). Publishing them is the
 * snapshot publisher's job, after commit.
 */
export function snapshotProjection(
  options: SnapshotProjectionOptions = {},
): ProjectionDefinition<ControlPlaneEvent> {
  const kept = new KeptSnapshots(options.keptSnapshotBytes);
  const storedSizes = new StoredSizes();

  function foldInto(
    states: Map<string, SnapshotState>,
    changed: Map<string, SnapshotState>,
    event: ControlPlaneEvent,
    tenantId: string,
  ): void {
    const before = states.get(tenantId);
    // Stored ahead of the checkpoint by a batch that then rolled back (or did not commit before a
    // crash): the stored state already holds it. A state's version is the position of the last event
    // that changed it, and the events after it changed nothing, so folding them again changes nothing.
    if (before && event.position <= versionOf(before)) return;
    // An event the fold refuses throws: the runner parks it and quarantines the tenant (its gateways
    // keep the config from before it), rather than folding the tenant's later events over the gap.
    const after = foldSnapshotEvent(before, event);
    if (after && after !== before) {
      states.set(tenantId, after);
      changed.set(tenantId, after);
    }
  }

  return {
    name: options.name ?? SNAPSHOT_PROJECTION,
    canHandle: (event: RecordedEvent): event is ControlPlaneEvent =>
      isControlPlaneEvent(event) && snapshotTenantOf(event) !== null,
    appliesWhileQuarantined: isTenantDeletion,
    async handle(events, { client }) {
      const ahead = options.pool ? await tenantsAhead(client, events) : new Set<string>();
      const storedAhead = ahead.size > 0 ? await storeAhead(options.pool!, events, ahead) : new Set<string>();
      const rest =
        storedAhead.size > 0 ? events.filter((event) => !storedAhead.has(snapshotTenantOf(event)!)) : events;
      if (rest.length > 0) await foldAndSave(client, rest);
    },
  };

  /**
   * The batch's tenants to store ahead of its large ones: none unless it folds both kinds. Sizes not
   * known since the projector started (or forgotten) are read from their rows first.
   */
  async function tenantsAhead(
    client: pg.PoolClient,
    events: readonly ControlPlaneEvent[],
  ): Promise<Set<string>> {
    const tenantIds = [...new Set(events.map((event) => snapshotTenantOf(event)!))];
    if (tenantIds.length < 2) return new Set();
    const unknown = tenantIds.filter((tenantId) => storedSizes.of(tenantId) === undefined);
    if (unknown.length > 0) {
      for (const [tenantId, bytes] of await loadJsonBytes(client, unknown))
        storedSizes.record(tenantId, bytes);
    }
    const small = tenantIds.filter((tenantId) => (storedSizes.of(tenantId) ?? 0) <= STORE_AHEAD_OF_BYTES);
    return small.length < tenantIds.length ? new Set(small) : new Set();
  }

  /**
   * Folds and stores these tenants' events in a transaction of their own, committed before the batch's;
   * returns the tenants it folded (their stored states hold all their events of the batch). The batch's transaction holds the checkpoint row, so no other
   * projector or refold writes meanwhile; should it roll back, the events are folded again and skipped
   * as already in these states (foldInto). A row held by another transaction (the publisher marking it
   * sent, or this batch's own transaction in a retry of part of the batch) is left to the batch.
   */
  async function storeAhead(
    pool: pg.Pool,
    events: readonly ControlPlaneEvent[],
    tenantIds: ReadonlySet<string>,
  ): Promise<Set<string>> {
    const result = await inTransaction(
      pool,
      (aheadClient) =>
        foldAndSave(
          aheadClient,
          events.filter((event) => tenantIds.has(snapshotTenantOf(event)!)),
          { skipLocked: true, remember: false },
        ),
      { idleTimeoutMs: statementDeadlineOf(pool) },
    );
    for (const [tenantId, { state, saved }] of result.saved) kept.remember(tenantId, state, saved);
    if (result.saved.size > 0) options.onStoredAhead?.();
    return result.loaded;
  }

  /**
   * Loads the events' tenants (with `skipLocked`, those whose rows are free, and only their events are
   * folded), folds and saves them. Returns the tenants loaded and the states saved.
   */
  async function foldAndSave(
    client: pg.PoolClient,
    events: readonly ControlPlaneEvent[],
    { skipLocked = false, remember = true }: { skipLocked?: boolean; remember?: boolean } = {},
  ): Promise<{
    loaded: Set<string>;
    saved: Map<string, { state: SnapshotState; saved: SavedState | undefined }>;
  }> {
    const tenantIds = [...new Set(events.map((event) => snapshotTenantOf(event)!))];
    const states = await loadStates(client, tenantIds, kept.pick(tenantIds), { skipLocked });
    const loaded = skipLocked ? new Set(states.keys()) : new Set(tenantIds);
    const changed = new Map<string, SnapshotState>();
    for (const event of events) {
      const tenantId = snapshotTenantOf(event)!;
      if (loaded.has(tenantId)) foldInto(states, changed, event, tenantId);
    }
    const savedStates = await saveStates(client, [...changed.values()]);
    const saved = new Map<string, { state: SnapshotState; saved: SavedState | undefined }>();
    for (const [tenantId, state] of changed) {
      const savedState = savedStates.get(tenantId);
      if (savedState) storedSizes.record(tenantId, savedState.jsonBytes);
      saved.set(tenantId, { state, saved: savedState });
      if (remember) kept.remember(tenantId, state, savedState);
    }
    return { loaded, saved };
  }
}
