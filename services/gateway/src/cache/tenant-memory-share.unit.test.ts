import { randomUUID } from 'node:crypto';
import { cachePolicy, routeConfig } from '@vantageedge/shared/domain/gateway-config';
import {
  type CompiledCachePolicy,
  compileCachePolicy,
} from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { describe, expect, it } from 'vitest';
import { type CacheEntry, l1EntryBytes, recordSize } from './cache-entry.js';
import { storedHeaders } from './cacheability.js';
import { L1Cache } from './l1-cache.js';
import { MemoryCacheStore } from './memory-cache-store.js';
import { createResponseCache, type ResponseCache } from './response-cache.js';
import { testCacheEntry } from './testing/test-cache-entry.js';

/**
 * Regression found with a hostile tenant: the L1 (and, without Redis, the in-memory store sized like
 * it) was one LRU for every tenant. A tenant whose clients asked for many distinct cacheable URLs
 * pushed every other tenant's entries out: their HITs became MISSes (without Redis) or Redis reads
 * (with it), whatever their own per-tenant store bound said (256 MiB by default, above the 64 MiB L1).
 */
const MEMORY_BYTES = 1_000_000;
const BODY = 20_000;

async function singleProcessCache(): Promise<ResponseCache> {
  // As start-gateway-replica composes it without Redis: the store as large as the L1.
  return createResponseCache({
    store: new MemoryCacheStore({ maxBytes: MEMORY_BYTES }),
    l1MaxBytes: MEMORY_BYTES,
    registry: createMetricsRegistry('tenant-share', { defaultMetrics: false }),
    logger: createLogger({ service: 'test', level: 'error' }),
    fillBudgetBytes: 4 * BODY,
  });
}

async function tenantPolicy(cache: ResponseCache): Promise<CompiledCachePolicy> {
  const policy = compileCachePolicy(
    randomUUID(),
    routeConfig.parse({
      id: randomUUID(),
      origin_id: randomUUID(),
      path_pattern: '/*',
      auth_mode: 'public',
      cache_policy: cachePolicy.parse({ ttl_seconds: 600 }),
    }),
  )!;
  await cache.prepareTenant(policy.tenantId);
  return policy;
}

/** A client's GET: its X-Cache; on a MISS the origin answers a cacheable 200 of BODY bytes. */
async function get(cache: ResponseCache, policy: CompiledCachePolicy, path: string): Promise<string> {
  const lookup = await cache.lookup(policy, { method: 'GET', path, query: '', headers: {} }, {});
  if (lookup.outcome === 'MISS' && lookup.fill) {
    const start = cache.beginFill(lookup.fill, 'GET', 200, { 'cache-control': 'public, max-age=600' });
    if (start.outcome !== 'collect') return 'BYPASS';
    start.body.push(Buffer.alloc(BODY, 120));
    await start.body.end();
  }
  return lookup.outcome;
}

function entryOf(bodyBytes: number): CacheEntry {
  return testCacheEntry({
    headers: storedHeaders({ 'cache-control': 'public, max-age=600' }, false),
    body: Buffer.alloc(bodyBytes),
    freshMs: 600_000,
  });
}

