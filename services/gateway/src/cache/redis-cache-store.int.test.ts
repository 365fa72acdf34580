import { randomUUID } from 'node:crypto';
import { CACHE_SOFT_PURGED_TAGS_MAX, generationKey } from '@vantageedge/shared/cache-purge/purge-protocol';
import { createTestRedis } from '@vantageedge/shared/testing/redis';
import { recordCommandSizes } from '@vantageedge/shared/testing/redis-command-sizes';
import { afterAll, describe, expect, it } from 'vitest';
import { describeCacheStoreContract } from './cache-store.contract.js';
import { RedisCacheStore } from './redis-cache-store.js';
import { testCacheEntry } from './testing/test-cache-entry.js';

const redis = createTestRedis('cache-store');
const stores: RedisCacheStore[] = [];

afterAll(async () => {
  for (const store of stores) await store.close();
  await redis.cleanup();
});

describeCacheStoreContract('redis', async (options = {}) => {
  const store = new RedisCacheStore(redis.client, { keyPrefix: redis.prefix, ...options });
  stores.push(store);
  return { store, tenantId: randomUUID() };
});

describe('a trim of a tenant whose bound changes again while it runs', () => {
  it('stops at the bound raised since it began: the entries the raised bound holds stay', async () => {
    const store = new RedisCacheStore(redis.client, { keyPrefix: redis.prefix, tenantMaxBytes: 10_000_000 });
    stores.push(store);
    const tenantId = randomUUID();
    const entry = testCacheEntry({ headers: [] });
    const keys = Array.from({ length: 300 }, (_, i) => `c:{${tenantId}}:0:r:0:path:q${i}`);
    const pathIndexKey = `c:{${tenantId}}:0:r:0:path:idx`;
    for (const key of keys) await store.putResponse({ key, entry, ttlMs: 60_000, pathIndexKey });
    // Loads the script, so the two trims below reach Redis in the order they are asked.
    await store.trimTenant(tenantId, undefined, 1n);

    // A config lowers the bound, and the next one (applied while that trim runs) restores it.
    const lowered = store.trimTenant(tenantId, 1_024, 2n);
    await store.trimTenant(tenantId, undefined, 3n);
    await lowered;

    const mostRecent = keys.slice(-100).map((key) => redis.prefix + key);
    expect(await redis.client.exists(...mostRecent)).toBe(mostRecent.length);
  });
});

describe('a trim by a replica that applies a config later than another replica', () => {
  it('does not trim with a lowered bound that a later config, already applied elsewhere, raised again', async () => {
    const options = { keyPrefix: redis.prefix, tenantMaxBytes: 10_000_000 };
    const ahead = new RedisCacheStore(redis.client, options);
    const behind = new RedisCacheStore(redis.client, options);
    stores.push(ahead, behind);
    const tenantId = randomUUID();
    const entry = testCacheEntry({ headers: [] });
    const keys = Array.from({ length: 50 }, (_, i) => `c:{${tenantId}}:0:r:0:path:q${i}`);
    const pathIndexKey = `c:{${tenantId}}:0:r:0:path:idx`;
    for (const key of keys) await ahead.putResponse({ key, entry, ttlMs: 60_000, pathIndexKey });

    // Version 2 lowered the bound, version 3 raised it again: one replica applied both at once, the
    // other applies version 2 only now.
    await ahead.trimTenant(tenantId, undefined, 3n);
    await behind.trimTenant(tenantId, 1_024, 2n);

    const stored = keys.map((key) => redis.prefix + key);
    expect(await redis.client.exists(...stored)).toBe(stored.length);
    // Its own next version (4) lowers the bound again: that trim is made.
    await behind.trimTenant(tenantId, 1_024, 4n);
    expect(await redis.client.exists(...stored)).toBeLessThan(stored.length);
  });
});

