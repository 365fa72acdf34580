import { randomUUID } from 'node:crypto';
import { tagIndexKey, tenantKeyspace } from '@vantageedge/shared/cache-purge/purge-protocol';
import { createTestRedis, scanKeys } from '@vantageedge/shared/testing/redis';
import { afterAll, describe, expect, it } from 'vitest';
import type { CacheEntry } from './cache-entry.js';
import { REDIS_FOOTPRINT_FACTOR, RedisCacheStore } from './redis-cache-store.js';
import { testCacheEntry } from './testing/test-cache-entry.js';

/**
 * Regression (cache/auth review): one tenant grew Redis without bound past its byte bound. Its path
 * index, tag sets (and Vary markers) gained a member per distinct key and nothing removed the members
 * of evicted or expired entries, so 3,000 unique queries on one path took 2 MB of Redis under a 20 kB
 * bound. Everything the tenant's entries hold in Redis now stays within REDIS_FOOTPRINT_FACTOR × bound.
 */
const BOUND = 20_000;
const WRITES = 3_000;
const redis = createTestRedis('cache-footprint');
const store = new RedisCacheStore(redis.client, { keyPrefix: redis.prefix, tenantMaxBytes: BOUND });

afterAll(async () => {
  await store.close();
  await redis.cleanup();
});

function entry(extra: Partial<CacheEntry> = {}): CacheEntry {
  return testCacheEntry({ body: Buffer.alloc(200, 'x'), freshMs: 600_000, ...extra });
}

/** MEMORY USAGE of every key in the tenant's keyspace, and the largest set's cardinality. */
async function footprint(tenantId: string): Promise<{ bytes: number; largestSet: number }> {
  let bytes = 0;
  let largestSet = 0;
  for (const key of await scanKeys(redis.client, `${tenantKeyspace(redis.prefix, tenantId)}*`)) {
    bytes += Number(await redis.client.memory('USAGE', key, 'SAMPLES', '0')) || 0;
    if ((await redis.client.type(key)) === 'set')
      largestSet = Math.max(largestSet, await redis.client.scard(key));
  }
  return { bytes, largestSet };
}

describe('RedisCacheStore: a tenant’s Redis footprint stays within a multiple of its bound', () => {
  it(`${WRITES} distinct keys of one path, tagged: index and tag sets shrink as entries are evicted`, {
    timeout: 120_000,
  }, async () => {
    const tenantId = randomUUID();
    const base = `c:{${tenantId}}:0:${randomUUID()}:0:pathdigest0000000000000`;
    const tags = ['product-1', 'path aaaaaaaaaaaaaaaaaaaaaa', 'path bbbbbbbbbbbbbbbbbbbbbb'];
    for (let i = 0; i < WRITES; i++) {
      const result = await store.putResponse({
        key: `${base}:${String(i).padStart(32, '0')}`,
        entry: entry({ tags }),
        ttlMs: 600_000,
        pathIndexKey: `${base}:idx`,
        tagIndexKeys: tags.map((tag) => tagIndexKey('', tenantId, tag)),
      });
      expect(result).toBe('stored');
    }
    const { bytes, largestSet } = await footprint(tenantId);
    expect(largestSet).toBeLessThan(100);
    expect(bytes).toBeLessThan(BOUND * REDIS_FOOTPRINT_FACTOR);
  });

  it(`${WRITES} URLs whose responses vary: markers and variant sets leave with their last variant`, {
    timeout: 120_000,
  }, async () => {
    const tenantId = randomUUID();
    const base = `c:{${tenantId}}:0:${randomUUID()}:0`;
    for (let i = 0; i < WRITES; i++) {
      const urlKey = `${base}:${String(i % 50).padStart(22, '0')}:${String(i).padStart(32, '0')}`;
      const result = await store.putVariant({
        key: `${urlKey}:variantdigest000000000`,
        urlKey,
        entry: entry({ varyOn: ['accept-language'] }),
        ttlMs: 600_000,
        pathIndexKey: `${base}:${String(i % 50).padStart(22, '0')}:idx`,
        maxVariants: 16,
      });
      expect(result).toBe('stored');
    }
    const { bytes, largestSet } = await footprint(tenantId);
    expect(largestSet).toBeLessThan(100);
    expect(bytes).toBeLessThan(BOUND * REDIS_FOOTPRINT_FACTOR);
  });

  it('the newest entries stay reachable and listed: invalidating their path still drops them', async () => {
    const tenantId = randomUUID();
    const base = `c:{${tenantId}}:0:${randomUUID()}:0:p`;
    const keys = Array.from({ length: 200 }, (_, i) => `${base}:${i}`);
    for (const key of keys)
      await store.putResponse({ key, entry: entry(), ttlMs: 600_000, pathIndexKey: `${base}:idx` });
    const newest = keys.at(-1)!;
    expect((await store.get(newest))?.kind).toBe('response');
    expect(await redis.client.sismember(`${redis.prefix}${base}:idx`, `${redis.prefix}${newest}`)).toBe(1);
    await store.invalidatePath(`${base}:idx`);
    expect(await store.get(newest)).toBeNull();
  });
});
