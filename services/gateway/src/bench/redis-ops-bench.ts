/**
 * bench-redis-ops: Redis commands per gateway request, per feature, counted by the server itself
 * (INFO commandstats before and after) on a private redis-server, so nothing else's traffic is counted.
 * For docs/capacity.md: what an operator multiplies by the request rate to size a Redis (Cluster).
 *
 * Each scenario runs REQUESTS checks/lookups through the gateway's own modules (rate limiter with
 * RedisLimitStore, response cache with RedisCacheStore) as two replicas would.
 */
import { randomUUID } from 'node:crypto';
import type { CacheRequest } from '@vantageedge/shared/gateway-policies/cache-key';
import { compileRateLimits } from '@vantageedge/shared/gateway-policies/compile-rate-limits';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import { startPrivateRedisServer } from '@vantageedge/shared/redis/private-redis-server';
import { startRolloutHeartbeat } from '@vantageedge/shared/snapshot-bus/rollout-heartbeat';
import { RedisCacheStore } from '../cache/redis-cache-store.js';
import { createResponseCache, type ResponseCache } from '../cache/response-cache.js';
import { createRateLimiter } from '../ratelimit/rate-limiter.js';
import { RedisLimitStore } from '../ratelimit/redis-limit-store.js';
import { routeWith, tenantWith } from '../ratelimit/test-fixtures.js';
import { publicRouteCachePolicy } from '../testing/cache-policies.js';

const REQUESTS = Number(process.env['BENCH_REQUESTS'] ?? 2_000);
const logger = createLogger({ service: 'bench', level: 'error' });

async function commandCounts(client: RedisClient): Promise<Map<string, number>> {
  const text = String(await client.info('commandstats'));
  const counts = new Map<string, number>();
  for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm))
    counts.set(match[1]!, Number(match[2]));
  return counts;
}

async function measure(client: RedisClient, run: () => Promise<void>): Promise<Record<string, number>> {
  const before = await commandCounts(client);
  await run();
  const after = await commandCounts(client);
  const per: Record<string, number> = {};
  let total = 0;
  for (const [name, calls] of after) {
    // The two INFO calls themselves are not the gateway's.
    const delta = calls - (before.get(name) ?? 0) - (name === 'info' ? 1 : 0);
    if (delta > 0) {
      per[name] = Math.round((delta / REQUESTS) * 1000) / 1000;
      total += delta;
    }
  }
  per['total'] = Math.round((total / REQUESTS) * 1000) / 1000;
  return per;
}

async function main() {
  const server = await startPrivateRedisServer();
  const clients: RedisClient[] = [];
  const connect = async (name: string) => {
    const client = createRedisClient({ url: server.url, commandTimeoutMs: 2_000, name });
    clients.push(client);
    await whenReady(client);
    return client;
  };
  const admin = await connect('bench-admin');
  const results: Record<string, Record<string, number>> = {};

  const limiter = (client: RedisClient, name: string) =>
    createRateLimiter({
      store: new RedisLimitStore(client),
      registry: createMetricsRegistry(name, { defaultMetrics: false }),
      logger,
    });
  const a = limiter(await connect('a'), 'a');
  const b = limiter(await connect('b'), 'b');
  const check = async (limits: ReturnType<typeof compileRateLimits>, userId?: string) => {
    for (let i = 0; i < REQUESTS; i++) {
      await (i % 2 ? a : b).check(limits, {
        tenantId: limits.tenantId,
        routeId: limits.routeId,
        clientIp: '192.0.2.1',
        ...(userId ? { userId } : {}),
      });
    }
  };
  const generous = { requests_per_second: 1_000_000, burst: 1_000_000 };
  results['rate limit: one limit, exact (token bucket)'] = await measure(admin, () =>
    check(compileRateLimits(tenantWith(null), routeWith(generous))),
  );
  results['rate limit: tenant + route limits, exact'] = await measure(admin, () =>
    check(compileRateLimits(tenantWith({ ...generous, scope: 'tenant' }), routeWith(generous))),
  );
  results['rate limit: sliding window, exact'] = await measure(admin, () =>
    check(
      compileRateLimits(
        tenantWith(null),
        routeWith({
          requests_per_second: 1_000_000,
          algorithm: 'sliding_window',
          window_seconds: 1,
          limit: 1_000_000,
        }),
      ),
    ),
  );
  results['rate limit: one limit, fast mode (leases), ~1,000 rps per replica'] = await measure(
    admin,
    async () => {
      const limits = compileRateLimits(tenantWith(null), routeWith({ ...generous, accuracy: 'fast' }));
      for (let i = 0; i < REQUESTS; i++) {
        await (i % 2 ? a : b).check(limits, {
          tenantId: limits.tenantId,
          routeId: limits.routeId,
          clientIp: '192.0.2.1',
        });
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    },
  );

  // Response cache: two replicas (each with its own L1).
  const cache = async (name: string): Promise<ResponseCache> =>
    createResponseCache({
      store: new RedisCacheStore(await connect(name), {}),
      l1MaxBytes: 64 * 1024 * 1024,
      registry: createMetricsRegistry(name, { defaultMetrics: false }),
      logger,
    });
  const tenantId = randomUUID();
  const policy = publicRouteCachePolicy(tenantId);
  const [cacheA, cacheB] = [await cache('cache-a'), await cache('cache-b')];
  for (const each of [cacheA, cacheB]) await each.prepareTenant(tenantId);
  const request = (i: number): CacheRequest => ({
    method: 'GET',
    path: `/items/${i}`,
    query: '',
    headers: {},
  });
  results['cache: MISS and fill (every request a new URL)'] = await measure(admin, async () => {
    for (let i = 0; i < REQUESTS; i++) {
      const lookup = await cacheA.lookup(policy, request(i), {});
      if (lookup.outcome === 'MISS' && lookup.fill) {
        await cacheA.store(lookup.fill, 'GET', {
          status: 200,
          headers: {},
          body: Buffer.from('{"ok":true}'),
        });
      }
    }
  });
  results['cache: HIT from the in-process L1'] = await measure(admin, async () => {
    for (let i = 0; i < REQUESTS; i++) await cacheA.lookup(policy, request(i), {});
  });
  results['cache: HIT from Redis (another replica, first read of each URL)'] = await measure(
    admin,
    async () => {
      for (let i = 0; i < REQUESTS; i++) await cacheB.lookup(policy, request(i), {});
    },
  );

  // Rollout heartbeat: per replica, per second (not per request).
  const beatClient = await connect('heartbeat');
  const heartbeatCounts = await (async () => {
    const before = await commandCounts(admin);
    const heartbeat = startRolloutHeartbeat({
      redis: beatClient,
      replicaId: 'bench',
      appliedVersions: () => new Map([[tenantId, 1n]]),
    });
    await new Promise((resolve) => setTimeout(resolve, 20_500));
    await heartbeat.stop();
    const after = await commandCounts(admin);
    let total = 0;
    for (const [name, calls] of after) total += calls - (before.get(name) ?? 0) - (name === 'info' ? 1 : 0);
    return Math.round((total / 20.5) * 100) / 100;
  })();

  for (const client of clients) client.disconnect();
  await cacheA.close();
  await cacheB.close();
  await server.stop();
  console.log(
    JSON.stringify(
      {
        benchmark: 'redis-ops',
        requests_per_scenario: REQUESTS,
        commands_per_request: results,
        rollout_heartbeat_commands_per_second_per_replica: heartbeatCounts,
      },
      null,
      2,
    ),
  );
  process.exit(0);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
