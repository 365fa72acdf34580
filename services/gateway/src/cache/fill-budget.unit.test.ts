import { randomUUID } from 'node:crypto';
import { cachePolicy, routeConfig } from '@vantageedge/shared/domain/gateway-config';
import { compileCachePolicy } from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { describe, expect, it } from 'vitest';
import { MemoryCacheStore } from './memory-cache-store.js';
import { type CacheFill, createResponseCache } from './response-cache.js';

/** The fill budget's bookkeeping: whatever way a fill ends, what it reserved is given back. */
async function setup(budget: number, maxBodyBytes = 10_000) {
  const registry = createMetricsRegistry('fill', { defaultMetrics: false });
  const cache = createResponseCache({
    store: new MemoryCacheStore({ maxBytes: 1_000_000 }),
    l1MaxBytes: 1_000_000,
    registry,
    logger: createLogger({ service: 'test', level: 'error' }),
    fillBudgetBytes: budget,
  });
  const policy = compileCachePolicy(
    randomUUID(),
    routeConfig.parse({
      id: randomUUID(),
      origin_id: randomUUID(),
      path_pattern: '/*',
      auth_mode: 'public',
      cache_policy: cachePolicy.parse({ max_body_bytes: maxBodyBytes }),
    }),
  )!;
  await cache.prepareTenant(policy.tenantId);
  const fillFor = async (path: string): Promise<CacheFill> => {
    const lookup = await cache.lookup(policy, { method: 'GET', path, query: '', headers: {} }, {});
    if (lookup.outcome !== 'MISS' || !lookup.fill)
      throw new Error(`expected a MISS leader, got ${lookup.outcome}`);
    return lookup.fill;
  };
  const buffered = async () => {
    const line = (await registry.metrics())
      .split('\n')
      .find((l) => l.startsWith('vantageedge_gateway_cache_fill_bytes'));
    return Number(line?.split(' ').at(-1));
  };
  return { cache, policy, fillFor, buffered };
}

describe('cache fill budget', () => {
  it('reserves a declared length up front and refuses a fill that does not fit', async () => {
    const { cache, policy, fillFor, buffered } = await setup(1_000);
    const first = cache.beginFill(await fillFor('/a'), 'GET', 200, { 'content-length': '800' });
    expect(first.outcome).toBe('collect');
    expect(await buffered()).toBe(800);
    expect(cache.beginFill(await fillFor('/b'), 'GET', 200, { 'content-length': '300' }).outcome).toBe(
      'over_budget',
    );
    if (first.outcome !== 'collect') return;
    first.body.push(Buffer.alloc(800));
    expect(await first.body.end()).toBe(true);
    expect(await buffered()).toBe(0);
    const again = await cache.lookup(policy, { method: 'GET', path: '/a', query: '', headers: {} }, {});
    expect(again.outcome).toBe('HIT');
  });

  it('gives back what a chunked fill buffered when it grows past max_body_bytes, the budget, or is aborted', async () => {
    const { cache, fillFor, buffered } = await setup(1_000, 600);
    const tooLarge = cache.beginFill(await fillFor('/large'), 'GET', 200, {});
    if (tooLarge.outcome !== 'collect') throw new Error('expected to collect');
    tooLarge.body.push(Buffer.alloc(500));
    expect(await buffered()).toBe(500);
    tooLarge.body.push(Buffer.alloc(200));
    expect(await buffered()).toBe(0);
    expect(await tooLarge.body.end()).toBe(false);

    const a = cache.beginFill(await fillFor('/x'), 'GET', 200, {});
    const b = cache.beginFill(await fillFor('/y'), 'GET', 200, {});
    if (a.outcome !== 'collect' || b.outcome !== 'collect') throw new Error('expected to collect');
    a.body.push(Buffer.alloc(550));
    b.body.push(Buffer.alloc(300));
    b.body.push(Buffer.alloc(300)); // 1,150 > 1,000: b stops collecting
    expect(await buffered()).toBe(550);
    expect(await b.body.end()).toBe(false);
    a.body.abort();
    expect(await buffered()).toBe(0);
    expect(await a.body.end()).toBe(false);
  });

  it('does not buffer a response the rules refuse', async () => {
    const { cache, fillFor, buffered } = await setup(1_000);
    const refused = cache.beginFill(await fillFor('/private'), 'GET', 200, { 'cache-control': 'private' });
    expect(refused).toEqual({ outcome: 'not_storable', reason: 'origin_cache_control' });
    expect(cache.beginFill(await fillFor('/huge'), 'GET', 200, { 'content-length': '20000' })).toEqual({
      outcome: 'not_storable',
      reason: 'body_too_large',
    });
    expect(await buffered()).toBe(0);
  });
});
