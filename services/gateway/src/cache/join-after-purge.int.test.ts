import { randomUUID } from 'node:crypto';
import type { CacheRequest } from '@vantageedge/shared/gateway-policies/cache-key';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { publicRouteCachePolicy } from '../testing/cache-policies.js';
import { RedisCacheStore } from './redis-cache-store.js';
import { type CacheLookup, createResponseCache, type ResponseCache } from './response-cache.js';

/**
 * Two replicas over the real Redis: a request that comes after a purge (as its replica learned of it:
 * its own POST, or another replica's purge message) while a fill of its key that began before the purge
 * is under way on its replica is not answered with that fill's response (join-after-purge.unit.test.ts
 * has the in-memory cases).
 */
const logger = createLogger({ service: 'test', level: 'error' });
const prefix = `test:join-after-purge:${uniqueSuffix()}:`;
const clients: RedisClient[] = [];
const replicas: Array<{ cache: ResponseCache; registry: Registry }> = [];
const tenantId = randomUUID();
const policy = publicRouteCachePolicy(tenantId);
const get = (path: string): CacheRequest => ({ method: 'GET', path, query: '', headers: {} });
const response = (body: string) => ({
  status: 200,
  headers: { 'cache-control': 'max-age=60', 'surrogate-key': 'product-7' },
  body: Buffer.from(body),
});

async function leads(lookup: CacheLookup | Promise<CacheLookup>) {
  const settled = await lookup;
  if (settled.outcome !== 'MISS' || settled.fill === null)
    throw new Error(
      `expected to lead the fill, got ${settled.outcome} ${'entry' in settled ? settled.entry.body : ''}`,
    );
  return settled.fill;
}

/**
 * Past the millisecond of the purge just recorded: the store keeps no fill whose origin was asked in the
 * same millisecond as a purge of its path or tags, or the one before (its fence reads both clocks to the
 * millisecond and cannot tell which came first), and on a quick machine the next lookup comes that soon.
 */
const pastThePurgesMillisecond = () => new Promise((resolve) => setTimeout(resolve, 5));

async function body(lookup: CacheLookup | Promise<CacheLookup>): Promise<string> {
  const settled = await lookup;
  return settled.outcome === 'HIT' ? settled.entry.body.toString() : settled.outcome;
}

beforeAll(async () => {
  for (let i = 0; i < 2; i++) {
    const redis = createRedisClient({ url: TEST_INFRA.redisUrl, commandTimeoutMs: 1_000, name: `join-${i}` });
    clients.push(redis);
    await whenReady(redis);
    const registry = new Registry();
    const cache = createResponseCache({
      store: new RedisCacheStore(redis, { keyPrefix: prefix }),
      l1MaxBytes: 1_000_000,
      registry,
      logger,
      generationRefreshMs: 0,
    });
    await cache.prepareTenant(tenantId);
    replicas.push({ cache, registry });
  }
  await new Promise((resolve) => setTimeout(resolve, 50)); // purge subscriptions established
});

afterAll(async () => {
  for (const { cache } of replicas) await cache.close();
  const cleaner = new Redis(TEST_INFRA.redisUrl);
  const keys = await cleaner.keys(`${prefix}*`);
  if (keys.length > 0) await cleaner.del(...keys);
  cleaner.disconnect();
  for (const client of clients) client.disconnect();
});

/** The tag purges `registry`'s replica applied: its own, and those the other published. */
async function tagPurgesHeard(registry: Registry): Promise<number> {
  const counter = await registry.getSingleMetric('vantageedge_gateway_cache_purges_total')?.get();
  return counter?.values.find((sample) => sample.labels['kind'] === 'tags')?.value ?? 0;
}

describe('a request after a purge, with a fill of its key that began before it under way (Redis)', () => {
  it("a GET after the replica's own POST to the path leads a fill of its own", async () => {
    const { cache } = replicas[0]!;
    const path = `/posts/${randomUUID()}`;
    const fill = await leads(cache.lookup(policy, get(path), {}));
    await cache.invalidatePath(policy, path);
    await pastThePurgesMillisecond();
    const after = cache.lookup(policy, get(path), {});
    await cache.store(fill, 'GET', response('old'));
    const own = await leads(after);
    await cache.store(own, 'GET', response('current'));
    expect(await body(cache.lookup(policy, get(path), {}))).toBe('current');
    expect(await body(replicas[1]!.cache.lookup(policy, get(path), {}))).toBe('current');
  });

  it("a GET right after the replica's own POST, while the store is still deleting the path's entries, does not get them", async () => {
    const { cache } = replicas[0]!;
    const path = `/posts/${randomUUID()}`;
    const fill = await leads(cache.lookup(policy, get(path), {}));
    await cache.store(fill, 'GET', response('old'));
    const invalidating = cache.invalidatePath(policy, path);
    const after = await cache.lookup(policy, get(path), {});
    expect(after.outcome === 'HIT' ? after.entry.body.toString() : after.outcome).toBe('MISS');
    await invalidating;
    if (after.outcome === 'MISS' && after.fill !== null)
      await cache.store(after.fill, 'GET', response('current'));
  });

  it("a GET after another replica's purge by tag reached this one leads a fill of its own", async () => {
    const [{ cache, registry }, other] = [replicas[0]!, replicas[1]!];
    const path = `/posts/${randomUUID()}`;
    const fill = await leads(cache.lookup(policy, get(path), {}));
    const heard = await tagPurgesHeard(registry);
    await other.cache.purgeTags(tenantId, ['product-7']);
    await vi.waitFor(async () => expect(await tagPurgesHeard(registry)).toBeGreaterThan(heard), {
      timeout: 10_000,
    });
    await pastThePurgesMillisecond();
    const after = cache.lookup(policy, get(path), {});
    await cache.store(fill, 'GET', response('old'));
    const own = await leads(after);
    await cache.store(own, 'GET', response('current'));
    expect(await body(cache.lookup(policy, get(path), {}))).toBe('current');
  });
});
