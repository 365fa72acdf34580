import { randomUUID } from 'node:crypto';
import type { PurgeGenerations } from '@vantageedge/shared/cache-purge/purge-protocol';
import { compileCachePolicy } from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { GatewayConfigStore } from '../config/gateway-config-store.js';
import { routeWith } from '../ratelimit/test-fixtures.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createCacheStage } from './cache-stage.js';
import type { PurgeListener } from './cache-store.js';
import { MemoryCacheStore } from './memory-cache-store.js';
import { createResponseCache, type ResponseCache } from './response-cache.js';

/** Counts reads of each tenant's purge generations, and can announce a resync as a reconnect would. */
class ObservedStore extends MemoryCacheStore {
  readonly reads: string[] = [];
  /** While set, reads wait for it. */
  gate: Promise<void> | undefined;
  readonly #listeners: PurgeListener[] = [];

  constructor() {
    super({ maxBytes: 1_000_000 });
  }

  override async generations(tenantId: string): Promise<PurgeGenerations> {
    this.reads.push(tenantId);
    await this.gate;
    return super.generations(tenantId);
  }

  override subscribe(listener: PurgeListener): void {
    this.#listeners.push(listener);
    super.subscribe(listener);
  }

  resync(): void {
    for (const listener of this.#listeners) listener.onResync();
  }
}

const caches: ResponseCache[] = [];
afterEach(async () => {
  for (const cache of caches.splice(0)) await cache.close();
});

function observedCache(): { store: ObservedStore; cache: ResponseCache } {
  const store = new ObservedStore();
  const cache = createResponseCache({
    store,
    l1MaxBytes: 1_000_000,
    registry: new Registry(),
    logger: createLogger({ service: 'test', level: 'error' }),
    generationRefreshMs: 0,
  });
  caches.push(cache);
  return { store, cache };
}

/**
 * Regression: a replica kept the purge generations of every tenant it had ever served (soft-purged tags
 * included, up to CACHE_SOFT_PURGED_TAGS_MAX of them) after the tenant left its config, and read them
 * all from Redis again at every generation refresh: memory and Redis reads grew with every tenant ever
 * removed.
 */
describe('purge generations of a removed tenant', () => {
  it('are dropped with the tenant and no longer read from the store', async () => {
    const { store, cache } = observedCache();
    const config = new GatewayConfigStore({
      baseDomains: ['localhost'],
      createUpstreamSet: () => ({ acquire: () => undefined, close: async () => {} }),
    });
    config.setPipeline({ policies: [createCacheStage(cache)] });
    const snapshotOf = (tenantId: string, subdomain: string) => {
      const originId = randomUUID();
      return buildSnapshot({
        tenantId,
        subdomain,
        origins: [{ id: originId, targets: ['http://127.0.0.1:1'] }],
        routes: [{ origin_id: originId, path_pattern: '/*', cache_policy: { ttl_seconds: 60 } }],
      });
    };
    const [removed, kept] = [randomUUID(), randomUUID()];
    config.apply(snapshotOf(removed, 'generations-removed'));
    config.apply(snapshotOf(kept, 'generations-kept'));
    const tags = Array.from({ length: 1_000 }, (_, i) => `tag-${i}`);
    await cache.purgeTags(removed, tags, { soft: true });
    await cache.prepareTenant(kept);
    expect(cache.heldGenerations(removed).softTags).toBe(tags.length);

    config.remove(removed);

    expect(cache.heldGenerations(removed)).toEqual({ routes: 0, softTags: 0 });
    store.reads.length = 0;
    store.resync();
    // Tenants are read again one after another; the kept tenant's read is the sweep's last.
    while (!store.reads.includes(kept)) await new Promise((resolve) => setImmediate(resolve));
    expect(store.reads).toEqual([kept]);
    expect(cache.heldGenerations(removed)).toEqual({ routes: 0, softTags: 0 });
  });

  it('are not loaded again by a request of the tenant still in flight when it was removed', async () => {
    const { store, cache } = observedCache();
    const tenantId = randomUUID();
    const policy = compileCachePolicy(
      tenantId,
      routeWith(null, { cache_policy: { ttl_seconds: 60 } as never }),
    )!;
    await cache.prepareTenant(tenantId);
    // What removing the tenant from the config does (cache stage: tenantRetired).
    cache.routeRetired(policy);
    cache.tenantRemoved(tenantId);
    store.reads.length = 0;

    const lookup = await cache.lookup(policy, { method: 'GET', path: '/a', query: '', headers: {} }, {});

    expect(lookup.outcome).toBe('BYPASS');
    await new Promise((resolve) => setImmediate(resolve));
    expect(store.reads).toEqual([]);
  });

  it('read while the tenant was removed are not kept', async () => {
    const { store, cache } = observedCache();
    const tenantId = randomUUID();
    let release!: () => void;
    store.gate = new Promise((resolve) => {
      release = resolve;
    });
    await store.purgeTagged({ kind: 'tags', tenantId, tags: ['a', 'b'], soft: true });
    const prepared = cache.prepareTenant(tenantId);

    cache.tenantRemoved(tenantId);
    release();
    await prepared;

    expect(cache.heldGenerations(tenantId)).toEqual({ routes: 0, softTags: 0 });
    store.reads.length = 0;
    store.resync();
    await new Promise((resolve) => setImmediate(resolve));
    expect(store.reads).toEqual([]);
  });
});
