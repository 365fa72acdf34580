import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { CacheEntry } from './cache-entry.js';
import { describeCacheStoreContract } from './cache-store.contract.js';
import { MemoryCacheStore } from './memory-cache-store.js';

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
    const entry = (n: number): CacheEntry => ({
      kind: 'response',
      status: 200,
      headers: [],
      body: Buffer.alloc(1_000, n),
      storedAt: 0,
      freshMs: 60_000,
      staleWhileRevalidateMs: 0,
      staleIfErrorMs: 0,
      mustRevalidate: false,
      immutable: false,
      tags: [],
      varyOn: [],
    });
    for (let n = 0; n < 4; n++)
      await store.putResponse({ key: `k${n}`, entry: entry(n), ttlMs: 60_000, pathIndexKey: 'idx' });
    expect(await store.get('k0')).toBeNull();
    expect((await store.get('k3'))?.kind).toBe('response');
  });
});
