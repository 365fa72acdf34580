import { type StructuredLogger, silentLogger } from '@vantageedge/shared/observability/logger';
import type { PublishResult, SnapshotBus, SnapshotMessage } from '@vantageedge/shared/snapshot-bus/port';
import type pg from 'pg';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { tracePublish } from '../runner/batch-tracing.js';
import { FailedSends } from './failed-sends.js';
import { LateSendGuard } from './late-send-guard.js';
import { DEFAULT_TENANT_PUBLISH_BYTES_PER_SECOND, PublishPacing } from './publish-pacing.js';
import { requestSnapshotRepublish, requestSnapshotRepublishOnceSent } from './republish.js';
import { SNAPSHOT_PROJECTION } from './snapshot-state.js';
import {
  loadPending,
  loadPendingMessages,
  markFailed,
  markPublished,
  type PendingSnapshot,
  type Queryable,
  requeueForPublication,
  withPublishLocks,
} from './snapshot-state-store.js';
import { DEFAULT_TOPIC_WATCH_MS, startTopicLossWatch } from './topic-loss-watch.js';
import { startTopicRetentionWatch } from './topic-retention-watch.js';
import { compareTopicWithStore, type TenantAheadOnTopic } from './topic-store-check.js';

export interface SnapshotPublisherOptions {
  pool: pg.Pool;
  bus: SnapshotBus;
  logger?: StructuredLogger | undefined;
  registry?: Registry | undefined;
  /** Snapshots published per bus call. */
  batchSize?: number | undefined;
  /**
   * First back-off while the bus is unavailable (ms); doubles up to 5 s. Per tenant for a failed send
   * (FailedSends), for the lane when PostgreSQL cannot be reached.
   */
  retryDelayMs?: number | undefined;
  /**
   * Snapshots of more JSON than this (bytes) are published one at a time, beside the others rather
   * than before them. Default LARGE_SNAPSHOT_BYTES.
   */
  largeSnapshotBytes?: number | undefined;
  /**
   * Bytes of JSON per second a tenant's snapshots are published at: after one of S bytes, the tenant's
   * next version waits S ÷ this (tombstones never wait). 0: no pacing. Default
   * DEFAULT_TENANT_PUBLISH_BYTES_PER_SECOND.
   */
  tenantPublishBytesPerSecond?: number | undefined;
  /**
   * After a send fails, how long (ms) until its tenants' current versions are sent once more, after any
   * request of the failed send that lands late. Default the bus's lateSendWindowMs; without one (the
   * in-memory bus), never.
   */
  lateSendGuardMs?: number | undefined;
  /** The late-send guard's monotonic clock (ms). Default performance.now. */
  lateSendClock?: (() => number) | undefined;
  /**
   * The event store's head position. Given, the topic is compared with the store before the first
   * publication, and a version to send below the topic's is checked against it (see below).
   */
  headPosition?: (() => Promise<bigint>) | undefined;
  /**
   * How long the first publication waits for that comparison (ms) when the topic cannot be read (a
   * partition without a leader, Kafka unreachable) or its read takes longer; then publishing starts
   * and the comparison goes on until it is made. Default DEFAULT_TOPIC_CHECK_WAIT_MS.
   */
  topicCheckWaitMs?: number | undefined;
  /**
   * How often (ms) the topic's high-water marks are read while publishing, to see it lost (deleted or
   * recreated) and publish every tenant again, and its settings, to see it set to delete old records.
   * Default DEFAULT_TOPIC_WATCH_MS.
   */
  topicWatchMs?: number | undefined;
}