describe('the work one invalidation gives the shared Redis', () => {
  it('an unsafe method on a path of thousands of query variants drops them all, in commands of at most 1,000 keys', async () => {
    const store = new RedisCacheStore(redis.client, { keyPrefix: redis.prefix });
    stores.push(store);
    const tenantId = randomUUID();
    // Unique query strings from any client: one path index lists every one of them.
    const pathIndexKey = `c:{${tenantId}}:0:r:0:path:idx`;
    const keys = Array.from({ length: 3_000 }, (_, i) => `c:{${tenantId}}:0:r:0:path:q${i}`);
    const entry = testCacheEntry({ headers: [] });
    await Promise.all(keys.map((key) => store.putResponse({ key, entry, ttlMs: 60_000, pathIndexKey })));

    const sizes = recordCommandSizes(redis.client);
    await store.invalidatePath(pathIndexKey).finally(() => sizes.stop());

    expect(sizes.largest().size).toBeLessThanOrEqual(1_000);
    expect(await redis.client.exists(...[pathIndexKey, ...keys].map((key) => redis.prefix + key))).toBe(0);
  });
});

describe('the work one generations load gives the shared Redis', () => {
  it('loads a tenant holding the most soft-purged tags in commands of at most 1,000 fields', async () => {
    const store = new RedisCacheStore(redis.client, { keyPrefix: redis.prefix });
    stores.push(store);
    const tenantId = randomUUID();
    // Every replica reloads every tenant's generations every 15 s.
    const softTags = Array.from({ length: CACHE_SOFT_PURGED_TAGS_MAX }, (_, i) => [`tag:t${i}`, i + 1]);
    await redis.client.hset(generationKey(redis.prefix, tenantId), {
      _tenant: 3,
      r1: 2,
      ...Object.fromEntries(softTags),
    });

    const sizes = recordCommandSizes(redis.client);
    const generations = await store.generations(tenantId).finally(() => sizes.stop());

    expect(sizes.largest().size).toBeLessThanOrEqual(2 * 1_000 + 1); // fields and values, and a cursor
    expect(generations.tenant).toBe(3);
    expect(generations.routes).toEqual(new Map([['r1', 2]]));
    expect(generations.softTags.size).toBe(CACHE_SOFT_PURGED_TAGS_MAX);
    expect(generations.softTags.get(`t${CACHE_SOFT_PURGED_TAGS_MAX - 1}`)).toBe(CACHE_SOFT_PURGED_TAGS_MAX);
  });
});

describe('the bytes one cache entry moves through the shared Redis', () => {
  const entryOf = (bodyBytes: number) =>
    testCacheEntry({
      headers: [['content-type', 'application/octet-stream']],
      body: Buffer.alloc(bodyBytes, 'x'),
    });

  it('never writes or reads an entry above GATEWAY_CACHE_STORE_MAX_ENTRY_BYTES (2 MiB) in one command; the 1 MiB bodies of the default policy are shared', async () => {
    const store = new RedisCacheStore(redis.client, { keyPrefix: redis.prefix });
    stores.push(store);
    const tenantId = randomUUID();
    const pathIndexKey = `c:{${tenantId}}:0:r:0:path:idx`;
    // The largest body a fill collects at the defaults: a tenant's quarter of GATEWAY_CACHE_FILL_BYTES.
    const huge = { key: `c:{${tenantId}}:0:r:0:path:huge`, entry: entryOf(16 * 1024 * 1024), ttlMs: 60_000 };
    const usual = { key: `c:{${tenantId}}:0:r:0:path:usual`, entry: entryOf(1024 * 1024), ttlMs: 60_000 };

    const sizes = recordCommandSizes(redis.client);
    const put = await store.putResponse({ ...huge, pathIndexKey });
    const hit = await store.get(huge.key).finally(() => sizes.stop());

    expect(sizes.largestBytes().bytes).toBeLessThanOrEqual(2 * 1024 * 1024);
    expect(put).toBe('too_large_to_share');
    expect(hit).toBeNull();
    expect(await store.putResponse({ ...usual, pathIndexKey })).toBe('stored');
    expect((await store.get(usual.key))?.kind).toBe('response');
  });
});
