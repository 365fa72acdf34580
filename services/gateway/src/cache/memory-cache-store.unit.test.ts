import { randomUUID } from 'node:crypto';
import { tagIndexKey } from '@vantageedge/shared/cache-purge/purge-protocol';
import { liveHeapAndBufferBytes } from '@vantageedge/shared/testing/live-memory';
import { afterEach, describe, expect, it } from 'vitest';
import { describeCacheStoreContract } from './cache-store.contract.js';
import { MemoryCacheStore } from './memory-cache-store.js';
import { testCacheEntry } from './testing/test-cache-entry.js';

const stores: MemoryCacheStore[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});

describeCacheStoreContract('memory', async (options = {}) => {
  const store = new MemoryCacheStore({ maxBytes: 1_000_000, ...options });
  stores.push(store);
  return { store, tenantId: randomUUID() };
});

describe('MemoryCacheStore', () => {
  it('keeps within its byte bound, dropping the least recently used entries', async () => {
    const store = new MemoryCacheStore({ maxBytes: 3_000 });
    const entry = (n: number) => testCacheEntry({ headers: [], body: Buffer.alloc(1_000, n), storedAt: 0 });
    for (let n = 0; n < 4; n++)
      await store.putResponse({ key: `k${n}`, entry: entry(n), ttlMs: 60_000, pathIndexKey: 'idx' });
    expect(await store.get('k0')).toBeNull();
    expect((await store.get('k3'))?.kind).toBe('response');
  });

  /**
   * Regression: the bound counted each record's body and headers only, not what keeping it costs the
   * heap (its key, its path index, the LRU's slot: ≈2 KB for a response of a few bytes). Clients asking
   * many tenants' cacheable routes for distinct URLs with tiny answers made a single-process gateway
   * hold some 26 MB in a 4 MiB store.
   */
  it('holds no more heap than its byte bound, however small its entries', async () => {
    const maxBytes = 4 * 1024 * 1024;
    const store = new MemoryCacheStore({ maxBytes });
    stores.push(store);
    const entry = testCacheEntry();
    const before = liveHeapAndBufferBytes();
    // Each tenant within its share of the store; together they fill it with tiny entries.
    for (let tenant = 0; tenant < 64; tenant++) {
      const keyspace = `c:{${randomUUID()}}:0:${randomUUID()}:0:`;
      for (let url = 0; url < 1_000; url++) {
        const key = `${keyspace}${randomUUID()}${randomUUID()}`;
        await store.putResponse({ key, entry, ttlMs: 60_000, pathIndexKey: `${key}:idx` });
      }
    }
    const grown = liveHeapAndBufferBytes() - before;
    // Generous for the test's own allocations; unbounded it was ten times the bound.
    expect(grown).toBeLessThan(1.5 * maxBytes);
  });

  /**
   * Regression: the writer reckons how long ago its origin was asked by its clock, the store reads its
   * own a moment later; when a millisecond ended in between, a purge that came in the ask's millisecond
   * read as older than the ask and the answer it meant to remove was stored (a fill under way while a
   * tenant purged its tag, the purged content served again).
   */
  it("does not store a fill asked in a purge's millisecond when its clock ticked before the write", async () => {
    let now = 1_000_000;
    const store = new MemoryCacheStore({ maxBytes: 1_000_000, now: () => now });
    stores.push(store);
    const tenantId = randomUUID();
    const base = `c:{${tenantId}}:0:r:0`;
    await store.purgeTagged({ kind: 'tags', tenantId, tags: ['product-7'] });
    now += 1;
    const write = {
      key: `${base}:a:v`,
      entry: testCacheEntry({ tags: ['product-7'], storedAt: now }),
      ttlMs: 60_000,
      pathIndexKey: `${base}:a:idx`,
      tagIndexKeys: [tagIndexKey('', tenantId, 'product-7')],
    };
    // Asked in the purge's millisecond, by the writer's reading the moment before the store's.
    expect(await store.putResponse({ ...write, askedMsAgo: 0, askedAt: now - 1 })).toBe('purged');
    expect(await store.get(write.key)).toBeNull();
    // Asked in the millisecond after it: stored.
    expect(await store.putResponse({ ...write, askedMsAgo: 0, askedAt: now })).toBe('stored');
  });
});
