import type { EventStore } from '@vantageedge/shared/event-store/port';
import { type StructuredLogger, silentLogger } from '@vantageedge/shared/observability/logger';
import type pg from 'pg';
import { advanceCheckpoint, lockCheckpoint } from '../runner/checkpoint.js';
import { inTransaction } from '../runner/in-transaction.js';
import { clearParkedEvents } from '../runner/parked-events.js';
import { applyWithQuarantine } from '../runner/quarantine.js';
import { moveChangedSnapshotsForward, rememberSnapshotsBeforeRefold } from './refold-versions.js';
import { snapshotProjection } from './snapshot-projection.js';

export interface SnapshotRefoldOptions {
  store: EventStore;
  pool: pg.Pool;
  /** Events read and folded at a time. */
  batchSize?: number | undefined;
  logger?: StructuredLogger | undefined;
  /** Checkpoint row name (tests run several projectors in one database). */
  name?: string | undefined;
}

export interface SnapshotRefoldResult {
  events: number;
  position: bigint;
  /** Events parked again: a fold still failing, and its tenant's later events. */
  parkedEvents: number;
  /**
   * Tenants whose refolded snapshot differs from the one before, not at a higher version: published
   * under `position` instead (refold-versions.ts).
   */
  movedForward: string[];
}

/**
 * Rebuilds every gateway snapshot (`snapshot_state`) from the whole log: the recovery after the
 * snapshot fold was fixed for a quarantined tenant. One transaction holds the snapshot projection's
 * checkpoint row (the running projector waits), empties `snapshot_state`, forgets the projection's
 * parked events and folds the log from position 0 with a fresh quarantine (an event that still fails
 * is parked again at once, with its tenant's later events), then sets the checkpoint. A tenant whose
 * refolded snapshot differs from its snapshot before, at a version not above it (the fold now refuses
 * one of its events, or reads them differently), gets the refold's position as its version, so its
 * gateways take it (refold-versions.ts). Every tenant's snapshot is then unpublished: the running
 * projector's publisher sends them all within its poll interval (the same versions as before for
 * tenants that did not change, which gateways ignore).
 */
export async function refoldSnapshots(options: SnapshotRefoldOptions): Promise<SnapshotRefoldResult> {
  const { store, pool, batchSize = 2000, logger = silentLogger } = options;
  const projection = snapshotProjection({ name: options.name });
  return inTransaction(pool, async (client) => {
    await lockCheckpoint(client, projection.name);
    await rememberSnapshotsBeforeRefold(client);
    await client.query('delete from snapshot_state');
    await clearParkedEvents(client, projection.name);
    let quarantined: ReadonlyMap<string, bigint> = new Map();
    const result: SnapshotRefoldResult = { events: 0, position: 0n, parkedEvents: 0, movedForward: [] };
    for (;;) {
      const batch = await store.readAll({ fromPosition: result.position, maxCount: batchSize });
      const last = batch.at(-1);
      if (!last) break;
      const outcome = await applyWithQuarantine(client, batch, {
        parkAs: projection.name,
        handle: (events) => projection.handle(events, { client }),
        canHandle: projection.canHandle,
        appliesWhileQuarantined: projection.appliesWhileQuarantined,
        quarantined,
        parkFailed: () => true,
      });
      quarantined = outcome.quarantined;
      for (const { event, tenantId, reason, error } of outcome.parked) {
        if (reason === 'failed') {
          logger.error('snapshot refold parked an event', {
            position: event.position.toString(),
            tenant_id: tenantId,
            event_type: event.type,
            error,
          });
        }
      }
      result.parkedEvents += outcome.parked.length;
      result.events += batch.length;
      result.position = last.position;
    }
    result.movedForward = await moveChangedSnapshotsForward(client, result.position);
    await advanceCheckpoint(client, projection.name, result.position);
    return result;
  });
}
