import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { createCacheStage } from '../services/gateway/src/cache/cache-stage.js';
import { createResponseCache } from '../services/gateway/src/cache/response-cache.js';
import { GatewayConfigStore } from '../services/gateway/src/config/gateway-config-store.js';
import { parseGatewayConfig } from '../services/gateway/src/config.js';
import { createRateLimitStage } from '../services/gateway/src/ratelimit/rate-limit-stage.js';
import { createRateLimiter } from '../services/gateway/src/ratelimit/rate-limiter.js';
import { startGateway } from '../services/gateway/src/start-gateway.js';
import { createUpstreamSet } from '../services/gateway/src/upstream/index.js';
import { tenantSnapshot } from '../shared/src/domain/gateway-config.js';
import { createLogger } from '../shared/src/observability/logger.js';
import { createMetricsRegistry } from '../shared/src/observability/metrics.js';
import { createRedisClient, whenReady } from '../shared/src/redis/client.js';

/**
 * The gateway under test, as its own process (the harness pins it to the proxy core). Composed like
 * services/gateway/src/main.ts — GatewayConfigStore with the rate-limit and cache compile hooks,
 * upstream sets, startGateway with the rate-limit and cache stages — except that tenant snapshots come
 * from a JSON file (BENCH_SNAPSHOT_FILE, an array of TenantSnapshot) instead of Kafka.
 *
 * Environment: BENCH_SNAPSHOT_FILE, GATEWAY_PORT, API_KEY_PEPPER, REDIS_URL, BENCH_REDIS_PREFIX,
 * BENCH_L1_BYTES (1 = L1 off), GATEWAY_ACCESS_LOG_SAMPLE_RATE, CLERK_JWT_KEY, BENCH_PROFILE_FILE.
 * Ready when GET /__bench_ready on the traffic port answers (404 from the gateway is fine).
 */
const snapshotFile = process.env['BENCH_SNAPSHOT_FILE'];
if (!snapshotFile) throw new Error('BENCH_SNAPSHOT_FILE is required');
const config = parseGatewayConfig({
  ...process.env,
  GATEWAY_HOST: '127.0.0.1',
  GATEWAY_ADMIN_PORT: process.env['GATEWAY_ADMIN_PORT'] ?? '0',
  LOG_LEVEL: process.env['LOG_LEVEL'] ?? 'info',
});
const prefix = process.env['BENCH_REDIS_PREFIX'] ?? `bench:${process.pid}:`;
const logger = createLogger({ service: 'gateway', level: config.LOG_LEVEL });
const registry = createMetricsRegistry('gateway');
const redis = createRedisClient({
  url: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:56379',
  name: 'gateway-bench',
  logger,
});
await whenReady(redis);

const rateLimitStage = createRateLimitStage(
  createRateLimiter({ redis, registry, logger, keyPrefix: prefix }),
);
const responseCache = createResponseCache({
  redis,
  l1MaxBytes: Number(process.env['BENCH_L1_BYTES'] ?? 64 * 1024 * 1024),
  registry,
  logger,
  keyPrefix: prefix,
});
const cacheStage = createCacheStage(responseCache);
const prepared: Promise<void>[] = [];
const store = new GatewayConfigStore({
  baseDomains: config.GATEWAY_BASE_DOMAINS,
  hooks: [
    rateLimitStage,
    cacheStage,
    { compile: (tenant) => void prepared.push(responseCache.prepareTenant(tenant.id).catch(() => {})) },
  ],
  createUpstreamSet: (origin, tenantId) => createUpstreamSet(origin, { tenantId, registry, logger }),
  onWarning: (warning) =>
    logger.warn('snapshot problem', { tenant_id: warning.tenantId, problem: warning.message }),
});

const snapshots = JSON.parse(readFileSync(snapshotFile, 'utf8')) as unknown[];
for (const raw of snapshots) store.apply(tenantSnapshot.parse(raw));
await Promise.all(prepared);

const gateway = await startGateway({ config, store, registry, logger, stages: [rateLimitStage, cacheStage] });
process.stderr.write(`${JSON.stringify({ port: gateway.trafficPort, tenants: snapshots.length })}\n`);

// BENCH_PROFILE_FILE: a V8 CPU profile of serving only (started after startup, written on SIGTERM).
const profileFile = process.env['BENCH_PROFILE_FILE'];
const profiler = profileFile ? new Session() : undefined;
if (profiler) {
  profiler.connect();
  await profiler.post('Profiler.enable');
  await profiler.post('Profiler.setSamplingInterval', { interval: 500 });
  await profiler.post('Profiler.start');
}

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  if (profiler && profileFile) {
    const { profile } = await profiler.post('Profiler.stop');
    writeFileSync(profileFile, JSON.stringify(profile));
  }
  await gateway.close();
  await store.close();
  await responseCache.close();
  redis.disconnect();
  process.exit(0);
}
process.once('SIGTERM', () => void shutdown());
process.once('SIGINT', () => void shutdown());
