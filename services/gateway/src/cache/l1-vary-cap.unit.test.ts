import { randomUUID } from 'node:crypto';
import type { CacheRequest } from '@vantageedge/shared/gateway-policies/cache-key';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { publicRouteCachePolicy } from '../testing/cache-policies.js';
import { MemoryCacheStore } from './memory-cache-store.js';
import { createResponseCache, type ResponseCache } from './response-cache.js';

/**
 * The Vary cap holds in each replica's L1 too, also for the variants a replica takes from the shared
 * store (another replica filled them): with the store replacing variants at the cap, a client sending
 * new junk values through the other replicas would otherwise pile up as many of one URL's variants in
 * this replica's L1 as it likes, pushing the tenant's other entries out of its share.
 */
describe("the Vary cap in a replica's L1", () => {
  const tenantId = randomUUID();
  const policy = publicRouteCachePolicy(tenantId);
  const MAX_VARIANTS = 2;
  const replica = (store: MemoryCacheStore) =>
    createResponseCache({
      store,
      l1MaxBytes: 1_000_000,
      registry: new Registry(),
      logger: createLogger({ service: 'test', level: 'error' }),
      maxVariantsPerUrl: MAX_VARIANTS,
    });
  const request = (language: string): CacheRequest => ({
    method: 'GET',
    path: '/page',
    query: '',
    headers: { 'accept-language': language },
  });

  async function fill(cache: ResponseCache, language: string): Promise<void> {
    const lookup = await cache.lookup(policy, request(language), {});
    if (lookup.outcome !== 'MISS' || lookup.fill === null)
      throw new Error(`expected a fill, got ${lookup.outcome}`);
    const stored = await cache.store(lookup.fill, 'GET', {
      status: 200,
      headers: { 'cache-control': 'max-age=300', vary: 'Accept-Language' },
      body: Buffer.from(`language ${language}`),
    });
    expect(stored).toBe(true);
  }

  it('keeps at most the cap of a URL’s variants read from the shared store', async () => {
    const shared = new MemoryCacheStore({ maxBytes: 10_000_000 });
    const filler = replica(shared);
    const reader = replica(shared);
    await Promise.all([filler.prepareTenant(tenantId), reader.prepareTenant(tenantId)]);

    const languages = ['x1', 'x2', 'x3', 'x4', 'x5', 'x6'];
    for (const language of languages) {
      await fill(filler, language);
      // The other replica finds it in the shared store and keeps it in its L1.
      const read = await reader.lookup(policy, request(language), {});
      expect(read.outcome).toBe('HIT');
    }
    // Neither the store nor the reader's L1 keeps more than the cap: the oldest are gone everywhere.
    const outcomes = [];
    for (const language of languages) {
      const lookup = await reader.lookup(policy, request(language), {});
      outcomes.push(lookup.outcome);
      if (lookup.outcome === 'MISS' && lookup.fill !== null) reader.abandon(lookup.fill);
    }
    expect(outcomes.filter((outcome) => outcome === 'HIT')).toHaveLength(MAX_VARIANTS);
    await Promise.all([filler.close(), reader.close()]);
  });
});
