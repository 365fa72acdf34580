import { type ControlPlaneEvent, isControlPlaneEvent } from '@vantageedge/shared/domain/events';
import type { EventStore, RecordedEvent } from '@vantageedge/shared/event-store/port';
import type { SnapshotBus } from '@vantageedge/shared/snapshot-bus/port';
import type pg from 'pg';
import { Counter, Gauge, type Registry } from 'prom-client';
import { traceBatch, tracePublish } from '../shared/batch-tracing.js';
import { createProjectorMetrics } from '../shared/projector-metrics.js';
import { batches } from './batches.js';
import { foldSnapshotEvent, type SnapshotState, snapshotTenantOf } from './fold.js';
import {
  advanceCheckpoint,
  loadStates,
  loadUnpublished,
  lockCheckpoint,
  markFailed,
  markPublished,
  readCheckpoint,
  saveStates,
} from './snapshot-state-store.js';

export const SNAPSHOT_PROJECTION = 'gateway_snapshots';

export interface ProjectorLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export interface SnapshotProjectorOptions {
  store: EventStore;
  pool: pg.Pool;
  bus: SnapshotBus;
  logger?: ProjectorLogger;
  registry?: Registry;
  batchSize?: number;
  /** Snapshots published per bus call. */
  publishBatchSize?: number;
  /** First back-off after an error (ms); doubles up to 10 s (5 s for publishing). */
  retryDelayMs?: number;
  /** Checkpoint row name (tests run several projectors in one database). */
  name?: string;
  /**
   * How often the publisher looks for unacknowledged snapshots while no event arrives (ms): picks up
   * rows that `requestSnapshotRepublish` marked for publishing again. Default 5000.
   */
  publishPollMs?: number;
}

