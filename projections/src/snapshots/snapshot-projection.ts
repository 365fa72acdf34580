import { type ControlPlaneEvent, isControlPlaneEvent } from '@vantageedge/shared/domain/events';
import type { RecordedEvent } from '@vantageedge/shared/event-store/port';
import { type StructuredLogger, silentLogger } from '@vantageedge/shared/observability/logger';
import { Counter, type Registry } from 'prom-client';
import type { ProjectionDefinition } from '../runner/projection.js';
import { foldSnapshotEvent, type SnapshotState, snapshotTenantOf } from './fold.js';
import { KeptSnapshots } from './kept-snapshots.js';
import { SNAPSHOT_PROJECTION } from './snapshot-state.js';
import { loadStates, saveStates } from './snapshot-state-store.js';

export interface SnapshotProjectionOptions {
  /** Checkpoint row name (tests run several projectors in one database). */
  name?: string | undefined;
  logger?: StructuredLogger | undefined;
  registry?: Registry | undefined;
  /** Most JSON bytes of the snapshots kept between batches (KeptSnapshots). Default DEFAULT_KEPT_SNAPSHOT_BYTES. */
  keptSnapshotBytes?: number | undefined;
}

/**
 * Per-tenant gateway snapshots (`snapshot_state`) as one projection of the log: each batch loads the
 * touched tenants' states (locked; the ones it saved last are kept in memory and not read back), folds
 * the events into them, and saves the changed ones with a new version, each once per batch. Publishing
 * them is the snapshot publisher's job, after commit.
 */
export function snapshotProjection(
  options: SnapshotProjectionOptions = {},
): ProjectionDefinition<ControlPlaneEvent> {
  const logger = options.logger ?? silentLogger;
  const kept = new KeptSnapshots(options.keptSnapshotBytes);
  const skipped = new Counter({
    name: 'vantageedge_snapshot_fold_errors_total',
    help: 'Events whose data did not fit the snapshot schema and were skipped',
    registers: options.registry ? [options.registry] : [],
  });

  function foldInto(
    states: Map<string, SnapshotState>,
    changed: Map<string, SnapshotState>,
    event: ControlPlaneEvent,
    tenantId: string,
  ): void {
    const before = states.get(tenantId);
    let after: SnapshotState | undefined;
    try {
      after = foldSnapshotEvent(before, event);
    } catch (error) {
      // A poison event must not stop every tenant's updates.
      skipped.inc();
      logger.error('snapshot projector skipped an event that does not fit the snapshot', {
        tenant_id: tenantId,
        event_type: event.type,
        position: event.position.toString(),
        error: (error as Error).message,
      });
      return;
    }
    if (after && after !== before) {
      states.set(tenantId, after);
      changed.set(tenantId, after);
    }
  }

  return {
    name: options.name ?? SNAPSHOT_PROJECTION,
    canHandle: (event: RecordedEvent): event is ControlPlaneEvent =>
      isControlPlaneEvent(event) && snapshotTenantOf(event) !== null,
    async handle(events, { client }) {
      const tenantIds = [...new Set(events.map((event) => snapshotTenantOf(event)!))];
      const states = await loadStates(client, tenantIds, kept.pick(tenantIds));
      const changed = new Map<string, SnapshotState>();
      for (const event of events) foldInto(states, changed, event, snapshotTenantOf(event)!);
      const saved = await saveStates(client, [...changed.values()]);
      for (const [tenantId, state] of changed) kept.remember(tenantId, state, saved.get(tenantId));
    },
  };
}
