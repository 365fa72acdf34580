import { createRedisCachePurger } from '@vantageedge/shared/cache-purge/redis-cache-purger';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import { OriginAddressPolicy } from '@vantageedge/shared/net/origin-address-policy';
import type { Logger } from '@vantageedge/shared/observability/logger';
import type { RedisClient } from '@vantageedge/shared/redis/client';
import { clerkIssuerOf } from '@vantageedge/shared/settings/clerk-issuer';
import { platformBaseDomains } from '@vantageedge/shared/settings/common-settings';
import { SettingsError } from '@vantageedge/shared/settings/load-settings';
import { keyRingFromSettings } from '@vantageedge/shared/tls/settings';
import { type QuotaStore, RedisQuotaStore } from '@vantageedge/shared/usage/quota-store';
import type express from 'express';
import type pg from 'pg';
import type { Registry } from 'prom-client';
import { adminRateLimitsFromSettings } from './admin-rate-limit/admin-rate-limits.js';
import { NETWORKLESS_PUBLISHABLE_KEY } from './auth/caller-middleware.js';
import type { CachePurger } from './cache-purge/cache-purger.js';
import { createTxtLookup } from './commands/dns-txt.js';
import { snapshotBudgetFromSettings } from './commands/snapshot-guard.js';
import { tenantLimitsFromSettings } from './commands/tenant-limits.js';
import { createConfigReadBudget, useConfigReadBudget } from './config-history/config-read-budget.js';
import { createTenantFoldCache, useTenantFoldCache } from './config-history/tenant-folds.js';
import { createControlPlaneApp } from './http/app.js';
import type { DevSignIn } from './http/console-router.js';
import { createApiKeyQuotaReader } from './queries/api-key-quota.js';
import { createQueryRouter } from './queries/router.js';
import { createTenantDirectory } from './queries/tenant-directory.js';
import type { ReplicaVersionReader } from './rollout/rollout-status.js';
import type { ControlPlaneSettings } from './settings.js';

/**
 * The admin API (commands + mounted query router) as the settings describe it. Used by
 * `make run-control-plane` (main.ts) and the single-process `make dev`.
 */