export interface SnapshotProjector {
  readonly done: Promise<void>;
  /** Last committed event position. */
  checkpoint(): bigint;
  /** Resolves once every committed snapshot has been acknowledged by the bus (tests, benchmarks). */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

const silent: ProjectorLogger = { info() {}, warn() {}, error() {} };

function projectorMetrics(registry: Registry | undefined) {
  const registers = registry ? [registry] : [];
  return {
    position: new Gauge({
      name: 'vantageedge_snapshot_projector_position',
      help: 'Global event position the snapshot projector has committed',
      registers,
    }),
    published: new Counter({
      name: 'vantageedge_snapshot_published_total',
      help: 'Snapshots and tombstones acknowledged by the snapshot bus',
      registers,
    }),
    failures: new Counter({
      name: 'vantageedge_snapshot_publish_failures_total',
      help: 'Snapshot publications that failed, by reason (too_large is permanent until the next change)',
      labelNames: ['reason'] as const,
      registers,
    }),
    skipped: new Counter({
      name: 'vantageedge_snapshot_fold_errors_total',
      help: 'Events whose data did not fit the snapshot schema and were skipped',
      registers,
    }),
  };
}

/**
 * Folds the event log into per-tenant gateway snapshots (`snapshot_state`) and publishes each changed
 * tenant to the snapshot bus.
 *
 * - Each batch of events is folded in one transaction that also advances the checkpoint.
 * - Publishing happens after commit, from the table: every row whose version the bus has not
 *   acknowledged is (re)published, so a crash between commit and publish only delays it (at least
 *   once; consumers drop versions they already have). Only the newest version of a tenant is sent.
 * - A snapshot the bus refuses for good (too large even gzipped) is logged as an error, counted, and
 *   recorded in `publish_error`; the tenant is published again when its config changes.
 */
export function startSnapshotProjector(options: SnapshotProjectorOptions): SnapshotProjector {
  const { store, pool, bus, logger = silent, batchSize = 500, publishBatchSize = 200 } = options;
  const name = options.name ?? SNAPSHOT_PROJECTION;
  const baseDelay = options.retryDelayMs ?? 250;
  const metrics = projectorMetrics(options.registry);
  const common = options.registry ? createProjectorMetrics(options.registry, name) : undefined;
  let checkpoint = 0n;
  let stopping = false;
  let subscription: ReturnType<EventStore['subscribeToAll']> | null = null;
  const wakers = new Set<() => void>();

  // ---- folding ----
  async function applyBatch(events: readonly RecordedEvent[]): Promise<void> {
    const fresh = events.filter((event) => event.position > checkpoint);
    const last = fresh.at(-1);
    if (!last) return;
    const relevant = fresh.filter(isControlPlaneEvent).filter((event) => snapshotTenantOf(event) !== null);
    const started = performance.now();
    await traceBatch(name, fresh, () => foldBatch(relevant, last.position));
    checkpoint = last.position;
    metrics.position.set(Number(checkpoint));
    common?.committed(checkpoint, fresh.length, (performance.now() - started) / 1000);
    requestPublish();
  }

  async function foldBatch(relevant: readonly ControlPlaneEvent[], lastPosition: bigint): Promise<void> {
    const client = await pool.connect();
    try {
      await client.query('begin');
      const stored = await lockCheckpoint(client, name);
      if (stored !== checkpoint) throw new Error(`checkpoint ${name} moved from ${checkpoint} to ${stored}`);
      const tenantIds = [...new Set(relevant.map((event) => snapshotTenantOf(event)!))];
      const states =
        tenantIds.length > 0 ? await loadStates(client, tenantIds) : new Map<string, SnapshotState>();
      const changed = new Map<string, SnapshotState>();
      for (const event of relevant) foldInto(states, changed, event);
      await saveStates(client, [...changed.values()]);
      await advanceCheckpoint(client, name, lastPosition);
      await client.query('commit');
    } catch (error) {
      await client.query('rollback').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  function foldInto(
    states: Map<string, SnapshotState>,
    changed: Map<string, SnapshotState>,
    event: ControlPlaneEvent,
  ) {
    const tenantId = snapshotTenantOf(event)!;
    const before = states.get(tenantId);
    let after: SnapshotState | undefined;
    try {
      after = foldSnapshotEvent(before, event);
    } catch (error) {
      metrics.skipped.inc();
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

  async function followOnce(): Promise<void> {
    checkpoint = await readCheckpoint(pool, name);
    metrics.position.set(Number(checkpoint));
    logger.info('snapshot projector subscribing', { from_position: checkpoint.toString() });
    subscription = store.subscribeToAll({ fromPosition: checkpoint });
    try {
      for await (const batch of batches(subscription, batchSize)) {
        await applyBatch(batch);
        if (stopping) return;
      }
    } finally {
      await subscription.close().catch(() => {});
      subscription = null;
    }
  }

  async function follow(): Promise<void> {
    let delay = baseDelay;
    while (!stopping) {
      try {
        await followOnce();
        delay = baseDelay;
      } catch (error) {
        if (stopping) return;
        common?.restarted();
        logger.error('snapshot projector restarting', {
          checkpoint: checkpoint.toString(),
          error: (error as Error).message,
        });
        await sleep(delay);
        delay = Math.min(delay * 2, 10_000);
      }
    }
  }

  // ---- publishing ----
  let publishRequested = true; // on start: republish whatever the last run left unacknowledged
  let publishing: Promise<void> | null = null;
  let publishDelay = baseDelay;
  let idleWaiters: Array<() => void> = [];

  function requestPublish(): void {
    publishRequested = true;
    publishing ??= publishLoop();
  }

  async function publishLoop(): Promise<void> {
    try {
      while (publishRequested && !stopping) {
        publishRequested = false;
        try {
          await publishPending();
          publishDelay = baseDelay;
        } catch (error) {
          metrics.failures.inc({ reason: 'unavailable' });
          logger.warn('snapshot bus unavailable; will republish', { error: (error as Error).message });
          publishRequested = true;
          await sleep(publishDelay);
          publishDelay = Math.min(publishDelay * 2, 5_000);
        }
      }
    } finally {
      // Cleared in the same synchronous step as the loop's last check, so no request is lost.
      publishing = null;
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  async function publishPending(): Promise<void> {
    while (!stopping) {
      const pending = await loadUnpublished(pool, publishBatchSize);
      if (pending.length === 0) return;
      const result = await tracePublish(name, pending.length, () => bus.publish(pending));
      await markPublished(pool, result.published);
      metrics.published.inc(result.published.length);
      for (const failure of result.failed) {
        metrics.failures.inc({
          reason: failure.error.name === 'SnapshotTooLargeError' ? 'too_large' : 'refused',
        });
        logger.error('snapshot not published', {
          tenant_id: failure.tenantId,
          version: failure.version.toString(),
          error: failure.error.message,
        });
        await markFailed(pool, failure.tenantId, failure.version, failure.error.message);
      }
    }
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wakeUp = (): void => {
        clearTimeout(timer);
        wakers.delete(wakeUp);
        resolve();
      };
      const timer = setTimeout(wakeUp, ms);
      wakers.add(wakeUp);
    });
  }

  requestPublish();
  const done = follow();
  common?.follow({ headPosition: () => store.headPosition(), checkpoint: () => checkpoint });
  const publishPoll = setInterval(() => {
    if (!stopping) requestPublish();
  }, options.publishPollMs ?? 5000);
  publishPoll.unref();
  return {
    done,
    checkpoint: () => checkpoint,
    idle() {
      if (!publishing && !publishRequested) return Promise.resolve();
      return new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
    async stop() {
      stopping = true;
      clearInterval(publishPoll);
      for (const wakeUp of [...wakers]) wakeUp();
      await subscription?.close().catch(() => {});
      await done;
      await publishing;
      for (const resolve of idleWaiters) resolve();
      idleWaiters = [];
    },
  };
}
