import { randomUUID } from 'node:crypto';
import { createRedisCachePurger } from '@vantageedge/shared/cache-purge/redis-cache-purger';
import { cachePolicy, routeConfig } from '@vantageedge/shared/domain/gateway-config';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import { TEST_INFRA } from '@vantageedge/shared/testing/infrastructure';
import { createTestRedis } from '@vantageedge/shared/testing/redis';
import { afterAll, describe, expect, it } from 'vitest';
import type { CacheRequest } from './cache-key.js';
import { type CompiledCachePolicy, compileCachePolicy } from './compile-cache-policy.js';
import { RedisCacheStore } from './redis-cache-store.js';
import { createResponseCache, type ResponseCache } from './response-cache.js';

/**
 * A purge as the control plane sends it (createRedisCachePurger from the shared purge protocol, no
 * gateway code) empties every replica's cache, its L1 included: one route, or the whole tenant. A
 * replica that starts after the purge does not see the purged entries either.
 */
const redis = createTestRedis('cache-purge-protocol');
const clients: RedisClient[] = [];
const caches: ResponseCache[] = [];
const logger = createLogger({ service: 'test', level: 'error' });

afterAll(async () => {
  for (const cache of caches) await cache.close();
  for (const client of clients) client.disconnect();
  await redis.cleanup();
});

async function replica(name: string): Promise<ResponseCache> {
  const client = createRedisClient({ url: TEST_INFRA.redisUrl, commandTimeoutMs: 1_000, name });
  clients.push(client);
  await whenReady(client);
  const cache = createResponseCache({
    store: new RedisCacheStore(client, { keyPrefix: redis.prefix }),
    l1MaxBytes: 1_000_000,
    registry: createMetricsRegistry(name, { defaultMetrics: false }),
    logger,
  });
  caches.push(cache);
  return cache;
}

function policyFor(tenantId: string): CompiledCachePolicy {
  return compileCachePolicy(
    tenantId,
    routeConfig.parse({
      id: randomUUID(),
      origin_id: randomUUID(),
      path_pattern: '/*',
      auth_mode: 'public',
      cache_policy: cachePolicy.parse({ ttl_seconds: 300 }),
    }),
  )!;
}

const request: CacheRequest = { method: 'GET', path: '/posts/1', query: '', headers: {} };

async function fill(cache: ResponseCache, policy: CompiledCachePolicy): Promise<void> {
  const miss = await cache.lookup(policy, request, {});
  if (miss.outcome !== 'MISS' || !miss.fill) throw new Error(`expected to lead a fill, got ${miss.outcome}`);
  await cache.store(miss.fill, 'GET', { status: 200, headers: {}, body: Buffer.from('{"id":1}') });
}

async function outcome(cache: ResponseCache, policy: CompiledCachePolicy): Promise<string> {
  const lookup = await cache.lookup(policy, request, {});
  if (lookup.outcome === 'MISS') cache.abandon(lookup.fill!);
  return lookup.outcome;
}

async function eventually(check: () => Promise<boolean>): Promise<boolean> {
  for (let i = 0; i < 250; i++) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}

describe('purges sent with the shared purge protocol', () => {
  it('empty one route, then the whole tenant, on every replica', async () => {
    const tenantId = randomUUID();
    const purged = policyFor(tenantId);
    const kept = policyFor(tenantId);
    const [a, b] = [await replica('a'), await replica('b')];
    for (const cache of [a, b]) await cache.prepareTenant(tenantId);
    await fill(a, purged);
    await fill(a, kept);
    for (const cache of [a, b])
      for (const policy of [purged, kept]) expect(await outcome(cache, policy)).toBe('HIT');

    const purger = createRedisCachePurger(redis.client, redis.prefix);
    await purger.purgeRoute(tenantId, purged.routeId);
    for (const cache of [a, b]) {
      expect(await eventually(async () => (await outcome(cache, purged)) === 'MISS')).toBe(true);
      expect(await outcome(cache, kept)).toBe('HIT');
    }
    const late = await replica('late');
    await late.prepareTenant(tenantId);
    expect(await outcome(late, purged)).toBe('MISS');
    expect(await outcome(late, kept)).toBe('HIT');

    await purger.purgeTenant(tenantId);
    for (const cache of [a, b, late])
      expect(await eventually(async () => (await outcome(cache, kept)) === 'MISS')).toBe(true);
  });
});
