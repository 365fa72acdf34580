import type { TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import type { StructuredLogger } from '@vantageedge/shared/observability/logger';
import { EventLoopSlices, threadCpuMs } from '@vantageedge/shared/process/event-loop-slices';
import type { RedisClient } from '@vantageedge/shared/redis/client';
import type { BusHealth, SnapshotBus, SnapshotMessage } from '@vantageedge/shared/snapshot-bus/port';
import {
  type RolloutHeartbeat,
  startRolloutHeartbeat,
} from '@vantageedge/shared/snapshot-bus/rollout-heartbeat';
import type { Registry } from 'prom-client';
import type { TenantConfigSink } from '../config/tenant-config-sink.js';
import { createConfigPlaneMetrics } from './config-plane-metrics.js';
import { type PacedFileWrites, paceFileWrites } from './paced-file-writes.js';
import { SnapshotStore } from './snapshot-store.js';
import { TenantApplyBudget } from './tenant-apply-budget.js';
import { createUnverifiedRecordLog } from './unverified-record-log.js';

export interface ConfigPlaneOptions {
  bus: SnapshotBus;
  sink: TenantConfigSink;
  registry: Registry;
  logger: StructuredLogger;
  /** Rollout heartbeats go here when given. */
  redis?: RedisClient;
  replicaId: string;
  /**
   * Last-known-config store (a directory, one file per tenant): loaded at start (warm start), and each
   * changed tenant's file rewritten after its changes.
   */
  snapshotFile?: string;
  rollout?: { prefix?: string; ttlSeconds?: number; intervalMs?: number };
  /** How long changes gather before changed tenants' files are written after a quiet period. */
  snapshotFileDelayMs?: number;
  /** The least time between two writes of changed tenants' files (default 10 s). */
  snapshotFileIntervalMs?: number;
  /**
   * Milliseconds a snapshot's apply runs before other work gets the event loop (default
   * DEFAULT_SLICE_BUDGET_MS; 0: a turn after every route, as tests use to see the slices).
   */
  sliceBudgetMs?: number;
  /**
   * Percent of the replica's time one tenant's live versions may take to apply, on average (default
   * DEFAULT_TENANT_APPLY_SHARE_PERCENT; 0: no bound): a version arriving while its tenant is over its
   * share waits, and only the tenant's newest waiting version is applied (see TenantApplyBudget).
   */
  tenantApplySharePercent?: number;
  /** Milliseconds of applying a tenant may use at once before its share counts (default DEFAULT_TENANT_APPLY_BURST_MS). */
  tenantApplyBurstMs?: number;
  /**
   * Tests: `now`, the clock budgets refill by (default performance.now), and `cpuMs`, what an apply's
   * cost is read from (default the main thread's CPU time: on a loaded machine wall time would charge
   * a tenant for the time the replica waited for a CPU).
   */
  clock?: { now(): number; cpuMs(): number };
}

export const DEFAULT_SNAPSHOT_FILE_INTERVAL_MS = 10_000;
export const DEFAULT_TENANT_APPLY_SHARE_PERCENT = 5;
export const DEFAULT_TENANT_APPLY_BURST_MS = 250;
/** The longest a tenant's newest version waits for its share, however costly its earlier ones were. */
export const MAX_TENANT_APPLY_WAIT_MS = 30_000;

export interface ConfigPlaneStatus {
  /** Serving: caught up with the topic at start, or warm-started from the file while Kafka is down. */
  ready: boolean;
  /** The snapshot bus is unreachable: serving the last known config. */
  degraded: boolean;
  caughtUp: boolean;
  lag: number;
  tenants: number;
  warmStarted: boolean;
  lastError: string | null;
  /**
   * Caught up, but every record read was refused as signed by a key the replica does not accept: not
   * ready until a record an accepted key signed is applied (see onCaughtUp).
   */
  noAcceptedKey: boolean;
}

export interface ConfigPlane {
  /** Resolves once the replica may serve (see ConfigPlaneStatus.ready). Never rejects. */
  readonly ready: Promise<void>;
  status(): ConfigPlaneStatus;
  close(): Promise<void>;
}

/**
 * The gateway's config plane: consumes every tenant's snapshot from the bus (the whole compacted log,
 * from the beginning), hands each to the sink, which compiles and swaps it atomically per tenant,
 * and keeps metrics, readiness and rollout heartbeats.
 *
 * - Stale or duplicate versions are dropped (the sink compares versions; tombstone versions are kept
 *   here so an old snapshot redelivered after a delete does not revive the tenant).
 * - Ready after the high-water marks at start are consumed. With a snapshot file, a replica that
 *   cannot reach the bus at start serves the file's config, ready but degraded.
 * - While the bus is unreachable the sink keeps the last config; the bus adapter reconnects and the
 *   replica catches up by itself.
 */
export function startConfigPlane(options: ConfigPlaneOptions): ConfigPlane {
  const { bus, sink, logger, replicaId } = options;
  const metrics = createConfigPlaneMetrics(options.registry);
  const deletedAt = new Map<string, bigint>();
  // Only kept when there is a store to write: the sink holds compiled tenants, not their JSON.
  const store = options.snapshotFile
    ? new SnapshotStore(options.snapshotFile, undefined, { verifiedOnly: bus.verifiesSignatures === true })
    : undefined;
  const fromFileOnly = new Set<string>();
  const now = options.clock?.now ?? (() => performance.now());
  const cpuMs = options.clock?.cpuMs ?? threadCpuMs;
  const sharePercent = options.tenantApplySharePercent ?? DEFAULT_TENANT_APPLY_SHARE_PERCENT;
  const budget =
    sharePercent > 0
      ? new TenantApplyBudget({
          share: Math.min(100, sharePercent) / 100,
          burstMs: options.tenantApplyBurstMs ?? DEFAULT_TENANT_APPLY_BURST_MS,
          maxWaitMs: MAX_TENANT_APPLY_WAIT_MS,
          now,
        })
      : undefined;
  /** Each tenant's newest live version waiting for its share of the replica (see applyLive). */
  const waiting = new Map<string, TenantSnapshot>();
  const waitTimers = new Map<string, NodeJS.Timeout>();
  /** Tenants with a live version being applied. */
  const applyingLive = new Set<string>();
  /** Waited versions are applied one at a time, beside the bus's own. */
  let waitedTurns: Promise<void> = Promise.resolve();
  let closed = false;
  let caughtUp = false;
  let ready = false;
  let warmStarted = false;
  let health: BusHealth | undefined;
  let lastError: string | null = null;
  /** Before caught up: a record an accepted key signed was read; why one was refused for its key. */
  let signedRecordRead = false;
  let unacceptedKey: string | undefined;
  let noAcceptedKey = false;
  let heartbeat: RolloutHeartbeat | undefined;
  const fileWrites: PacedFileWrites | undefined =
    options.snapshotFile && store
      ? snapshotFileWrites(options.snapshotFile, store, options, logger)
      : undefined;
  let resolveReady!: () => void;
  const readyPromise = new Promise<void>((resolve) => {
    resolveReady = resolve;
  });

  const markReady = (why: string): void => {
    if (ready) return;
    ready = true;
    metrics.ready.set(1);
    logger.info('config plane ready', {
      replica_id: replicaId,
      reason: why,
      tenants: sink.appliedVersions().size,
    });
    if (options.redis) {
      heartbeat = startRolloutHeartbeat({
        redis: options.redis,
        replicaId,
        appliedVersions: () => sink.appliedVersions(),
        ...options.rollout,
        onError: (error) => logger.warn('rollout heartbeat failed', { error: error.message }),
        onDuplicateReplicaId: () =>
          logger.error(
            'another gateway replica heartbeats under this replica id; set GATEWAY_REPLICA_ID unique per replica',
            {
              replica_id: replicaId,
            },
          ),
      });
    }
    resolveReady();
  };

  /**
   * `persist`: false for a snapshot read from the store's own tenant file (already on disk). Applied in
   * slices of the event loop when the sink can: one tenant's large version must not stall the others.
   * A live version's time on the event loop is charged to its tenant's budget, whether it applied or not.
   */
  const applySnapshot = async (snapshot: TenantSnapshot, live: boolean, persist = true): Promise<boolean> => {
    const started = performance.now();
    const startedAt = cpuMs();
    let slices: EventLoopSlices | undefined;
    let applied: boolean;
    try {
      if (sink.applyInSlices) {
        slices = new EventLoopSlices({ budgetMs: options.sliceBudgetMs, busyClock: cpuMs });
        applied = await sink.applyInSlices(snapshot, slices);
      } else {
        applied = sink.apply(snapshot);
      }
    } catch (error) {
      metrics.applyErrors.inc();
      lastError = (error as Error).message;
      logger.error('snapshot not applied; tenant keeps its previous config', {
        tenant_id: snapshot.tenant_id,
        version: snapshot.version,
        error: lastError,
      });
      return false;
    } finally {
      if (live) budget?.charge(snapshot.tenant_id, slices ? slices.busyMs : cpuMs() - startedAt);
    }
    if (!applied) return false;
    metrics.applyDuration.observe((performance.now() - started) / 1000);
    metrics.version.set({ tenant: snapshot.tenant_id }, Number(snapshot.version));
    // During the initial catch-up event times are old; only live updates measure propagation.
    if (live)
      metrics.propagationDelay.observe(Math.max(0, Date.now() - Date.parse(snapshot.event_time)) / 1000);
    heartbeat?.applied(snapshot.tenant_id, BigInt(snapshot.version));
    if (persist) {
      store?.set(snapshot);
      fileWrites?.changed();
    }
    return true;
  };

  /**
   * A live version: applied now, unless its tenant is over its share of the replica's time or has a
   * version being applied; then it waits, as the tenant's newest waiting version (an older one waiting
   * is never applied: only the newest matters), while other tenants' versions go on.
   */
  const applyLive = async (snapshot: TenantSnapshot, apply: TenantApplyBudget): Promise<void> => {
    const tenantId = snapshot.tenant_id;
    if (applyingLive.has(tenantId) || waiting.has(tenantId) || apply.waitMs(tenantId) > 0) {
      // Delivered again (at least once): nothing to wait for.
      const applied = sink.appliedVersions().get(tenantId);
      if (applied !== undefined && BigInt(snapshot.version) <= applied) return;
      const queued = waiting.get(tenantId);
      if (queued === undefined || BigInt(queued.version) < BigInt(snapshot.version)) {
        waiting.set(tenantId, snapshot);
        metrics.versionsWaited.inc({ tenant: tenantId });
      }
      if (!applyingLive.has(tenantId)) scheduleWaiting(tenantId, apply);
      return;
    }
    await applyOwnTurn(snapshot, apply);
  };

  const applyOwnTurn = async (snapshot: TenantSnapshot, apply: TenantApplyBudget): Promise<void> => {
    const tenantId = snapshot.tenant_id;
    applyingLive.add(tenantId);
    try {
      await applySnapshot(snapshot, true);
    } finally {
      applyingLive.delete(tenantId);
      if (waiting.has(tenantId)) scheduleWaiting(tenantId, apply);
    }
  };

  const scheduleWaiting = (tenantId: string, apply: TenantApplyBudget): void => {
    if (closed || waitTimers.has(tenantId)) return;
    const timer = setTimeout(
      () => {
        waitTimers.delete(tenantId);
        waitedTurns = waitedTurns
          .then(() => applyWaiting(tenantId, apply))
          .catch((error: Error) =>
            logger.error('waiting snapshot not applied', { tenant_id: tenantId, error: error.message }),
          );
      },
      Math.ceil(apply.waitMs(tenantId)),
    );
    timer.unref();
    waitTimers.set(tenantId, timer);
  };

  const applyWaiting = async (tenantId: string, apply: TenantApplyBudget): Promise<void> => {
    // A version being applied schedules the waiting one once it is done.
    if (closed || applyingLive.has(tenantId)) return;
    const snapshot = waiting.get(tenantId);
    if (snapshot === undefined) return;
    if (apply.waitMs(tenantId) > 0) return scheduleWaiting(tenantId, apply);
    waiting.delete(tenantId);
    await applyOwnTurn(snapshot, apply);
  };

  /** A tenant deleted: its waiting version, if not newer than the deletion, is never applied. */
  const dropWaiting = (tenantId: string, deletedVersion: bigint): void => {
    const queued = waiting.get(tenantId);
    if (queued === undefined || BigInt(queued.version) > deletedVersion) return;
    waiting.delete(tenantId);
    clearTimeout(waitTimers.get(tenantId));
    waitTimers.delete(tenantId);
  };

  const onMessage = async (message: SnapshotMessage): Promise<void> => {
    signedRecordRead = true;
    fromFileOnly.delete(message.tenantId);
    const deletedVersion = deletedAt.get(message.tenantId);
    if (deletedVersion !== undefined && message.version <= deletedVersion) return;
    if (message.kind === 'tombstone') {
      deletedAt.set(message.tenantId, message.version);
      dropWaiting(message.tenantId, message.version);
      const applied = sink.appliedVersions().get(message.tenantId);
      if (applied !== undefined && applied > message.version) return; // a newer snapshot wins
      if (sink.remove(message.tenantId)) {
        metrics.version.remove({ tenant: message.tenantId });
        metrics.versionsWaited.remove({ tenant: message.tenantId });
        logger.info('tenant removed', { tenant_id: message.tenantId, version: message.version.toString() });
      }
      store?.delete(message.tenantId);
      heartbeat?.removed(message.tenantId);
      fileWrites?.changed();
      return;
    }
    // Until caught up every version is applied at once: ready means every tenant is served.
    if (caughtUp && budget !== undefined) await applyLive(message.snapshot, budget);
    else await applySnapshot(message.snapshot, caughtUp);
    if (noAcceptedKey) {
      noAcceptedKey = false;
      markReady('a snapshot signed by an accepted key was applied');
    }
  };

  const onCaughtUp = (): void => {
    caughtUp = true;
    // Tenants known only from the file were deleted while we were away (their tombstone compacted).
    for (const tenantId of fromFileOnly) {
      if (sink.remove(tenantId)) metrics.version.remove({ tenant: tenantId });
      // Reported while served from the file, when the bus was unreachable at start (ready before now).
      heartbeat?.removed(tenantId);
      store?.delete(tenantId);
      fileWrites?.changed();
    }
    fromFileOnly.clear();
    // Every record refused for its key and none taken: the verify keys lack the projector's (the old
    // key removed before the projector signed with the new one, another deployment's key). Ready, the
    // replica would serve no tenant, and a rolling deploy would replace every replica that does.
    if (!signedRecordRead && unacceptedKey !== undefined) {
      noAcceptedKey = true;
      lastError = `no snapshot record is signed by a key SNAPSHOT_VERIFY_KEYS_FILE accepts: ${unacceptedKey}`;
      logger.error('not ready: no snapshot record on the topic is signed by an accepted key', {
        replica_id: replicaId,
        reason: unacceptedKey,
      });
      return;
    }
    markReady('caught up with the snapshot topic');
  };

  const onHealth = (next: BusHealth): void => {
    const wasDegraded = health?.connected === false;
    health = next;
    if (next.lag !== undefined) metrics.lag.set(next.lag);
    metrics.degraded.set(next.connected ? 0 : 1);
    if (!next.connected) {
      lastError = next.error ?? 'snapshot bus unreachable';
      if (!wasDegraded)
        logger.warn('snapshot bus unreachable; serving the last known config', { error: lastError });
      if (!ready && !caughtUp && warmStarted)
        markReady('snapshot bus unreachable; serving the snapshot file');
    } else if (wasDegraded) {
      logger.info('snapshot bus reachable again; catching up');
    }
  };

  // Warm start, then subscribe; the caller gets the handle at once and awaits `ready`.
  const started = (async () => {
    if (options.snapshotFile && store) {
      try {
        const loaded = await store.load();
        // Snapshots from the earlier single file are all written again, into the per-tenant store.
        const persist = store.loadedLegacyFile;
        for (const snapshot of loaded.snapshots) {
          if (await applySnapshot(snapshot, false, persist)) fromFileOnly.add(snapshot.tenant_id);
        }
        warmStarted = loaded.snapshots.length > 0;
        if (loaded.skipped.length > 0) {
          logger.warn(
            'snapshot files skipped (unreadable, invalid, another tenant’s or not the replica’s own)',
            {
              skipped: loaded.skipped.length,
              examples: loaded.skipped.slice(0, 5),
            },
          );
        }
        if (store.hasChanges) fileWrites?.changed();
        if (warmStarted)
          logger.info('warm start from the snapshot file', { tenants: loaded.snapshots.length });
      } catch (error) {
        logger.warn('snapshot file unreadable; starting cold', {
          file: options.snapshotFile,
          error: (error as Error).message,
        });
      }
    }

    metrics.ready.set(0);
    const logUnverified = createUnverifiedRecordLog(logger, now);
    return bus.subscribe({
      onMessage,
      onCaughtUp,
      onHealth,
      onInvalidMessage: (problem) => {
        // A record of the tenant, unreadable or not, says it was not deleted: it keeps the file's config.
        if (problem.tenantId !== null) fromFileOnly.delete(problem.tenantId);
        signedRecordRead = true;
        metrics.invalidMessages.inc();
        logger.error('invalid snapshot message skipped', {
          tenant_id: problem.tenantId,
          reason: problem.reason,
        });
      },
      // Unlike an unreadable record, a forged one says nothing of its tenant: a tenant known only from
      // the file stays due for removal.
      onUnverifiedMessage: (problem) => {
        if (!caughtUp && problem.reason === 'unknown_key') unacceptedKey = problem.detail;
        metrics.unverifiedMessages.inc({ reason: problem.reason });
        logUnverified(problem);
      },
    });
  })();
  started.catch((error: Error) => logger.error('config plane could not subscribe', { error: error.message }));

  return {
    ready: readyPromise,
    status: () => ({
      ready,
      degraded: health?.connected === false,
      caughtUp,
      lag: health?.lag ?? 0,
      tenants: sink.appliedVersions().size,
      warmStarted,
      lastError,
      noAcceptedKey,
    }),
    async close() {
      closed = true;
      for (const timer of waitTimers.values()) clearTimeout(timer);
      waitTimers.clear();
      waiting.clear();
      await (await started.catch(() => undefined))?.close();
      // A waited version being applied is, like the bus's own, over before its tenant is reported
      // and written to the snapshot files for the last time.
      await waitedTurns;
      await heartbeat?.stop();
      await fileWrites?.close();
    },
  };
}

function snapshotFileWrites(
  file: string,
  store: SnapshotStore,
  options: Pick<ConfigPlaneOptions, 'snapshotFileDelayMs' | 'snapshotFileIntervalMs'>,
  logger: StructuredLogger,
): PacedFileWrites {
  const writes = paceFileWrites({
    write: () => store.flush(),
    delayMs: options.snapshotFileDelayMs ?? 1000,
    intervalMs: options.snapshotFileIntervalMs ?? DEFAULT_SNAPSHOT_FILE_INTERVAL_MS,
    onError: (error) => {
      logger.warn('could not write the snapshot files', { file, error: error.message });
      // What failed is still behind in the store: tried again after the interval, not only at the
      // next change.
      if (store.hasChanges) writes.changed();
    },
  });
  return writes;
}