describe("one tenant's entries cannot push another tenant's out of the replica's memory", () => {
  it("keeps a quiet tenant's HIT while another tenant fills many distinct URLs", async () => {
    const cache = await singleProcessCache();
    const victim = await tenantPolicy(cache);
    const hostile = await tenantPolicy(cache);
    expect(await get(cache, victim, '/home')).toBe('MISS');
    expect(await get(cache, victim, '/home')).toBe('HIT');

    // Three times the whole memory in distinct URLs, each stored.
    const flood = (3 * MEMORY_BYTES) / BODY;
    for (let i = 0; i < flood; i++) expect(await get(cache, hostile, `/item/${i}`)).toBe('MISS');

    expect(await get(cache, victim, '/home')).toBe('HIT');
    // The flooding tenant still caches, within its share: its latest URLs are HITs.
    expect(await get(cache, hostile, `/item/${flood - 1}`)).toBe('HIT');
    await cache.close();
  });

  it('in-memory store: a tenant within its own bound but past its share of the store evicts its own entries', async () => {
    const store = new MemoryCacheStore({ maxBytes: MEMORY_BYTES });
    const keyOf = (tenant: string, n: number) => `c:{${tenant}}:0:route:0:path${n}:v`;
    const put = (key: string) =>
      store.putResponse({ key, entry: entryOf(BODY), ttlMs: 600_000, pathIndexKey: `${key}:idx` });
    const quiet = randomUUID();
    const noisy = randomUUID();
    await put(keyOf(quiet, 0));
    const flood = (3 * MEMORY_BYTES) / BODY;
    for (let i = 0; i < flood; i++) await put(keyOf(noisy, i));
    expect((await store.get(keyOf(quiet, 0)))?.kind).toBe('response');
    expect((await store.get(keyOf(noisy, flood - 1)))?.kind).toBe('response');
    await store.close();
  });

  it('in-memory store: a tenant flooding URLs whose responses vary leaves no Vary markers past its share', async () => {
    const store = new MemoryCacheStore({ maxBytes: MEMORY_BYTES });
    const quiet = randomUUID();
    const quietKey = `c:{${quiet}}:0:route:0:home:v`;
    await store.putResponse({
      key: quietKey,
      entry: entryOf(BODY),
      ttlMs: 600_000,
      pathIndexKey: `${quietKey}:idx`,
    });
    // Small variants of distinct URLs: the tenant's bound keeps a few dozen, each URL has its marker.
    const noisy = randomUUID();
    const variantEntry = { ...entryOf(10), varyOn: ['accept-language'] };
    const markerBytes = recordSize({ kind: 'vary', varyOn: variantEntry.varyOn });
    const flood = Math.ceil((2 * MEMORY_BYTES) / markerBytes);
    for (let i = 0; i < flood; i++) {
      const urlKey = `c:{${noisy}}:0:route:0:path${i}:u`;
      const stored = await store.putVariant({
        key: `${urlKey}:de`,
        urlKey,
        entry: variantEntry,
        ttlMs: 600_000,
        pathIndexKey: `c:{${noisy}}:0:route:0:path${i}:idx`,
        maxVariants: 16,
      });
      expect(stored).toBe('stored');
    }
    expect((await store.get(quietKey))?.kind).toBe('response');
    // The latest URL still answers through its marker; the oldest URL's marker left with its variant.
    expect((await store.get(`c:{${noisy}}:0:route:0:path${flood - 1}:u`))?.kind).toBe('vary');
    expect(await store.get(`c:{${noisy}}:0:route:0:path0:u`)).toBeNull();
    await store.close();
  });

  it("L1: a tenant past its share loses its own least recently used entries, not another tenant's", () => {
    const l1 = new L1Cache(MEMORY_BYTES);
    const keyOf = (tenant: string, n: number) => `c:{${tenant}}:0:route:0:path${n}:v`;
    const quiet = randomUUID();
    const noisy = randomUUID();
    l1.set(keyOf(quiet, 0), entryOf(BODY), `${keyOf(quiet, 0)}:idx`);
    const flood = Math.ceil((3 * MEMORY_BYTES) / (BODY + recordSize(entryOf(0))));
    for (let i = 0; i < flood; i++) l1.set(keyOf(noisy, i), entryOf(BODY), `${keyOf(noisy, i)}:idx`);
    expect(l1.get(keyOf(quiet, 0))).toBeDefined();
    expect(l1.get(keyOf(noisy, flood - 1))).toBeDefined();
    expect(l1.get(keyOf(noisy, 0))).toBeUndefined();
  });

  it("L1: a tenant whose every entry the whole cache's bound took keeps to its share afterwards", () => {
    const l1 = new L1Cache(MEMORY_BYTES);
    const share = MEMORY_BYTES / 4;
    const keyOf = (tenant: string, n: number) =>
      `c:{${tenant}}:0:route:0:path${String(n).padStart(3, '0')}:v`;
    const overhead = l1EntryBytes(entryOf(0), keyOf(randomUUID(), 0), `${keyOf(randomUUID(), 0)}:idx`);
    const put = (tenant: string, n: number, bytes: number) =>
      l1.set(keyOf(tenant, n), entryOf(bytes - overhead), `${keyOf(tenant, n)}:idx`);

    const flooding = randomUUID();
    put(flooding, 0, 100_000);
    // Three quiet tenants hold 661,500 bytes: with the flooding tenant's share, the cache has room left.
    const quiet = [randomUUID(), randomUUID(), randomUUID()];
    for (const tenant of quiet) for (let n = 0; n < 9; n++) put(tenant, n, 24_500);
    // A whole share: the cache's bound takes the flooding tenant's only (oldest) entry for it.
    expect(put(flooding, 1, share)).toBe(true);
    expect(l1.get(keyOf(flooding, 0))).toBeUndefined();
    expect(l1.bytesOf(flooding)).toBe(share);

    for (let n = 2; n < 40; n++) put(flooding, n, 20_000);
    expect(l1.bytesOf(flooding)).toBeLessThanOrEqual(share);
    for (const tenant of quiet)
      for (let n = 0; n < 9; n++) expect(l1.get(keyOf(tenant, n)), `${tenant} ${n}`).toBeDefined();
  });
});
