import type { OriginAddressPolicy } from '@vantageedge/shared/net/origin-address-policy';
import type { Logger } from '@vantageedge/shared/observability/logger';
import type { RedisClient } from '@vantageedge/shared/redis/client';
import type { SnapshotBus } from '@vantageedge/shared/snapshot-bus/port';
import { InMemoryQuotaStore, type QuotaStore, RedisQuotaStore } from '@vantageedge/shared/usage/quota-store';
import { RedisUsageBatchStore } from '@vantageedge/shared/usage/redis-usage-batch-store';
import { StoreClock } from '@vantageedge/shared/usage/store-clock';
import type { UsageBatchStore } from '@vantageedge/shared/usage/usage-cells';
import type { Registry } from 'prom-client';
import { createCacheStage } from './cache/cache-stage.js';
import { cacheEvictionRecorder } from './cache/eviction-metrics.js';
import { MemoryCacheStore } from './cache/memory-cache-store.js';
import { RedisCacheStore } from './cache/redis-cache-store.js';
import { createResponseCache, type ResponseCache } from './cache/response-cache.js';
import type { GatewayConfigStore } from './config/gateway-config-store.js';
import { type ConfigPlane, startConfigPlane } from './config-plane/config-plane.js';
import type { LineSink } from './observability/batched-line-writer.js';
import { createQuotaStage } from './quota/quota-stage.js';
import type { LimitStore } from './ratelimit/limit-store.js';
import { MemoryLimitStore } from './ratelimit/memory-limit-store.js';
import { createRateLimitStage } from './ratelimit/rate-limit-stage.js';
import { createRateLimiter } from './ratelimit/rate-limiter.js';
import { RedisLimitStore } from './ratelimit/redis-limit-store.js';
import { limitCallsPerNode } from './ratelimit/tenant-limit-calls.js';
import { createReplicaConfigStore } from './replica-config-store.js';
import type { GatewaySettings } from './settings.js';
import { type RunningGateway, startGateway } from './start-gateway.js';
import { UsageRecorder } from './usage/usage-recorder.js';

export interface GatewayReplicaOptions {
  config: GatewaySettings & {
    ROLLOUT_KEY_PREFIX: string;
    ROLLOUT_HEARTBEAT_TTL_SECONDS: number;
    CONFIG_SNAPSHOT_FILE?: string | undefined;
    CONFIG_SNAPSHOT_FILE_INTERVAL_SECONDS?: number | undefined;
    CONFIG_TENANT_APPLY_SHARE_PERCENT?: number | undefined;
  };
  /** Where tenant snapshots come from (Kafka, or the in-memory bus of the single-process dev mode). */
  bus: SnapshotBus;
  /**
   * Shared rate limits, quotas, usage batches, rollout heartbeats and (without `cacheRedis`) the cache;
   * without it all of them live in this process.
   */
  redis?: RedisClient | undefined;
  /**
   * The response cache's own connection: to its own Redis (GATEWAY_CACHE_REDIS_URL), so cache pressure
   * never evicts a counter, or to the shared one, so counters never queue behind cache transfers.
   */
  cacheRedis?: RedisClient | undefined;
  registry: Registry;
  logger: Logger;
  tracingEnabled?: boolean;
  /** Where access-log lines go; default stdout. */
  accessLogSink?: LineSink;
  /**
   * Where the replica's usage batches go; default Redis (when given). Without either, requests are not
   * counted (single-process mode hands in the store its usage flusher reads).
   */
  usageBatches?: UsageBatchStore;
  /** The quota counters; default Redis (when given), else this process's memory. */
  quotaStore?: QuotaStore;
  /** This replica's own clock (default the system's); the quota periods and usage hours follow Redis's. */
  clock?: () => number;
}

export interface GatewayReplica {
  gateway: RunningGateway;
  configPlane: ConfigPlane;
  store: GatewayConfigStore;
  /** The replica's response cache; single-process mode hands it to the control plane for purges. */
  responseCache: ResponseCache;
  /** Where the replica connects for tenants; single-process mode adds the control plane's listener. */
  addressPolicy: OriginAddressPolicy;
  /** Stops the listeners, the config plane, the upstream sets and the cache (not the bus or Redis). */
  close(): Promise<void>;
  /**
   * The graceful stop (SIGTERM): /readyz answers 503 at once while the listener keeps accepting for
   * `drainMs` (load balancers notice), then it stops accepting, requests in flight get `timeoutMs` to
   * finish, the connections that remain are closed, and everything else is closed as by close().
   */
  drainAndClose(options: { drainMs: number; timeoutMs: number }): Promise<void>;
}

