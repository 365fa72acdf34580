import { randomUUID } from 'node:crypto';
import type { CacheRequest } from '@vantageedge/shared/gateway-policies/cache-key';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { collectGarbage } from '@vantageedge/shared/testing/live-memory';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicRouteCachePolicy } from '../testing/cache-policies.js';
import { RedisCacheStore } from './redis-cache-store.js';
import { createResponseCache, type ResponseCache } from './response-cache.js';

/**
 * Regression test: a finished fill's response stayed in the replica's memory for the whole coalescing
 * timeout (10 s) after it was stored, held by the timer meant for a leader that never finishes. The
 * fill budget no longer counted those bytes, so a client asking for one distinct large cacheable URL
 * after another kept every response of the last 10 s in memory, far past the budget (and past the L1
 * bound, for responses the replica does not keep), enough to take the replica and all its tenants down.
 */
const BODY_BYTES = 256 * 1024;

/**
 * The fill's response must go once stored, not when the coalescing timeout (a minute here) ends: what
 * may hold it a moment longer on a busy machine (a write or a callback still to run) has this long.
 */
const RELEASE_WITHIN_MS = 5_000;

/**
 * Whether `ref`'s object is collected within `ms`: a full collection in each later task (a WeakRef
 * keeps its object for the rest of the task that read it) until it is gone or the time is up.
 */
async function collectedWithin(ref: WeakRef<object>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  do {
    await new Promise((resolve) => setTimeout(resolve, 10));
    collectGarbage();
    if (ref.deref() === undefined) return true;
  } while (Date.now() < deadline);
  return false;
}

describe('a fill the cache stored', () => {
  let redis: RedisClient;
  let cache: ResponseCache;
  const tenantId = randomUUID();
  const policy = publicRouteCachePolicy(tenantId);

  beforeAll(async () => {
    redis = createRedisClient({ url: TEST_INFRA.redisUrl, commandTimeoutMs: 2_000, name: 'finished-fill' });
    await whenReady(redis);
    cache = createResponseCache({
      store: new RedisCacheStore(redis, { keyPrefix: `test:finished-fill:${uniqueSuffix()}:` }),
      // No L1: the stored response lives in Redis only, none of it in this process.
      l1MaxBytes: 1,
      // A leader that never finishes would hold its key for a minute: far longer than this test.
      coalesceTimeoutMs: 60_000,
      registry: new Registry(),
      logger: createLogger({ service: 'test', level: 'error' }),
    });
    await cache.prepareTenant(tenantId);
  });

  afterAll(async () => {
    await cache?.close();
    redis?.disconnect();
  });

  it('leaves nothing of its response in memory once stored', async () => {
    const request: CacheRequest = { method: 'GET', path: `/large/${randomUUID()}`, query: '', headers: {} };
    const lead = await cache.lookup(policy, request, {});
    if (lead.outcome !== 'MISS' || lead.fill === null) throw new Error('expected to lead the fill');
    let body: Buffer | undefined = Buffer.alloc(BODY_BYTES, 'x');
    const bodyRef = new WeakRef(body);
    const stored = await cache.store(lead.fill, 'GET', {
      status: 200,
      headers: { 'content-type': 'text/plain' },
      body,
    });
    body = undefined;
    expect(stored).toBe(true);
    // Served from Redis from now on.
    const hit = await cache.lookup(policy, request, {});
    expect(hit.outcome).toBe('HIT');
    if (hit.outcome === 'HIT') expect(hit.entry.body.length).toBe(BODY_BYTES);
    expect(
      await collectedWithin(bodyRef, RELEASE_WITHIN_MS),
      `the stored response still in memory ${RELEASE_WITHIN_MS} ms later`,
    ).toBe(true);
  });
});
