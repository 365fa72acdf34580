import { type StructuredLogger, silentLogger } from '@vantageedge/shared/observability/logger';
import type { SnapshotBus } from '@vantageedge/shared/snapshot-bus/port';
import type pg from 'pg';
import { Counter, type Registry } from 'prom-client';
import { tracePublish } from '../runner/batch-tracing.js';
import { SNAPSHOT_PROJECTION } from './snapshot-state.js';
import { loadUnpublished, markFailed, markPublished } from './snapshot-state-store.js';

export interface SnapshotPublisherOptions {
  pool: pg.Pool;
  bus: SnapshotBus;
  logger?: StructuredLogger | undefined;
  registry?: Registry | undefined;
  /** Snapshots published per bus call. */
  batchSize?: number | undefined;
  /** First back-off while the bus is unavailable (ms); doubles up to 5 s. */
  retryDelayMs?: number | undefined;
}

export interface SnapshotPublisher {
  /** Something was committed: publish what the bus has not acknowledged yet. */
  request(): void;
  /** Resolves once every snapshot requested so far has been acknowledged by the bus (or refused). */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

const MAX_RETRY_DELAY_MS = 5_000;

/**
 * Publishes `snapshot_state` to the snapshot bus, from the table: every row whose version the bus has
 * not acknowledged is (re)published, so a crash between the projector's commit and the publication
 * only delays it (at least once; consumers drop versions they already have). Only the newest version
 * of a tenant is sent. Starts by republishing what the last run left unacknowledged.
 *
 * A snapshot the bus refuses for good (too large even gzipped, or larger as JSON than gateways inflate
 * a snapshot to: MAX_DECODED_SNAPSHOT_BYTES) is logged as an error, counted, and recorded in
 * `publish_error` (the tenant's rollout status shows it); the tenant is published again when its
 * config changes.
 */
export function startSnapshotPublisher(options: SnapshotPublisherOptions): SnapshotPublisher {
  const { pool, bus, logger = silentLogger, batchSize = 200 } = options;
  const baseDelay = options.retryDelayMs ?? 250;
  const registers = options.registry ? [options.registry] : [];
  const published = new Counter({
    name: 'vantageedge_snapshot_published_total',
    help: 'Snapshots and tombstones acknowledged by the snapshot bus',
    registers,
  });
  const failures = new Counter({
    name: 'vantageedge_snapshot_publish_failures_total',
    help: 'Snapshot publications that failed, by reason (too_large is permanent until the next change)',
    labelNames: ['reason'] as const,
    registers,
  });
  let stopping = false;
  let requested = false;
  let publishing: Promise<void> | null = null;
  let delay = baseDelay;
  let idleWaiters: Array<() => void> = [];
  let wakeUp: (() => void) | null = null;

  function request(): void {
    requested = true;
    publishing ??= publishLoop();
  }

  async function publishLoop(): Promise<void> {
    try {
      while (requested && !stopping) {
        requested = false;
        try {
          await publishPending();
          delay = baseDelay;
        } catch (error) {
          failures.inc({ reason: 'unavailable' });
          logger.warn('snapshot bus unavailable; will republish', { error: (error as Error).message });
          requested = true;
          await sleep(delay);
          delay = Math.min(delay * 2, MAX_RETRY_DELAY_MS);
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
      const pending = await loadUnpublished(pool, batchSize);
      if (pending.length === 0) return;
      const result = await tracePublish(SNAPSHOT_PROJECTION, pending.length, () => bus.publish(pending));
      await markPublished(pool, result.published);
      published.inc(result.published.length);
      for (const failure of result.failed) {
        failures.inc({ reason: failure.error.name === 'SnapshotTooLargeError' ? 'too_large' : 'refused' });
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
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    }).finally(() => {
      wakeUp = null;
    });
  }

  request();
  return {
    request,
    idle() {
      if (!publishing && !requested) return Promise.resolve();
      return new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
    async stop() {
      stopping = true;
      wakeUp?.();
      await publishing;
      for (const resolve of idleWaiters) resolve();
      idleWaiters = [];
    },
  };
}
