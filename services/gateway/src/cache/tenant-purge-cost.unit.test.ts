import { randomUUID } from 'node:crypto';
import { pathTags } from '@vantageedge/shared/cache-purge/path-prefix';
import type { CompiledCachePolicy } from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { publicRouteCachePolicy } from '../testing/cache-policies.js';
import { MemoryCacheStore } from './memory-cache-store.js';
import { createResponseCache, type ResponseCache } from './response-cache.js';

/**
 * A tenant's purges cost a replica its own entries, whatever other tenants keep there: a purge that
 * scanned the whole memory cache let one tenant purging in a loop stall every tenant's requests.
 */
const MEMORY_BYTES = 64 * 1024 * 1024;
const NEIGHBOUR_URLS = 1_000;

const caches: ResponseCache[] = [];
afterEach(async () => {
  for (const cache of caches.splice(0)) await cache.close();
});

function replica(): { cache: ResponseCache; registry: Registry } {
  const registry = new Registry();
  const cache = createResponseCache({
    store: new MemoryCacheStore({ maxBytes: MEMORY_BYTES }),
    l1MaxBytes: MEMORY_BYTES,
    registry,
    logger: createLogger({ service: 'test', level: 'error' }),
    generationRefreshMs: 0,
  });
  caches.push(cache);
  return { cache, registry };
}

async function routePolicy(cache: ResponseCache, tenantId: string): Promise<CompiledCachePolicy> {
  const policy = publicRouteCachePolicy(tenantId, 600);
  await cache.prepareTenant(tenantId);
  return policy;
}

/** A client's GET: its X-Cache; on a MISS the origin answers a small cacheable 200. */
async function get(cache: ResponseCache, policy: CompiledCachePolicy, path: string): Promise<string> {
  const lookup = await cache.lookup(policy, { method: 'GET', path, query: '', headers: {} }, {});
  if (lookup.outcome === 'MISS' && lookup.fill) {
    const start = cache.beginFill(lookup.fill, 'GET', 200, { 'cache-control': 'public, max-age=600' });
    if (start.outcome !== 'collect') return 'BYPASS';
    start.body.push(Buffer.from(path));
    await start.body.end();
  }
  return lookup.outcome;
}

async function purgeVisits(registry: Registry): Promise<number> {
  const metric = registry.getSingleMetric('vantageedge_gateway_cache_l1_purge_visits_total');
  return (await metric?.get())?.values[0]?.value ?? 0;
}

describe("a tenant's purges look only at its own entries in a replica's memory", () => {
  it('route, prefix and tenant purges visit the entries they drop, not a neighbour tenant’s', async () => {
    const { cache, registry } = replica();
    const tenantId = randomUUID();
    const shop = await routePolicy(cache, tenantId);
    const blog = await routePolicy(cache, tenantId);
    const neighbour = await routePolicy(cache, randomUUID());
    for (let n = 0; n < NEIGHBOUR_URLS; n++) await get(cache, neighbour, `/sale/${n}`);
    for (let n = 0; n < 10; n++) {
      await get(cache, shop, `/sale/${n}`);
      await get(cache, shop, `/new/${n}`);
      await get(cache, blog, `/posts/${n}`);
    }
    expect(await get(cache, shop, '/sale/1')).toBe('HIT');

    let visited = await purgeVisits(registry);
    await cache.purgeTags(tenantId, pathTags('/sale'));
    expect((await purgeVisits(registry)) - visited).toBe(10);
    expect(await get(cache, shop, '/sale/1')).toBe('MISS');
    expect(await get(cache, shop, '/new/1')).toBe('HIT');

    visited = await purgeVisits(registry);
    await cache.purgeRoute(tenantId, blog.routeId);
    expect((await purgeVisits(registry)) - visited).toBe(10);
    expect(await get(cache, blog, '/posts/1')).toBe('MISS');
    expect(await get(cache, shop, '/new/1')).toBe('HIT');

    visited = await purgeVisits(registry);
    await cache.purgeTenant(tenantId);
    // What is left of the tenant: 10 /new/ pages, /sale/1 and /posts/1 stored again.
    expect((await purgeVisits(registry)) - visited).toBe(12);
    expect(await get(cache, shop, '/new/1')).toBe('MISS');

    for (const n of [0, 1, NEIGHBOUR_URLS - 1]) expect(await get(cache, neighbour, `/sale/${n}`)).toBe('HIT');
  });
});
