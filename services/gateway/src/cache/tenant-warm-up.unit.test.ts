import { randomUUID } from 'node:crypto';
import type { PurgeGenerations } from '@vantageedge/shared/cache-purge/purge-protocol';
import { compileCachePolicy } from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { routeWith } from '../ratelimit/test-fixtures.js';
import { MemoryCacheStore } from './memory-cache-store.js';
import { createResponseCache, type ResponseCache } from './response-cache.js';

/**
 * Regression tests: a tenant's purge-generation load that failed at startup (1,000 tenants compiled
 * against Redis's 50 ms command timeout while the event loop is busy: "Command timed out") rejected
 * prepareTenant at once. The benchmark's gateway awaited those loads and exited on the first rejection,
 * and a replica left such tenants uncached until a request happened to trigger another load. Now a
 * failed load is retried with backoff: prepareTenant settles once the generations are loaded, and only
 * a store that keeps failing makes it reject (after a bounded number of attempts, never a hang).
 */
class FlakyStore extends MemoryCacheStore {
  failuresLeft: number;
  calls = 0;

  constructor(failures: number) {
    super({ maxBytes: 1_000_000 });
    this.failuresLeft = failures;
  }

  override async generations(tenantId: string): Promise<PurgeGenerations> {
    this.calls++;
    if (this.failuresLeft > 0) {
      this.failuresLeft--;
      throw new Error('Command timed out');
    }
    return super.generations(tenantId);
  }
}

const caches: ResponseCache[] = [];
afterEach(async () => {
  for (const cache of caches.splice(0)) await cache.close();
});

function cacheOn(store: FlakyStore): ResponseCache {
  const cache = createResponseCache({
    store,
    l1MaxBytes: 1_000_000,
    registry: new Registry(),
    logger: createLogger({ service: 'test', level: 'error' }),
    retryDelayMs: 1,
  });
  caches.push(cache);
  return cache;
}

describe('tenant warm-up (purge generations)', () => {
  it('retries a load that timed out, so prepareTenant resolves and lookups use the cache', async () => {
    const store = new FlakyStore(2);
    const cache = cacheOn(store);
    const tenantId = randomUUID();
    await expect(cache.prepareTenant(tenantId)).resolves.toBeUndefined();
    expect(store.calls).toBe(3);
    const policy = compileCachePolicy(
      tenantId,
      routeWith(null, { cache_policy: { ttl_seconds: 60 } as never }),
    )!;
    const lookup = await cache.lookup(policy, { method: 'GET', path: '/a', query: '', headers: {} }, {});
    expect(lookup.outcome).toBe('MISS');
  });

  it('loads 1,000 tenants whose first attempts all time out', async () => {
    const store = new FlakyStore(1_000);
    const cache = cacheOn(store);
    const tenants = Array.from({ length: 1_000 }, () => randomUUID());
    await expect(Promise.all(tenants.map((id) => cache.prepareTenant(id)))).resolves.toHaveLength(1_000);
  });

  it('gives up on a store that keeps failing after a bounded number of attempts (rejects, no hang)', async () => {
    const store = new FlakyStore(Number.POSITIVE_INFINITY);
    const cache = cacheOn(store);
    await expect(cache.prepareTenant(randomUUID())).rejects.toThrow('Command timed out');
    expect(store.calls).toBeGreaterThan(1);
    expect(store.calls).toBeLessThanOrEqual(6);
  });
});
