import { OriginAddressPolicy } from '@vantageedge/shared/net/origin-address-policy';
import type { Logger } from '@vantageedge/shared/observability/logger';
import type { RedisClient } from '@vantageedge/shared/redis/client';
import { platformBaseDomains } from '@vantageedge/shared/settings/common-settings';
import type { SnapshotBus } from '@vantageedge/shared/snapshot-bus/port';
import { keyRingFromSettings } from '@vantageedge/shared/tls/settings';
import { InMemoryQuotaStore, type QuotaStore, RedisQuotaStore } from '@vantageedge/shared/usage/quota-store';
import { RedisUsageBatchStore } from '@vantageedge/shared/usage/redis-usage-batch-store';
import { StoreClock } from '@vantageedge/shared/usage/store-clock';
import type { UsageBatchStore } from '@vantageedge/shared/usage/usage-cells';
import { Counter, type Registry } from 'prom-client';
import { createCacheStage } from './cache/cache-stage.js';
import { cacheEvictionRecorder } from './cache/eviction-metrics.js';
import { MemoryCacheStore } from './cache/memory-cache-store.js';
import { RedisCacheStore } from './cache/redis-cache-store.js';
import { createResponseCache, type ResponseCache } from './cache/response-cache.js';
import { GatewayConfigStore } from './config/gateway-config-store.js';
import { type ConfigPlane, startConfigPlane } from './config-plane/config-plane.js';
import type { LineSink } from './observability/batched-line-writer.js';
import { trustedProxiesFromSettings } from './proxy/client-address.js';
import { createQuotaStage } from './quota/quota-stage.js';
import type { LimitStore } from './ratelimit/limit-store.js';
import { MemoryLimitStore } from './ratelimit/memory-limit-store.js';
import { createRateLimitStage } from './ratelimit/rate-limit-stage.js';
import { createRateLimiter } from './ratelimit/rate-limiter.js';
import { RedisLimitStore } from './ratelimit/redis-limit-store.js';
import { limitCallsPerNode } from './ratelimit/tenant-limit-calls.js';
import { type GatewaySettings, upstreamRequestsPerTenant } from './settings.js';
import { type RunningGateway, remoteJwksFromConfig, startGateway } from './start-gateway.js';
import {
  createUpstreamSet,
  stateChangeLineBudget,
  TenantUpstreamSockets,
  targetLabelBudget,
} from './upstream/index.js';
import { originClientCertificates } from './upstream/origin-client-certificate.js';
import { OriginTlsBudget } from './upstream/origin-tls-budget.js';
import { ProbeBudget } from './upstream/probe-budget.js';
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
  // The configured ports are refused before the listeners are up (health checks start with the first
  // snapshot); startGateway adds the bound ports.
  const addressPolicy = new OriginAddressPolicy(config.ORIGIN_BLOCKED_CIDRS, [
    { host: config.GATEWAY_HOST, port: config.GATEWAY_PORT },
    { host: config.GATEWAY_HOST, port: config.GATEWAY_ADMIN_PORT },
  ]);
  const remoteJwks = remoteJwksFromConfig(config, registry, logger, addressPolicy);
  const hostsRefused = new Counter({
    name: 'vantageedge_gateway_host_claims_refused_total',
    help: 'Hosts a snapshot names that this replica does not route to that tenant, by reason',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const probeBudget = new ProbeBudget({
    perSecond: config.GATEWAY_HEALTH_PROBES_PER_SECOND,
    maxSocketsPerTenant: config.GATEWAY_MAX_PROBE_SOCKETS_PER_TENANT,
    registry,
  });
  const upstreamSockets = new TenantUpstreamSockets(upstreamRequestsPerTenant(config));
  const originTlsBudget = new OriginTlsBudget({
    msPerSecond: config.GATEWAY_ORIGIN_TLS_CHECK_MS_PER_SECOND,
    burstMs: config.GATEWAY_ORIGIN_TLS_CHECK_BURST_MS,
    perTenantAtOnce: config.GATEWAY_ORIGIN_TLS_HANDSHAKES_PER_TENANT,
    registry,
  });
  const targetLabels = targetLabelBudget(config);
  const stateChangeLines = stateChangeLineBudget(logger);
  const originClientCertificate = originClientCertificates(keyRingFromSettings(config), logger);
  const store = new GatewayConfigStore({
    baseDomains: platformBaseDomains(config),
    remoteJwks,
    createUpstreamSet: (origin, tenantId, clientCertificate) =>
      createUpstreamSet(origin, {
        tenantId,
        ...originClientCertificate(origin, tenantId, clientCertificate),
        registry,
        logger,
        stateChangeLines,
        probeBudget,
        addressPolicy,
        targetLabels,
        connectionsPerTarget: config.GATEWAY_UPSTREAM_CONNECTIONS_PER_TARGET,
        maxQueuedPerTarget: config.GATEWAY_UPSTREAM_MAX_QUEUED_REQUESTS,
        clientShare: config.GATEWAY_UPSTREAM_CLIENT_SHARE,
        clientIpv6Prefix: config.GATEWAY_CLIENT_IPV6_PREFIX,
        trustedProxies: trustedProxiesFromSettings(config).ranges,
        upstreamSockets,
        originTlsBudget,
      }),
    maxUpstreamRequestsPerTenant: upstreamRequestsPerTenant(config),
    onWarning: (warning) =>
      logger.warn('snapshot problem', { tenant_id: warning.tenantId, problem: warning.message }),
    onHostRefused: (refusal) => hostsRefused.inc({ reason: refusal.reason }),
    onCloseError: (error) => logger.warn('closing an upstream set failed', { error: String(error) }),
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
