import { isControlPlaneEvent } from '@vantageedge/shared/domain/events';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import { type StructuredLogger, silentLogger } from '@vantageedge/shared/observability/logger';
import type pg from 'pg';
import { advanceCheckpoint, lockCheckpoint } from '../runner/checkpoint.js';
import { inTransaction } from '../runner/in-transaction.js';
import { clearParkedEvents } from '../runner/parked-events.js';
import { applyWithQuarantine } from '../runner/quarantine.js';
import {
  type DroppedTenant,
  type RecordedDrop,
  RefoldWouldDropTenantsError,
  type RefusedEvent,
  recordDrops,
  rollBackDrops,
  type TombstoneAt,
  tenantsLostByRefold,
  writeTombstones,
} from './refold-drops.js';
import { moveChangedSnapshotsForward, rememberSnapshotsBeforeRefold } from './refold-versions.js';
import { snapshotProjection } from './snapshot-projection.js';
import { SNAPSHOT_PROJECTION } from './snapshot-state.js';

export interface SnapshotRefoldOptions {
  store: EventStore;
  pool: pg.Pool;
  /** Events read and folded at a time. */
  batchSize?: number | undefined;
  logger?: StructuredLogger | undefined;
  /** Checkpoint row name (tests run several projectors in one database). */
  name?: string | undefined;
  /**
   * Take the tenants whose creation the fold now refuses off every gateway (a tombstone each, and a
   * TenantDroppedFromGateways event in their streams for the audit log). Without it, a refold that would
   * leave a served tenant without a snapshot throws RefoldWouldDropTenantsError and changes nothing.
   */
  dropUnfoldableTenants?: boolean | undefined;
  /** Who the drop events name as their actor. */
  actor?: string | undefined;
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
  /** Tenants taken off the gateways (dropUnfoldableTenants), with the event their fold refused. */
  dropped: DroppedTenant[];
}

export { RefoldWouldDropTenantsError, rollBackDrops } from './refold-drops.js';
export const REFOLD_ACTOR = 'system:snapshot-refold';

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
 * tenants that did not change, which gateways ignore). A tenant served before whose creation the fold
 * now refuses is dropped only when asked (refold-drops.ts); otherwise the refold throws, changing nothing.
 * A refold that fails after recording a drop records that the drop did not happen.
 */
export async function refoldSnapshots(options: SnapshotRefoldOptions): Promise<SnapshotRefoldResult> {
  const { store, pool, logger = silentLogger } = options;
  const actor = options.actor ?? REFOLD_ACTOR;
  const recorded = new Map<string, RecordedDrop>();
  try {
    return await refoldInTransaction(options, actor, recorded);
  } catch (error) {
    if (recorded.size === 0) throw error;
    const unsettled = await rollBackDrops(
      store,
      pool,
      recorded,
      error,
      actor,
      options.name ?? SNAPSHOT_PROJECTION,
    );
    if (unsettled.length === 0) throw error;
    const drops = unsettled.map((tenantId) => `${tenantId} at position ${recorded.get(tenantId)?.position}`);
    logger.error('snapshot refold failed after recording drops it could not record as rolled back', {
      drops,
    });
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(
      `${message}; the audit log holds TenantDroppedFromGateways of tenant(s) ${drops.join(', ')}, which ` +
        'this failed refold may not have dropped and could not record as rolled back (their snapshot_state ' +
        'tells: a tombstone at that position is the drop)',
      { cause: error },
    );
  }
}

async function refoldInTransaction(
  options: SnapshotRefoldOptions,
  actor: string,
  recorded: Map<string, RecordedDrop>,
): Promise<SnapshotRefoldResult> {
  const { store, pool, batchSize = 2000, logger = silentLogger } = options;
  const projection = snapshotProjection({ name: options.name });
  return inTransaction(pool, async (client) => {
    await lockCheckpoint(client, projection.name);
    await rememberSnapshotsBeforeRefold(client);
    await client.query('delete from snapshot_state');
    await clearParkedEvents(client, projection.name);
    let quarantined: ReadonlyMap<string, bigint> = new Map();
    const refused = new Map<string, RefusedEvent>();
    const deletions = new Map<string, TombstoneAt>();
    const result: SnapshotRefoldResult = {
      events: 0,
      position: 0n,
      parkedEvents: 0,
      movedForward: [],
      dropped: [],
    };
    /** Folds the log from `result.position` to its end. */
    const foldToEnd = async () => {
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
          const first = tenantId === null ? undefined : refused.get(tenantId);
          if (reason === 'failed') {
            logger.error('snapshot refold parked an event', {
              position: event.position.toString(),
              tenant_id: tenantId,
              event_type: event.type,
              error,
            });
            if (tenantId !== null && !first) {
              refused.set(tenantId, {
                position: event.position,
                eventType: event.type,
                error,
                laterEvents: 0,
              });
            }
          } else if (first) {
            first.laterEvents += 1;
          }
        }
        // A refused tenant's deletion (applied while quarantined, to no state): where its tombstone stands.
        for (const event of batch) {
          if (
            isControlPlaneEvent(event) &&
            event.type === 'TenantDeleted' &&
            refused.has(event.data.tenant_id)
          ) {
            deletions.set(event.data.tenant_id, {
              position: event.position,
              occurredAt: event.metadata.occurred_at,
            });
          }
        }
        result.parkedEvents += outcome.parked.length;
        result.events += batch.length;
        result.position = last.position;
      }
    };
    await foldToEnd();
    const lost = await tenantsLostByRefold(client, refused, deletions);
    if (lost.length > 0) {
      if (!options.dropUnfoldableTenants) throw new RefoldWouldDropTenantsError(lost);
      await recordDrops(store, lost, actor, recorded);
      await foldToEnd();
      await writeTombstones(client, recorded);
      for (const tenant of lost) {
        logger.error('snapshot refold dropped a tenant from the gateways', {
          tenant_id: tenant.tenantId,
          position: tenant.position?.toString() ?? null,
          event_type: tenant.eventType,
          error: tenant.error,
        });
      }
      result.dropped = lost;
    }
    result.movedForward = await moveChangedSnapshotsForward(client, result.position);
    await advanceCheckpoint(client, projection.name, result.position);
    return result;
  });
}
