import { randomUUID } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { describeCacheStoreContract } from './cache-store.contract.js';
import { MemoryCacheStore } from './memory-cache-store.js';
import { testCacheEntry } from './testing/test-cache-entry.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** The heap and buffers in use once garbage is collected. */
function retainedBytes(): number {
  gc();
  gc();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
}

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
    const before = retainedBytes();
    // Each tenant within its share of the store; together they fill it with tiny entries.
    for (let tenant = 0; tenant < 64; tenant++) {
      const keyspace = `c:{${randomUUID()}}:0:${randomUUID()}:0:`;
      for (let url = 0; url < 1_000; url++) {
        const key = `${keyspace}${randomUUID()}${randomUUID()}`;
        await store.putResponse({ key, entry, ttlMs: 60_000, pathIndexKey: `${key}:idx` });
      }
    }
    const grown = retainedBytes() - before;
    // Generous for the test's own allocations; unbounded it was ten times the bound.
    expect(grown).toBeLessThan(1.5 * maxBytes);
  });
});
