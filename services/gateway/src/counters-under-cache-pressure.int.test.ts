import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK } from '@vantageedge/shared/net/origin-address-policy';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import {
  type PrivateRedisServer,
  startPrivateRedisServer,
} from '@vantageedge/shared/redis/private-redis-server';
import { parseSettings } from '@vantageedge/shared/settings/load-settings';
import { createInMemorySnapshotBus } from '@vantageedge/shared/snapshot-bus/in-memory-snapshot-bus';
import { configPlaneSettings } from '@vantageedge/shared/snapshot-bus/settings';
import { uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkRedisMemoryPolicy } from './redis-memory-policy.js';
import { gatewaySettings } from './settings.js';
import { type GatewayReplica, startGatewayReplica } from './start-gateway-replica.js';
import { startTestOrigin, type TestOrigin } from './testing/gateway-harness.js';
import { buildSnapshot } from './testing/snapshots.js';

/**
 * Regression test: rate-limit and quota counters lived in the Redis that also held the response cache,
 * run with `maxmemory-policy volatile-lru`. One tenant filling its cache share made Redis evict other
 * tenants' exhausted counters (they have a TTL, as the cache entries do), and their limits started over.
 * The cache now has a Redis of its own (GATEWAY_CACHE_REDIS_URL), so cache pressure evicts cache entries.
 */
const SMALL_REDIS = ['--maxmemory', '8mb', '--maxmemory-policy', 'volatile-lru'];
const CACHE_FILL_REQUESTS = 4_000;
const CACHED_BODY_BYTES = 3_000;
const CONCURRENCY = 32;

function get(port: number, host: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers: { host }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

async function evictedKeys(redis: RedisClient): Promise<number> {
  const stats = String(await redis.info('stats'));
  return Number(/evicted_keys:(\d+)/.exec(stats)?.[1] ?? 0);
}

describe('counters and a cache filling its Redis (private redis-servers at maxmemory 8 MB, volatile-lru)', () => {
  let countersServer: PrivateRedisServer;
  let cacheServer: PrivateRedisServer;
  let counters: RedisClient;
  let cache: RedisClient;
  let origin: TestOrigin;
  let replica: GatewayReplica;
  const suffix = uniqueSuffix();
  const filler = `filler${suffix}`;
  const limited = `limited${suffix}`;
  const metered = `metered${suffix}`;

  beforeAll(async () => {
    countersServer = await startPrivateRedisServer(SMALL_REDIS);
    cacheServer = await startPrivateRedisServer(SMALL_REDIS);
    counters = createRedisClient({ url: countersServer.url, commandTimeoutMs: 2_000, name: 'counters' });
    cache = createRedisClient({ url: cacheServer.url, commandTimeoutMs: 2_000, name: 'cache' });
    await Promise.all([whenReady(counters), whenReady(cache)]);
    origin = await startTestOrigin('cache-pressure-origin');

    const originFor = () => ({ id: randomUUID(), targets: [origin.url] });
    const fillerOrigin = originFor();
    const limitedOrigin = originFor();
    const meteredOrigin = originFor();
    const snapshots = [
      buildSnapshot({
        subdomain: filler,
        origins: [fillerOrigin],
        routes: [{ origin_id: fillerOrigin.id, path_pattern: '/*', cache_policy: { ttl_seconds: 600 } }],
      }),
      buildSnapshot({
        subdomain: limited,
        origins: [limitedOrigin],
        // One token back every ~17 minutes: once spent, the burst stays spent for the whole test.
        routes: [
          {
            origin_id: limitedOrigin.id,
            path_pattern: '/*',
            rate_limit: { requests_per_second: 0.001, burst: 2 },
          },
        ],
      }),
      buildSnapshot({
        subdomain: metered,
        origins: [meteredOrigin],
        routes: [{ origin_id: meteredOrigin.id, path_pattern: '/*' }],
        settings: { quota: { requests_per_day: 2 } },
      }),
    ];
    const config = parseSettings(
      { ...configPlaneSettings, ...gatewaySettings },
      {
        GATEWAY_PORT: '0',
        GATEWAY_ADMIN_PORT: '0',
        GATEWAY_HOST: '127.0.0.1',
        API_KEY_PEPPER: 'cache-pressure-pepper-0123456789abcdef012345',
        GATEWAY_REDIS_KEY_PREFIX: `ve-test-cache-pressure-${suffix}:`,
        ROLLOUT_KEY_PREFIX: `ve-test-cache-pressure-${suffix}:rollout:`,
        // The origin runs on 127.0.0.1.
        ORIGIN_BLOCKED_CIDRS: ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK.join(','),
        // Every HIT and fill goes through Redis, not this process's memory.
        GATEWAY_CACHE_L1_BYTES: '1',
      },
    );
    const bus = createInMemorySnapshotBus();
    await bus.publish(
      snapshots.map((snapshot) => ({
        kind: 'snapshot' as const,
        tenantId: snapshot.tenant_id,
        version: BigInt(snapshot.version),
        snapshot,
      })),
    );
    replica = await startGatewayReplica({
      config,
      bus,
      redis: counters,
      cacheRedis: cache,
      registry: createMetricsRegistry('gateway-cache-pressure'),
      logger: createLogger({ service: 'gateway-cache-pressure', level: 'error' }),
    });
    await replica.configPlane.ready;
    await replica.responseCache.prepareTenant(snapshots[0]!.tenant_id);
  }, 60_000);

  afterAll(async () => {
    await replica?.close();
    await origin?.close();
    counters?.disconnect();
    cache?.disconnect();
    await countersServer?.stop();
    await cacheServer?.stop();
  });

  it("one tenant's cache fill leaves another tenant's exhausted rate limit and quota exhausted", async () => {
    const port = replica.gateway.trafficPort;
    const limitedHost = `${limited}.localhost`;
    const meteredHost = `${metered}.localhost`;
    expect([await get(port, limitedHost, '/a'), await get(port, limitedHost, '/b')]).toEqual([200, 200]);
    expect(await get(port, limitedHost, '/c')).toBe(429);
    expect([await get(port, meteredHost, '/a'), await get(port, meteredHost, '/b')]).toEqual([200, 200]);
    expect(await get(port, meteredHost, '/c')).toBe(429);

    // ≈ 12 MB of distinct cacheable responses into Redis at 8 MB.
    let next = 0;
    const fillOne = async (): Promise<void> => {
      while (next < CACHE_FILL_REQUESTS) {
        const i = next++;
        await get(port, `${filler}.localhost`, `/download?bytes=${CACHED_BODY_BYTES}&entry=${i}`);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, fillOne));

    expect(await get(port, limitedHost, '/d')).toBe(429);
    expect(await get(port, meteredHost, '/d')).toBe(429);
    // The fill did press on the cache's Redis: entries were evicted there, and none of the counters.
    expect(await evictedKeys(cache)).toBeGreaterThan(0);
    expect(await evictedKeys(counters)).toBe(0);
  }, 120_000);

  it('warns at start-up that the counters’ Redis evicts, reading its policy from the server', async () => {
    const logger = createLogger({ service: 'gateway-cache-pressure', level: 'error' });
    const problems = await checkRedisMemoryPolicy({ redis: counters, cacheRedis: cache, logger });
    expect(problems).toEqual([
      { redis: 'counters', problem: expect.stringMatching(/volatile-lru.*noeviction/) },
    ]);
    const shared = await checkRedisMemoryPolicy({ redis: counters, logger });
    expect(shared).toEqual([{ redis: 'shared', problem: expect.stringMatching(/GATEWAY_CACHE_REDIS_URL/) }]);
  });
});
