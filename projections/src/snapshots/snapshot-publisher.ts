import { type StructuredLogger, silentLogger } from '@vantageedge/shared/observability/logger';
import type { SnapshotBus } from '@vantageedge/shared/snapshot-bus/port';
import type pg from 'pg';
import { Counter, type Registry } from 'prom-client';
import { tracePublish } from '../runner/batch-tracing.js';
import { SNAPSHOT_PROJECTION } from './snapshot-state.js';
import { loadPending, loadPendingMessages, markFailed, markPublished } from './snapshot-state-store.js';

export interface SnapshotPublisherOptions {
  pool: pg.Pool;
  bus: SnapshotBus;
  logger?: StructuredLogger | undefined;
  registry?: Registry | undefined;
  /** Snapshots published per bus call. */
  batchSize?: number | undefined;
  /** First back-off while the bus is unavailable (ms); doubles up to 5 s. */
  retryDelayMs?: number | undefined;
  /**
   * Snapshots of more JSON than this (bytes) are published one at a time, beside the others rather
   * than before them. Default LARGE_SNAPSHOT_BYTES.
   */
  largeSnapshotBytes?: number | undefined;
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
 * 1 MiB of JSON: some 20–50 ms to stringify and gzip. A tenant at the bus's limit takes about 300 ms
 * (14 MB of JSON: 40 ms stringify, 250 ms gzip). Measured as JSON, not as PostgreSQL stores it: jsonb
 * compresses repeated route policies some 40×.
 */
export const LARGE_SNAPSHOT_BYTES = 1024 * 1024;

/**
 * Publishes `snapshot_state` to the snapshot bus, from the table: every row whose version the bus has
 * not acknowledged is (re)published, so a crash between the projector's commit and the publication
 * only delays it (at least once; consumers drop versions they already have). Only the newest version
 * of a tenant is sent. Starts by republishing what the last run left unacknowledged.
 *
 * A snapshot the bus refuses for good (too large even gzipped, or larger as JSON than gateways inflate
 * a snapshot to: MAX_DECODED_SNAPSHOT_BYTES) is logged as an error, counted, and recorded in
 * `publish_error` and `failed_version` (the tenant's rollout status shows it); it is not encoded again
 * until the tenant's version changes (its config changes).
 *
 * Two lanes publish side by side, so one large tenant's encoding (hundreds of milliseconds, gzip run off
 * the event loop by the Kafka bus) never holds up the others: the small snapshots, in batches of
 * `batchSize` oldest first, and the large ones (over `largeSnapshotBytes` of JSON), one per bus call,
 * smallest first. A tenant is published by one lane at a time (the other leaves it until that lane is
 * done), so its messages reach the topic in version order.
 */
export function startSnapshotPublisher(options: SnapshotPublisherOptions): SnapshotPublisher {
  const { pool, bus, logger = silentLogger, batchSize = 200 } = options;
  const largeBytes = options.largeSnapshotBytes ?? LARGE_SNAPSHOT_BYTES;
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
  let idleWaiters: Array<() => void> = [];
  /** Tenants a lane is publishing: the other lane leaves them alone meanwhile. */
  const inFlight = new Set<string>();

  interface Lane {
    request(): void;
    readonly busy: boolean;
    readonly running: Promise<void> | null;
    wake(): void;
  }

  function lane(large: boolean): Lane {
    let requested = false;
    let running: Promise<void> | null = null;
    let delay = baseDelay;
    let wakeUp: (() => void) | null = null;

    async function loop(): Promise<void> {
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
        running = null;
        settle();
      }
    }

    async function publishPending(): Promise<void> {
      while (!stopping) {
        const pending = await loadPending(pool, {
          limit: large ? 1 : batchSize,
          largeBytes,
          large,
          exclude: [...inFlight],
        });
        // Claimed in one synchronous step: from here on the other lane leaves these tenants alone.
        const mine = pending.map((entry) => entry.tenantId).filter((tenantId) => !inFlight.has(tenantId));
        if (mine.length === 0) return;
        for (const tenantId of mine) inFlight.add(tenantId);
        try {
          await publishTenants(mine);
        } finally {
          for (const tenantId of mine) inFlight.delete(tenantId);
          // The other lane may have left one of them while this one held it.
          other().request();
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

    const self: Lane = {
      request() {
        requested = true;
        running ??= loop();
      },
      get busy() {
        return running !== null || requested;
      },
      get running() {
        return running;
      },
      wake() {
        wakeUp?.();
      },
    };
    const other = () => (self === smallLane ? largeLane : smallLane);
    return self;
  }

  async function publishTenants(tenantIds: readonly string[]): Promise<void> {
    const messages = await loadPendingMessages(pool, tenantIds);
    if (messages.length === 0) return;
    const result = await tracePublish(SNAPSHOT_PROJECTION, messages.length, () => bus.publish(messages));
    await markPublished(pool, result.published);
    published.inc(result.published.length);
    for (const failure of result.failed) {
      failures.inc({ reason: failure.error.name === 'SnapshotTooLargeError' ? 'too_large' : 'refused' });
      logger.error('snapshot not published', {
        tenant_id: failure.tenantId,
        version: failure.version.toString(),
        error: failure.error.message,
      });
      // Recorded for this version: not loaded (nor encoded) again until the tenant's version changes.
      await markFailed(pool, failure.tenantId, failure.version, failure.error.message);
    }
  }

  const smallLane: Lane = lane(false);
  const largeLane: Lane = lane(true);

  function settle(): void {
    if (smallLane.busy || largeLane.busy) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  function request(): void {
    smallLane.request();
    largeLane.request();
  }

  request();
  return {
    request,
    idle() {
      if (!smallLane.busy && !largeLane.busy) return Promise.resolve();
      return new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
    async stop() {
      stopping = true;
      smallLane.wake();
      largeLane.wake();
      await Promise.all([smallLane.running, largeLane.running]);
      for (const resolve of idleWaiters) resolve();
      idleWaiters = [];
    },
  };
}