export function controlPlaneAppFromSettings(
  settings: ControlPlaneSettings,
  {
    store,
    pool,
    logger,
    metrics,
    redis,
    cacheRedis,
    cachePurger,
    originAddressPolicy,
    devSignIn,
    quotaStore,
    replicaVersions,
    stopping,
  }: {
    store: EventStore;
    pool: pg.Pool;
    logger: Logger;
    metrics: Registry;
    /**
     * Enables rollout status (gateway heartbeats) and, unless `cachePurger` is given, cache purges;
     * the admin rate limits count in it (else per process).
     */
    redis?: RedisClient | undefined;
    /** The gateways' cache Redis (GATEWAY_CACHE_REDIS_URL) when it is not `redis`: purges go there. */
    cacheRedis?: RedisClient | undefined;
    /** Single-process mode hands over the gateway's own cache. */
    cachePurger?: CachePurger | undefined;
    /**
     * Single-process mode shares the gateway's policy (which knows its listeners); otherwise one from
     * ORIGIN_BLOCKED_CIDRS and the control plane's own listeners (the admin API's and the metrics one).
     */
    originAddressPolicy?: OriginAddressPolicy | undefined;
    /** `make dev` issues development tokens for the console's sign-in (used only in dev mode). */
    devSignIn?: DevSignIn | undefined;
    /** The gateways' quota counters; default: Redis (when given) under GATEWAY_REDIS_KEY_PREFIX. */
    quotaStore?: QuotaStore | undefined;
    /** Single-process mode without Redis: rollout status from the gateway in this process. */
    replicaVersions?: ReplicaVersionReader | undefined;
    /** Aborted when the process begins to stop: requests waiting for a rollout are answered at once. */
    stopping?: AbortSignal | undefined;
  },
): express.Express {
  const certificateKeyRing = keyRingFromSettings(settings);
  const issuer = clerkIssuerOf(settings);
  if (issuer === undefined) {
    throw new SettingsError([{ setting: 'CLERK_ISSUER', issue: 'is required (or CLERK_PUBLISHABLE_KEY)' }]);
  }
  const purgeRedis = cacheRedis ?? redis;
  const purger =
    cachePurger ??
    (purgeRedis ? createRedisCachePurger(purgeRedis, settings.GATEWAY_REDIS_KEY_PREFIX) : undefined);
  const quotas =
    quotaStore ??
    (redis
      ? new RedisQuotaStore(redis, { tenantMaxKeys: settings.GATEWAY_QUOTA_TENANT_MAX_KEYS })
      : undefined);
  useTenantFoldCache(store, createTenantFoldCache({ maxBytes: settings.CONTROL_PLANE_CONFIG_CACHE_BYTES }));
  useConfigReadBudget(
    store,
    createConfigReadBudget({ bytesPerMinute: settings.CONTROL_PLANE_TENANT_CONFIG_READ_BYTES_PER_MINUTE }),
  );
  return createControlPlaneApp({
    ...(redis
      ? {
          rollout: {
            pool,
            redis,
            prefix: settings.ROLLOUT_KEY_PREFIX,
            ttlSeconds: settings.ROLLOUT_HEARTBEAT_TTL_SECONDS,
            ...(stopping ? { stopping } : {}),
          },
        }
      : replicaVersions
        ? { rollout: { pool, replicaVersions, ...(stopping ? { stopping } : {}) } }
        : {}),
    ...(stopping ? { stopping } : {}),
    ...(purger ? { cachePurger: purger } : {}),
    ...(certificateKeyRing ? { certificateKeyRing } : {}),
    originAddressPolicy:
      originAddressPolicy ??
      new OriginAddressPolicy(settings.ORIGIN_BLOCKED_CIDRS, [
        { host: settings.CONTROL_PLANE_HOST, port: settings.CONTROL_PLANE_PORT },
        // Port 0 (the listener off) is never registered.
        { host: settings.CONTROL_PLANE_METRICS_HOST, port: settings.CONTROL_PLANE_METRICS_PORT },
      ]),
    store,
    pool,
    auth: {
      jwtKey: settings.CLERK_JWT_KEY,
      secretKey: settings.CLERK_SECRET_KEY,
      // With networkless verification Clerk still wants a well-formed publishable key.
      publishableKey: settings.CLERK_PUBLISHABLE_KEY ?? NETWORKLESS_PUBLISHABLE_KEY,
      issuer,
      authorizedParties: settings.CONTROL_PLANE_AUTHORIZED_PARTIES,
      platformAdminUserIds: new Set(settings.PLATFORM_ADMIN_USER_IDS),
      allowDevTokens: settings.VANTAGEEDGE_DEV_MODE,
    },
    gatewayAuthorizedParties: settings.CLERK_AUTHORIZED_PARTIES,
    tenantDirectory: createTenantDirectory(pool),
    customDomains: {
      baseDomains: platformBaseDomains(settings),
      lookupTxt: createTxtLookup(settings.DNS_RESOLVER ?? []),
    },
    apiKeyPepper: settings.API_KEY_PEPPER,
    ...(quotas ? { quotaCounters: { store: quotas, keyPrefix: settings.GATEWAY_REDIS_KEY_PREFIX } } : {}),
    gatewayEncodedSlashes: settings.GATEWAY_ENCODED_SLASHES,
    rotationGraceSeconds: settings.API_KEY_ROTATION_GRACE_SECONDS,
    tenantLimits: tenantLimitsFromSettings(settings),
    reservedSubdomains: settings.RESERVED_SUBDOMAINS,
    snapshotBudget: snapshotBudgetFromSettings(settings),
    adminRateLimits: {
      limits: adminRateLimitsFromSettings(settings),
      redis,
      keyPrefix: settings.GATEWAY_REDIS_KEY_PREFIX,
    },
    authFailures: {
      perMinute: settings.CONTROL_PLANE_AUTH_FAILURES_PER_MINUTE,
      trustedProxies: settings.CONTROL_PLANE_TRUSTED_PROXIES,
      ipv6Prefix: settings.CONTROL_PLANE_CLIENT_IPV6_PREFIX,
    },
    ...(settings.OTEL_ENABLED ? { tracing: { trustedProxies: settings.CONTROL_PLANE_TRUSTED_PROXIES } } : {}),
    userRequestsInFlight: settings.CONTROL_PLANE_USER_REQUESTS_IN_FLIGHT,
    tenantRequestsInFlight: settings.CONTROL_PLANE_TENANT_REQUESTS_IN_FLIGHT,
    orgRequestsInFlight: settings.CONTROL_PLANE_ORG_REQUESTS_IN_FLIGHT,
    requestsInFlight: settings.CONTROL_PLANE_REQUESTS_IN_FLIGHT,
    documentBytesInFlight: settings.CONTROL_PLANE_DOCUMENT_BYTES_IN_FLIGHT,
    bodyLimitBytes: settings.CONTROL_PLANE_BODY_LIMIT_BYTES,
    documentLimitBytes: settings.CONTROL_PLANE_DOCUMENT_LIMIT_BYTES,
    configReadMaxEvents: settings.CONTROL_PLANE_CONFIG_READ_MAX_EVENTS,
    readStatementTimeoutMs: settings.CONTROL_PLANE_READ_STATEMENT_TIMEOUT_MS,
    logger,
    metrics,
    console: {
      directory: settings.CONSOLE_DIR,
      clerkPublishableKey: settings.CLERK_PUBLISHABLE_KEY,
      devSignIn: settings.VANTAGEEDGE_DEV_MODE ? devSignIn : undefined,
    },
    queryRouter: (authorizer, eventLogAuthorizer) =>
      createQueryRouter({
        pool,
        authorizer,
        eventLogAuthorizer,
        eventStore: store,
        onReplayError: (error) => logger.error('replay failed', { error: String(error) }),
        apiKeyQuota: quotas ? createApiKeyQuotaReader(quotas, settings.GATEWAY_REDIS_KEY_PREFIX) : undefined,
        usageQueryTimeoutMs: settings.USAGE_QUERY_TIMEOUT_MS,
        readStatementTimeoutMs: settings.CONTROL_PLANE_READ_STATEMENT_TIMEOUT_MS,
        configReadMaxEvents: settings.CONTROL_PLANE_CONFIG_READ_MAX_EVENTS,
      }),
  });
}