export interface SnapshotPublisher {
  /** Something was committed: publish what the bus has not acknowledged yet. */
  request(): void;
  /**
   * Resolves once every snapshot requested so far has been acknowledged by the bus (or refused),
   * including those their tenant's pacing holds back.
   */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

const MAX_RETRY_DELAY_MS = 5_000;
/**
 * The comparison only guards against an operator's mistake (a restore); publishing held back longer
 * would keep every tenant's changes (a revoked API key among them) from the gateways while one
 * partition has no leader, which a send never does (FailedSends).
 */
export const DEFAULT_TOPIC_CHECK_WAIT_MS = 30_000;
/**
 * 1 MiB of JSON: some 20–50 ms to stringify and gzip. A tenant at the bus's limit takes about 300 ms
 * (14 MB of JSON: 40 ms stringify, 250 ms gzip). Measured as JSON, not as PostgreSQL stores it: jsonb
 * compresses repeated route policies some 40×.
 */
export const LARGE_SNAPSHOT_BYTES = 1024 * 1024;

/** How far a publication's send got: begun, and answered by the bus. */
interface SendProgress {
  started: boolean;
  acknowledged: boolean;
}

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
 * done), so its messages reach the topic in version order; across processes (two projectors during a
 * deploy) a tenant's publication lock does the same (withPublishLocks). A publication that fails after
 * its send started (the lock's session may have ended meanwhile) has its tenants sent again
 * (requeueForPublication), at once and, while PostgreSQL cannot be reached, before the next one.
 * A send that failed (its outcome unknown) may still land later, after the versions sent since: its
 * tenants are requeued again once the bus's late-send window has passed (LateSendGuard), so their
 * current versions are sent after it. A stop within the window waits it out and leaves those tenants
 * requeued in PostgreSQL for the next publisher (lost only if the process dies meanwhile, or PostgreSQL
 * cannot be reached at the stop; the tenant's next change repairs it).
 *
 * A send that fails holds back its tenants with their own back-off, and sends them in ever smaller
 * batches (FailedSends), while the lanes go on with the other tenants: a send fails as a whole when one
 * of its tenants cannot be written (its Kafka partition has no leader, too few in-sync replicas), and
 * retried as it was, that tenant kept every other one off the topic. Failures that were the whole bus's
 * (sends of different tenants, each alone, failing in a row) are forgiven at the next send that
 * succeeds, so the tenants pending after an outage go in full batches again.
 *
 * Each tenant is paced in proportion to its snapshot's size (PublishPacing), since every version costs
 * every gateway replica its decode: a version that comes inside its tenant's window is left pending (the
 * lanes go on with the others) and a timer asks for it when the window ends, so the changes made
 * meanwhile go out together as the newest version.
 *
 * Before its first publication it compares the topic with the store (compareTopicWithStore, when the
 * bus can read the topic's versions and `headPosition` is given). A topic lost while `snapshot_state`
 * says its tenants were acknowledged (deleted, recreated empty) is rebuilt: every tenant is queued
 * again, as by `make republish-snapshots`. A topic holding a version above the event store's head (the
 * database was restored from an older backup, or this store is not the topic's) stops all publishing
 * until a restart on a rebuilt topic (logged as an error, `vantageedge_snapshot_store_behind_topic` 1):
 * every gateway keeps a tenant's highest version, so what the store publishes below it would be dropped
 * as stale, a revoked API key serving on. A version to send below one the topic held at start or this
 * publisher has sent since makes it read the head again, and stop the same way when the head is below
 * (the store went back while running); a head above it is a refold catching up, sent as always. A topic
 * that cannot be read holds the first publication back `topicCheckWaitMs` at most: then the lanes
 * publish, and the comparison, retried meanwhile, stops them the same way when it is made. Tenants on the
 * topic the store never had (another deployment's) are logged and counted, not held against publishing.
 * While it runs, a topic lost (its high-water marks fall: startTopicLossWatch) has every tenant queued
 * again, as at start; a topic set to delete old records (startTopicRetentionWatch) is logged as an error,
 * `vantageedge_snapshot_topic_retention_unsafe` 1, and every tenant is queued again within each half of
 * its retention.ms until it is compacted only again.
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
  const pacingDelay = new Histogram({
    name: 'vantageedge_snapshot_pacing_delay_seconds',
    help: 'How long a snapshot was held back by its tenant’s publication pacing (count: paced publications)',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20],
    registers,
  });
  const pacing = new PublishPacing(
    options.tenantPublishBytesPerSecond ?? DEFAULT_TENANT_PUBLISH_BYTES_PER_SECOND,
  );
  const storeBehindTopic = new Gauge({
    name: 'vantageedge_snapshot_store_behind_topic',
    help: '1 while nothing is published because the snapshot topic holds newer versions than the store (restored from an older backup)',
    registers,
  });
  const foreignTenants = new Gauge({
    name: 'vantageedge_snapshot_topic_foreign_tenants',
    help: 'Tenants on the snapshot topic that this store never had (another deployment shares the topic), as found at start',
    registers,
  });
  const topicRetentionUnsafe = new Gauge({
    name: 'vantageedge_snapshot_topic_retention_unsafe',
    help: '1 while the snapshot topic is set to delete old records (cleanup.policy=compact,delete with a finite retention): every tenant is published again within half its retention.ms',
    registers,
  });
  const failedSends = new FailedSends(baseDelay, MAX_RETRY_DELAY_MS);
  /** Each tenant's highest version on the topic, as read at start and sent since: never sent below. */
  const topicHeads = new Map<string, bigint>();
  /**
   * Records this publisher sent, those of them the bus acknowledged, and those whose send has not ended
   * (the topic-loss watch's floor).
   */
  let recordsSent = 0;
  let recordsAcknowledged = 0;
  let recordsInFlight = 0;
  /** The store is behind the topic: nothing more is published. */
  let halted = false;
  let wakeStartCheck: (() => void) | null = null;
  /** Asks the lanes again when the earliest window of a held-back tenant ends. */
  let pacingTimer: NodeJS.Timeout | null = null;
  let pacingWakeAt = Number.POSITIVE_INFINITY;
  let stopping = false;
  let idleWaiters: Array<() => void> = [];
  /** Tenants a lane is publishing: the other lane leaves them alone meanwhile. */
  const inFlight = new Set<string>();
  /** Tenants sent in a publication that did not commit, until they are requeued (requeueUnsettled). */
  const unsettled = new Set<string>();
  /** The requeue of unsettled tenants under way, if any. */
  let requeueRunning: Promise<void> | null = null;
  const lateSendGuardMs = options.lateSendGuardMs ?? bus.lateSendWindowMs;
  /** Tenants of failed sends, requeued once a late request of those sends can no longer land. */
  const lateSends =
    lateSendGuardMs === undefined
      ? undefined
      : new LateSendGuard(
          lateSendGuardMs,
          (tenantIds) => {
            logger.info('snapshots of a failed send sent again after its late-send window', {
              tenants: tenantIds.length,
            });
            for (const tenantId of tenantIds) unsettled.add(tenantId);
            request();
          },
          options.lateSendClock,
        );

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
        await publishingMayStart;
        while (requested && !stopping && !halted) {
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
        if (halted) requested = false;
        settle();
      }
    }

    async function publishPending(): Promise<void> {
      const limit = large ? 1 : batchSize;
      while (!stopping && !halted) {
        await requeueUnsettled();
        const pending = await loadPending(pool, {
          // Besides `limit` tenants to publish, room for every one pacing or a failed send holds back.
          limit: limit + pacing.waitingCount() + failedSends.waitingCount(),
          largeBytes,
          large,
          exclude: [...inFlight],
        });
        // Claimed in one synchronous step: from here on the other lane leaves these tenants alone.
        const mine: string[] = [];
        let room = limit;
        for (const entry of pending) {
          if (inFlight.has(entry.tenantId) || heldBack(entry)) continue;
          // A tenant of failed sends goes in a smaller batch (or the next one, when this one is fuller).
          const entryRoom = Math.min(room, failedSends.batchLimit(entry.tenantId, limit));
          if (mine.length >= entryRoom) continue;
          room = entryRoom;
          mine.push(entry.tenantId);
        }
        if (mine.length === 0) return;
        for (const tenantId of mine) inFlight.add(tenantId);
        const send: SendProgress = { started: false, acknowledged: false };
        try {
          await publishTenants(mine, send);
        } catch (error) {
          // PostgreSQL could not be reached: the lane backs off. The bus failed: these tenants do.
          if (!send.started || send.acknowledged) throw error;
          sendFailed(mine, error);
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
        if (halted) return;
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

  /**
   * Whether the tenant's pending version must wait for the back-off of its failed sends or for its
   * pacing window (then a timer asks for it).
   */
  function heldBack(entry: PendingSnapshot): boolean {
    const backOff = failedSends.hold(entry.tenantId);
    if (backOff > 0) {
      wakeAfter(backOff);
      return true;
    }
    if (entry.tombstone) return false;
    const wait = pacing.hold(entry.tenantId);
    if (wait <= 0) return false;
    wakeAfter(wait);
    return true;
  }

  function wakeAfter(ms: number): void {
    const at = performance.now() + ms;
    if (pacingTimer && pacingWakeAt <= at) return;
    if (pacingTimer) clearTimeout(pacingTimer);
    pacingWakeAt = at;
    pacingTimer = setTimeout(() => {
      pacingTimer = null;
      request();
    }, Math.ceil(ms));
    pacingTimer.unref();
  }

  /** The bus did not take these tenants' send: each waits its back-off, the others go on meanwhile. */
  function sendFailed(tenantIds: readonly string[], error: unknown): void {
    failures.inc({ reason: 'unavailable' });
    failedSends.failed(tenantIds);
    logger.warn('snapshot bus unavailable; will republish', {
      error: error instanceof Error ? error.message : String(error),
      tenants: tenantIds.length,
    });
    wakeAfter(Math.min(...tenantIds.map((tenantId) => failedSends.hold(tenantId))));
  }

  /** Publishes these tenants' pending versions, holding them against every other publisher. */
  async function publishTenants(tenantIds: readonly string[], send: SendProgress): Promise<void> {
    try {
      await withPublishLocks(pool, tenantIds, (db) => publishLocked(db, tenantIds, send));
    } catch (error) {
      if (send.started && !send.acknowledged) lateSends?.failed(tenantIds);
      // Sent, perhaps, but not recorded under the locks: when the session holding them ended during the
      // send, another publisher may have sent a newer version (or the tombstone) that this older one then
      // followed onto the topic. Sending the current versions again puts the newest last.
      if (send.started) {
        for (const tenantId of tenantIds) unsettled.add(tenantId);
        await requeueUnsettled().catch(() => {});
      }
      throw error;
    }
  }

  /**
   * Requeues the unsettled tenants; throws (keeping them) while PostgreSQL cannot be reached. One
   * requeue at a time, each of what is unsettled when it starts: both lanes requeue as they begin, and
   * a second requeue of the same tenants, waiting on a tenant's lock while the other lane published its
   * current version, marked that version unpublished again after it was sent — left pending, with no
   * lane asked to send it, when it was not the waiting lane's to send.
   */
  async function requeueUnsettled(): Promise<void> {
    while (requeueRunning !== null) await requeueRunning.catch(() => {});
    if (unsettled.size === 0) return;
    const tenantIds = [...unsettled];
    const run = requeueForPublication(pool, tenantIds).then(() => {
      for (const tenantId of tenantIds) unsettled.delete(tenantId);
    });
    requeueRunning = run;
    try {
      await run;
    } finally {
      if (requeueRunning === run) requeueRunning = null;
    }
  }

  async function publishLocked(
    db: Queryable,
    tenantIds: readonly string[],
    send: SendProgress,
  ): Promise<void> {
    const pending = await loadPendingMessages(db, tenantIds);
    if (pending.length === 0) return;
    const messages = pending.map((entry) => entry.message);
    const ahead = await topicAheadOfStore(messages);
    if (ahead.length > 0) return halt(ahead);
    send.started = true;
    recordsSent += messages.length;
    recordsInFlight += messages.length;
    let result: PublishResult;
    try {
      result = await tracePublish(SNAPSHOT_PROJECTION, messages.length, () => bus.publish(messages));
    } finally {
      recordsInFlight -= messages.length;
    }
    recordsAcknowledged += result.published.length;
    send.acknowledged = true;
    await markPublished(db, result.published);
    published.inc(result.published.length);
    for (const message of result.published) {
      if (message.version > (topicHeads.get(message.tenantId) ?? 0n)) {
        topicHeads.set(message.tenantId, message.version);
      }
    }
    const jsonBytes = new Map(pending.map((entry) => [entry.message.tenantId, entry.jsonBytes]));
    failedSends.succeeded(pending.map((entry) => entry.message.tenantId));
    for (const message of result.published) {
      if (message.kind === 'tombstone') {
        pacing.forget(message.tenantId);
        continue;
      }
      const heldMs = pacing.published(message.tenantId, jsonBytes.get(message.tenantId) ?? 0);
      if (heldMs !== undefined) pacingDelay.observe(heldMs / 1000);
    }
    for (const failure of result.failed) {
      pacing.forget(failure.tenantId);
      failures.inc({ reason: failure.error.name === 'SnapshotTooLargeError' ? 'too_large' : 'refused' });
      logger.error('snapshot not published', {
        tenant_id: failure.tenantId,
        version: failure.version.toString(),
        error: failure.error.message,
      });
      // Recorded for this version: not loaded (nor encoded) again until the tenant's version changes.
      await markFailed(db, failure.tenantId, failure.version, failure.error.message);
    }
  }

  /**
   * Of these messages' tenants, those the topic holds above the event store's head: read only when a
   * message is below its tenant's version on the topic (the store went back, or is refolding).
   */
  async function topicAheadOfStore(messages: readonly SnapshotMessage[]): Promise<TenantAheadOnTopic[]> {
    const below = messages.filter((message) => message.version < (topicHeads.get(message.tenantId) ?? 0n));
    if (below.length === 0 || !options.headPosition) return [];
    const storeHead = await options.headPosition();
    return below
      .map((message) => ({
        tenantId: message.tenantId,
        topicVersion: topicHeads.get(message.tenantId)!,
        storeHead,
      }))
      .filter((tenant) => tenant.topicVersion > storeHead);
  }

  /** Stops publishing: the topic holds these tenants above the store's head. */
  function halt(ahead: readonly TenantAheadOnTopic[]): void {
    if (halted) return;
    halted = true;
    storeBehindTopic.set(1);
    const first = ahead[0]!;
    logger.error(
      'snapshot topic holds newer versions than the store (the database was restored from an older backup, ' +
        'or the projector points at another store): nothing is published, gateways would drop it as stale; ' +
        'see docs/deployment.md, "When the database is restored from an older backup"',
      {
        tenants: ahead.length,
        tenant_id: first.tenantId,
        topic_version: first.topicVersion.toString(),
        store_head: first.storeHead.toString(),
      },
    );
    settle();
  }

  /**
   * Compares the topic with the store, before the first publication unless that waited
   * `topicCheckWaitMs` for it; retried until the topic and PostgreSQL can be read (or the publisher stops).
   */
  async function checkTopic(): Promise<void> {
    const readNewestVersions = bus.readNewestVersions?.bind(bus);
    const { headPosition } = options;
    if (!readNewestVersions || !headPosition) return;
    let delay = baseDelay;
    while (!stopping) {
      try {
        const comparison = await compareTopicWithStore(pool, readNewestVersions, headPosition);
        for (const [tenantId, version] of comparison.topicVersions) topicHeads.set(tenantId, version);
        foreignTenants.set(comparison.foreign.length);
        if (comparison.foreign.length > 0) {
          logger.error(
            'snapshot topic holds tenants this store never had: another deployment publishes to the same topic ' +
              '(or the database was restored from a backup older than their creation), and every gateway serves ' +
              'them; give each deployment its own SNAPSHOT_TOPIC ' +
              "(docs/deployment.md, 'When the snapshot topic holds another deployment's tenants')",
            { tenants: comparison.foreign.length, examples: comparison.foreign.slice(0, 5) },
          );
        }
        if (comparison.ahead.length > 0) return halt(comparison.ahead);
        if (comparison.lost > 0) {
          const { tenants } = await requestSnapshotRepublish(pool);
          logger.warn('snapshot topic lost what the store had published: every tenant is published again', {
            lost: comparison.lost,
            tenants,
          });
          // The lanes may have started without waiting for this comparison (topicCheckWaitMs).
          request();
        }
        return;
      } catch (error) {
        logger.warn('snapshot topic not compared with the store at start; will retry', {
          error: error instanceof Error ? error.message : String(error),
        });
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          wakeStartCheck = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wakeStartCheck = null;
        delay = Math.min(delay * 2, MAX_RETRY_DELAY_MS);
      }
    }
  }

  const startChecked = checkTopic();
  const readHighWaterMarks = bus.readHighWaterMarks?.bind(bus);
  const lossWatch =
    readHighWaterMarks &&
    startTopicLossWatch({
      readHighWaterMarks,
      sentRecords: () => recordsSent,
      acknowledgedRecords: () => recordsAcknowledged,
      recordsInFlight: () => recordsInFlight,
      intervalMs: options.topicWatchMs,
      logger,
      onLost: async () => {
        const { tenants } = await requestSnapshotRepublish(pool);
        logger.warn('snapshot topic lost while publishing: every tenant is published again', { tenants });
        request();
      },
    });
  const readTopicRetention = bus.readTopicRetention?.bind(bus);
  const retentionWatch =
    readTopicRetention &&
    startTopicRetentionWatch({
      readRetention: readTopicRetention,
      intervalMs: options.topicWatchMs ?? DEFAULT_TOPIC_WATCH_MS,
      logger,
      onUnsafe: (unsafe) => topicRetentionUnsafe.set(unsafe ? 1 : 0),
      republish: async () => {
        const queued = await requestSnapshotRepublishOnceSent(pool);
        if (queued === undefined) {
          logger.warn(
            'snapshot topic set to delete old records: tenants queued last time are still being published',
          );
          return false;
        }
        logger.warn('snapshot topic set to delete old records: every tenant is published again', {
          tenants: queued.tenants,
        });
        request();
        return true;
      },
    });
  let startPublishing = (): void => {};
  /** The comparison made, `topicCheckWaitMs` passed without it, or a stop. */
  const publishingMayStart = new Promise<void>((resolve) => {
    startPublishing = resolve;
  });
  const checkWait = setTimeout(() => {
    logger.warn('snapshot topic not compared with the store yet: publishing starts, the comparison goes on');
    startPublishing();
  }, options.topicCheckWaitMs ?? DEFAULT_TOPIC_CHECK_WAIT_MS);
  checkWait.unref();
  void startChecked.finally(() => {
    clearTimeout(checkWait);
    startPublishing();
  });
  const smallLane: Lane = lane(false);
  const largeLane: Lane = lane(true);

  /** Publishing, or waiting for a held-back tenant's window to end. */
  const busy = () => smallLane.busy || largeLane.busy || pacingTimer !== null;

  function settle(): void {
    if (busy()) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  function request(): void {
    if (halted) {
      settle();
      return;
    }
    smallLane.request();
    largeLane.request();
  }

  request();
  return {
    request,
    idle() {
      if (!busy()) return Promise.resolve();
      return new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
    async stop() {
      stopping = true;
      await lossWatch?.stop();
      await retentionWatch?.stop();
      wakeStartCheck?.();
      clearTimeout(checkWait);
      startPublishing();
      if (pacingTimer) clearTimeout(pacingTimer);
      pacingTimer = null;
      smallLane.wake();
      largeLane.wake();
      await Promise.all([smallLane.running, largeLane.running]);
      // After the lanes: a send they were making may still fail and arm it. The tenants of a failed
      // send would be forgotten with this process: their window is waited out (at most the bus's
      // late-send window; the process's shutdown deadline bounds it) and they are requeued in
      // PostgreSQL, so whichever publisher runs next sends their current versions after any late request.
      if (lateSends && lateSends.size > 0) {
        logger.info('stopping: waiting for the late-send window of a failed send', {
          tenants: lateSends.size,
        });
        await lateSends.whenEmpty();
      }
      lateSends?.stop();
      await requeueUnsettled().catch((error: unknown) =>
        logger.error('snapshots of a failed send not requeued at stop; the tenants’ next change sends them', {
          tenants: unsettled.size,
          error: error instanceof Error ? error.message : String(error),
        }),
      );
      for (const resolve of idleWaiters) resolve();
      idleWaiters = [];
    },
  };
}