/** How often a replica reads Redis's clock (TIME) besides the quota decisions that carry it. */
const STORE_CLOCK_SYNC_INTERVAL_MS = 10_000;

/**
 * One gateway replica, composed from its modules: config store (compiled tenants) ← config plane
 * (snapshots from the bus) → request pipeline, whose route policies (auth, rate limit, cache) the
 * store compiles onto every route. Used by `make run-gateway` and `make dev`.
 */
export async function startGatewayReplica(options: GatewayReplicaOptions): Promise<GatewayReplica> {
  const { config, bus, redis, registry, logger } = options;
  const keyPrefix = config.GATEWAY_REDIS_KEY_PREFIX;
  // With Redis, limits and cached responses are shared by every replica; without, this process is the
  // only one and keeps them in memory.
  const limitStore: LimitStore = redis
    ? new RedisLimitStore(redis, { tenantMaxKeys: config.GATEWAY_RATE_LIMIT_TENANT_MAX_KEYS })
    : new MemoryLimitStore();
  const tenantBound = {
    tenantMaxBytes: config.GATEWAY_CACHE_TENANT_MAX_BYTES,
    onEvicted: cacheEvictionRecorder(registry),
  };
  const cacheRedis = options.cacheRedis ?? redis;
  const cacheStore = cacheRedis
    ? new RedisCacheStore(cacheRedis, {
        keyPrefix,
        logger,
        maxEntryBytes: config.GATEWAY_CACHE_STORE_MAX_ENTRY_BYTES,
        ...tenantBound,
      })
    : new MemoryCacheStore({
        maxBytes: config.GATEWAY_CACHE_L1_BYTES,
        tenantShare: config.GATEWAY_CACHE_L1_TENANT_SHARE,
        ...tenantBound,
      });
  // Rate-limit and quota calls go down the same Redis connection (one per master on a Cluster): a
  // tenant's turns on it count both.
  const tenantCalls = limitCallsPerNode(limitStore.nodeOf);
  const rateLimitStage = createRateLimitStage(
    createRateLimiter({ store: limitStore, registry, logger, keyPrefix, tenantCalls }),
  );
  const responseCache = createResponseCache({
    store: cacheStore,
    l1MaxBytes: config.GATEWAY_CACHE_L1_BYTES,
    l1TenantShare: config.GATEWAY_CACHE_L1_TENANT_SHARE,
    fillBudgetBytes: config.GATEWAY_CACHE_FILL_BYTES,
    maxVariantsPerUrl: config.GATEWAY_CACHE_MAX_VARIANTS,
    tenantStoreSlots: {
      maxCalls: config.GATEWAY_CACHE_STORE_TENANT_CALLS,
      maxBytes: config.GATEWAY_CACHE_STORE_TENANT_BYTES,
      maxQueued: config.GATEWAY_CACHE_STORE_TENANT_QUEUE,
      maxBytesInFlight: config.GATEWAY_CACHE_STORE_BYTES_IN_FLIGHT,
      unknownReadBytes: config.GATEWAY_CACHE_STORE_MAX_ENTRY_BYTES,
    },
    registry,
    logger,
  });
  const cacheStage = createCacheStage(responseCache, { encodedSlashes: config.GATEWAY_ENCODED_SLASHES });
  // Redis's clock as the quota counters last showed it: the quota periods and the usage hours follow
  // it, so replicas whose clocks disagree count a request into the same day and hour.
  const storeClock = new StoreClock(options.clock);
  const quotaStore =
    options.quotaStore ??
    (redis
      ? new RedisQuotaStore(redis, { tenantMaxKeys: config.GATEWAY_QUOTA_TENANT_MAX_KEYS })
      : new InMemoryQuotaStore({ tenantMaxKeys: config.GATEWAY_QUOTA_TENANT_MAX_KEYS }));
  const storeTime = quotaStore.time?.bind(quotaStore);
  const clockSync = storeTime ? storeClock.follow(storeTime, STORE_CLOCK_SYNC_INTERVAL_MS) : undefined;
  const quotaStage = createQuotaStage({
    store: quotaStore,
    keyPrefix,
    logger,
    registry,
    storeClock,
    tenantCalls,
  });
  const usageBatches =
    options.usageBatches ?? (redis ? new RedisUsageBatchStore(redis, keyPrefix) : undefined);
  const usage = usageBatches
    ? new UsageRecorder({
        batches: usageBatches,
        replicaId: config.GATEWAY_REPLICA_ID,
        intervalMs: config.GATEWAY_USAGE_FLUSH_INTERVAL_MS,
        maxUsersPerTenant: config.GATEWAY_USAGE_MAX_USERS_PER_TENANT,
        maxCells: config.GATEWAY_USAGE_MAX_CELLS,
        maxCellsPerTenant: config.GATEWAY_USAGE_MAX_CELLS_PER_TENANT,
        clock: storeClock.now,
        // A clock that is never read (a store without TIME) is the replica's own from the start.
        ...(storeTime ? { clockKnown: () => storeClock.known } : {}),
        logger,
        registry,
      }).start()
    : undefined;
  const { store, addressPolicy, remoteJwks, originTlsBudget } = createReplicaConfigStore({
    config,
    registry,
    logger,
  });

  const configPlane = startConfigPlane({
    bus,
    sink: store,
    registry,
    logger,
    ...(redis ? { redis } : {}),
    replicaId: config.GATEWAY_REPLICA_ID,
    ...(config.CONFIG_SNAPSHOT_FILE ? { snapshotFile: config.CONFIG_SNAPSHOT_FILE } : {}),
    ...(config.CONFIG_SNAPSHOT_FILE_INTERVAL_SECONDS
      ? { snapshotFileIntervalMs: config.CONFIG_SNAPSHOT_FILE_INTERVAL_SECONDS * 1000 }
      : {}),
    ...(config.CONFIG_TENANT_APPLY_SHARE_PERCENT !== undefined
      ? { tenantApplySharePercent: config.CONFIG_TENANT_APPLY_SHARE_PERCENT }
      : {}),
    rollout: { prefix: config.ROLLOUT_KEY_PREFIX, ttlSeconds: config.ROLLOUT_HEARTBEAT_TTL_SECONDS },
  });

  const gateway = await startGateway({
    config,
    store,
    registry,
    logger,
    tracingEnabled: options.tracingEnabled ?? false,
    ...(options.accessLogSink ? { accessLogSink: options.accessLogSink } : {}),
    remoteJwks,
    // Refused by the rate limit: not counted against the quota; a cache HIT is a request served.
    stages: [rateLimitStage, quotaStage, cacheStage],
    ...(usage ? { usage } : {}),
    addressPolicy,
    originTlsBudget,
    configLoaded: () => configPlane.status().caughtUp,
    readiness: () => {
      const status = configPlane.status();
      // /readyz is open to any caller of the admin port: the error itself (broker addresses, a tenant's
      // snapshot that failed to apply) is on /status, behind the admin token.
      if (!status.ready) {
        if (status.noAcceptedKey)
          return { ready: false, reason: 'no snapshot record signed by an accepted key' };
        const reason = status.degraded
          ? 'snapshot bus unreachable; snapshots not caught up'
          : 'snapshots not caught up';
        return { ready: false, reason };
      }
      // Still ready: taking it out of the load balancer would not bring Kafka back.
      return status.degraded
        ? { ready: true, reason: 'snapshot bus unreachable; serving the last known config' }
        : { ready: true };
    },
    snapshots: () => configPlane.status(),
  });

  const closeTheRest = async () => {
    // After the listeners: every request that finished is in the last batch.
    await usage?.close();
    clockSync?.stop();
    await configPlane.close();
    await store.close();
    await responseCache.close();
  };
  return {
    gateway,
    configPlane,
    store,
    responseCache,
    addressPolicy,
    async close() {
      await gateway.close();
      await closeTheRest();
    },
    async drainAndClose({ drainMs, timeoutMs }) {
      gateway.startDraining();
      if (drainMs > 0) {
        logger.info('draining: /readyz answers 503, still accepting', { drain_ms: drainMs });
        await new Promise((resolve) => setTimeout(resolve, drainMs));
      }
      logger.info('no longer accepting; finishing requests in flight', { timeout_ms: timeoutMs });
      await gateway.close({ timeoutMs });
      await closeTheRest();
    },
  };
}
