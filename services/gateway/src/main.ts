import 'dotenv/config';
import { loadConfigOrExit } from '../../../shared/src/config/load-config.js';
import { createLogger } from '../../../shared/src/observability/logger.js';
import { createMetricsRegistry } from '../../../shared/src/observability/metrics.js';
import {
  createRedisClient,
  redisClientOptionsFromSettings,
  redisSettings,
} from '../../../shared/src/redis/client.js';
import {
  configPlaneSettings,
  snapshotBusFromSettings,
  snapshotBusSettings,
} from '../../../shared/src/snapshot-bus/settings.js';
import { createCacheStage } from './cache/cache-stage.js';
import { createResponseCache } from './cache/response-cache.js';
import { GatewayConfigStore } from './config/gateway-config-store.js';
import { gatewaySettings } from './config.js';
import { startConfigPlane } from './config-plane/config-plane.js';
import { startGatewayTelemetry } from './observability/gateway-telemetry.js';
import { createRateLimitStage } from './ratelimit/rate-limit-stage.js';
import { createRateLimiter } from './ratelimit/rate-limiter.js';
import { startGateway } from './start-gateway.js';
import { createUpstreamSet } from './upstream/index.js';

/**
 * `make run-gateway`: one gateway replica. Composition only — every part is built by its module:
 * config store (compiled tenants) ← config plane (snapshots from the bus) → request pipeline.
 * Rate limit and cache stages are passed to startGateway({ stages }) once wired.
 */
const config = loadConfigOrExit('gateway', {
  ...snapshotBusSettings,
  ...redisSettings,
  ...configPlaneSettings,
  ...gatewaySettings,
});
const telemetry = startGatewayTelemetry({
  enabled: config.OTEL_ENABLED,
  serviceName: config.OTEL_SERVICE_NAME ?? 'gateway',
  otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
});
const logger = createLogger({ service: 'gateway', level: config.LOG_LEVEL });
const registry = createMetricsRegistry('gateway');
const redis = createRedisClient({ ...redisClientOptionsFromSettings(config), name: 'gateway', logger });

// GW-LIMITS stages: limits and cache policies compiled per snapshot (hooks), run between auth and proxy.
const rateLimitStage = createRateLimitStage(createRateLimiter({ redis, registry, logger }));
const responseCache = createResponseCache({ redis, l1MaxBytes: 64 * 1024 * 1024, registry, logger });
const cacheStage = createCacheStage(responseCache);
const store = new GatewayConfigStore({
  baseDomains: config.GATEWAY_BASE_DOMAINS,
  hooks: [
    rateLimitStage,
    cacheStage,
    { compile: (tenant) => void responseCache.prepareTenant(tenant.id).catch(() => {}) },
  ],
  createUpstreamSet: (origin, tenantId) => createUpstreamSet(origin, { tenantId, registry, logger }),
  onWarning: (warning) =>
    logger.warn('snapshot problem', { tenant_id: warning.tenantId, problem: warning.message }),
  onCloseError: (error) => logger.warn('closing an upstream set failed', { error: String(error) }),
});

const bus = snapshotBusFromSettings(config, { clientId: `ve-gateway-${config.GATEWAY_REPLICA_ID}` });
const configPlane = startConfigPlane({
  bus,
  sink: store,
  registry,
  logger,
  redis,
  replicaId: config.GATEWAY_REPLICA_ID,
  ...(config.CONFIG_SNAPSHOT_FILE ? { snapshotFile: config.CONFIG_SNAPSHOT_FILE } : {}),
  rollout: { prefix: config.ROLLOUT_KEY_PREFIX, ttlSeconds: config.ROLLOUT_HEARTBEAT_TTL_SECONDS },
});

const gateway = await startGateway({
  config,
  store,
  registry,
  logger,
  tracingEnabled: telemetry.enabled,
  stages: [rateLimitStage, cacheStage],
  readiness: () => {
    const status = configPlane.status();
    return status.ready
      ? { ready: true }
      : { ready: false, reason: status.lastError ?? 'snapshots not caught up' };
  },
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info('gateway stopping', { signal });
  await gateway.close();
  await configPlane.close();
  await bus.close();
  await store.close();
  await responseCache.close();
  redis.disconnect();
  await telemetry.shutdown();
  process.exit(0);
}
process.once('SIGINT', () => void shutdown('SIGINT'));
process.once('SIGTERM', () => void shutdown('SIGTERM'));
