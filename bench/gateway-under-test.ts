import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { gatewaySettings } from '@vantageedge/gateway/settings';
import { startGatewayReplica } from '@vantageedge/gateway/start-gateway-replica';
import { tenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK } from '@vantageedge/shared/net/origin-address-policy';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createRedisClient, whenReady } from '@vantageedge/shared/redis/client';
import { parseSettings } from '@vantageedge/shared/settings/load-settings';
import { createInMemorySnapshotBus } from '@vantageedge/shared/snapshot-bus/in-memory-snapshot-bus';
import { configPlaneSettings } from '@vantageedge/shared/snapshot-bus/settings';

/**
 * The gateway under test, as its own process (the harness pins it to the proxy core): exactly the
 * replica `make run-gateway` starts (startGatewayReplica: config store, rate-limit and cache stages,
 * upstream sets, config plane), except that the tenant snapshots come from a JSON file
 * (BENCH_SNAPSHOT_FILE, an array of TenantSnapshot) through an in-memory snapshot bus instead of Kafka.
 *
 * Environment: BENCH_SNAPSHOT_FILE, GATEWAY_PORT, API_KEY_PEPPER, REDIS_URL, BENCH_REDIS_PREFIX,
 * BENCH_L1_BYTES (1 = L1 off), GATEWAY_ACCESS_LOG_SAMPLE_RATE, CLERK_JWT_KEY, BENCH_PROFILE_FILE.
 * Ready once it prints `{"port":…,"tenants":…}` on stderr: every tenant applied and prepared (its port
 * answers before that).
 */
const snapshotFile = process.env['BENCH_SNAPSHOT_FILE'];
if (!snapshotFile) throw new Error('BENCH_SNAPSHOT_FILE is required');
const config = parseSettings(
  { ...configPlaneSettings, ...gatewaySettings },
  {
    ...process.env,
    GATEWAY_HOST: '127.0.0.1',
    GATEWAY_ADMIN_PORT: process.env['GATEWAY_ADMIN_PORT'] ?? '0',
    LOG_LEVEL: process.env['LOG_LEVEL'] ?? 'info',
    GATEWAY_REDIS_KEY_PREFIX: process.env['BENCH_REDIS_PREFIX'] ?? `bench:${process.pid}:`,
    GATEWAY_CACHE_L1_BYTES: process.env['BENCH_L1_BYTES'] ?? String(64 * 1024 * 1024),
    ROLLOUT_KEY_PREFIX: `${process.env['BENCH_REDIS_PREFIX'] ?? `bench:${process.pid}:`}rollout:`,
    // The benchmark's origins run on 127.0.0.1.
    ORIGIN_BLOCKED_CIDRS:
      process.env['ORIGIN_BLOCKED_CIDRS'] || ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK.join(','),
  },
);
const logger = createLogger({ service: 'gateway', level: config.LOG_LEVEL });
const registry = createMetricsRegistry('gateway');
const redis = createRedisClient({
  url: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:56379',
  autoPipelining: config.GATEWAY_REDIS_AUTO_PIPELINING,
  name: 'gateway-bench',
  logger,
});
await whenReady(redis);

const snapshots = (JSON.parse(readFileSync(snapshotFile, 'utf8')) as unknown[]).map((raw) =>
  tenantSnapshot.parse(raw),
);
const bus = createInMemorySnapshotBus({ maxMessageBytes: 64 * 1024 * 1024 });
await bus.publish(
  snapshots.map((snapshot) => ({
    kind: 'snapshot' as const,
    tenantId: snapshot.tenant_id,
    version: BigInt(snapshot.version),
    snapshot,
  })),
);
const replica = await startGatewayReplica({ config, bus, redis, registry, logger });
await replica.configPlane.ready;
await prepareEveryTenant(snapshots.map((snapshot) => snapshot.tenant_id));
process.stderr.write(`${JSON.stringify({ port: replica.gateway.trafficPort, tenants: snapshots.length })}\n`);

// BENCH_PROFILE_FILE: a V8 CPU profile of serving only (started after startup, written on SIGTERM).
const profileFile = process.env['BENCH_PROFILE_FILE'];
const profiler = profileFile ? new Session() : undefined;
if (profiler) {
  profiler.connect();
  await profiler.post('Profiler.enable');
  await profiler.post('Profiler.setSamplingInterval', { interval: 500 });
  await profiler.post('Profiler.start');
}

/**
 * Lookups bypass the cache until a tenant's purge generations are loaded: load them before serving.
 * A load can fail while startup keeps the event loop busy (1,000 tenants compiled against a 50 ms
 * command timeout): such a tenant is tried again, and only a tenant that never loads stops the start.
 */
async function prepareEveryTenant(tenantIds: readonly string[]): Promise<void> {
  let pending = tenantIds;
  for (let attempt = 1; pending.length > 0; attempt++) {
    const results = await Promise.allSettled(
      pending.map((tenantId) => replica.responseCache.prepareTenant(tenantId)),
    );
    const failed = pending.filter((_, i) => results[i]!.status === 'rejected');
    if (failed.length === 0) return;
    if (attempt === 10) {
      const reason = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      throw new Error(`purge generations of ${failed.length} tenants did not load: ${String(reason.reason)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
    pending = failed;
  }
}

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  if (profiler && profileFile) {
    const { profile } = await profiler.post('Profiler.stop');
    writeFileSync(profileFile, JSON.stringify(profile));
  }
  await replica.close();
  await bus.close();
  redis.disconnect();
  process.exit(0);
}
process.once('SIGTERM', () => void shutdown());
process.once('SIGINT', () => void shutdown());
