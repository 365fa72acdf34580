import { randomUUID } from 'node:crypto';
import { cachePolicy, routeConfig } from '@vantageedge/shared/domain/gateway-config';
import {
  type CompiledCachePolicy,
  compileCachePolicy,
} from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryCacheStore } from './memory-cache-store.js';
import { type CacheFill, createResponseCache, type FillBody, type FillStart } from './response-cache.js';

/** The fill budget's bookkeeping: whatever way a fill ends, what it reserved is given back. */
async function setup(
  budget: number,
  maxBodyBytes = 10_000,
  options: { fillTenantShare?: number; fillDeadlineMs?: number } = {},
) {
  const registry = createMetricsRegistry('fill', { defaultMetrics: false });
  const cache = createResponseCache({
    store: new MemoryCacheStore({ maxBytes: 1_000_000 }),
    l1MaxBytes: 1_000_000,
    registry,
    logger: createLogger({ service: 'test', level: 'error' }),
    fillBudgetBytes: budget,
    ...options,
  });
  const policyOf = async () => {
    const compiled = compileCachePolicy(
      randomUUID(),
      routeConfig.parse({
        id: randomUUID(),
        origin_id: randomUUID(),
        path_pattern: '/*',
        auth_mode: 'public',
        cache_policy: cachePolicy.parse({ max_body_bytes: maxBodyBytes }),
      }),
    )!;
    await cache.prepareTenant(compiled.tenantId);
    return compiled;
  };
  const policy = await policyOf();
  /** A MISS leader's fill of `path` (of another tenant's route when `of` is given). */
  const fillFor = async (path: string, of: CompiledCachePolicy = policy): Promise<CacheFill> => {
    const lookup = await cache.lookup(of, { method: 'GET', path, query: '', headers: {} }, {});
    if (lookup.outcome !== 'MISS' || !lookup.fill)
      throw new Error(`expected a MISS leader, got ${lookup.outcome}`);
    return lookup.fill;
  };
  const metric = async (name: string, reason?: string) => {
    const values = (await registry.getSingleMetric(name)?.get())?.values ?? [];
    return values.find((value) => reason === undefined || value.labels['reason'] === reason)?.value ?? 0;
  };
  const buffered = () => metric('vantageedge_gateway_cache_fill_bytes');
  return { cache, policy, policyOf, fillFor, buffered, metric };
}

function collecting(start: FillStart): FillBody {
  if (start.outcome !== 'collect') throw new Error(`expected to collect, got ${start.outcome}`);
  return start.body;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('cache fill budget', () => {
  it('reserves bytes as they arrive, never the announced Content-Length', async () => {
    const { cache, policy, fillFor, buffered } = await setup(1_000, 10_000, { fillTenantShare: 1 });
    const first = collecting(cache.beginFill(await fillFor('/a'), 'GET', 200, { 'content-length': '800' }));
    // Announced, not arrived: nothing is held yet (an origin that announces much and sends little holds little).
    expect(await buffered()).toBe(0);
    first.push(Buffer.alloc(300));
    expect(await buffered()).toBe(300);
    // 700 are free: another announced 600 is collected, 800 is not (it could not be stored).
    const second = collecting(cache.beginFill(await fillFor('/b'), 'GET', 200, { 'content-length': '600' }));
    expect(cache.beginFill(await fillFor('/c'), 'GET', 200, { 'content-length': '800' }).outcome).toBe(
      'over_budget',
    );
    second.abort();
    first.push(Buffer.alloc(500));
    expect(await buffered()).toBe(800);
    expect(await first.end()).toBe(true);
    expect(await buffered()).toBe(0);
    const again = await cache.lookup(policy, { method: 'GET', path: '/a', query: '', headers: {} }, {});
    expect(again.outcome).toBe('HIT');
  });

  it("one tenant's fills hold at most its share of the budget; another tenant's fills still collect and store", async () => {
    const { cache, policyOf, fillFor, buffered, metric } = await setup(1_000);
    const hostile = await policyOf();
    const victim = await policyOf();
    // The hostile tenant announces the whole budget: not reserved, and more than its quarter is refused.
    expect(
      cache.beginFill(await fillFor('/big', hostile), 'GET', 200, { 'content-length': '1000' }).outcome,
    ).toBe('over_budget');
    const slow = collecting(cache.beginFill(await fillFor('/slow', hostile), 'GET', 200, {}));
    slow.push(Buffer.alloc(250));
    expect(slow.collecting).toBe(true);
    slow.push(Buffer.alloc(1)); // past its quarter (250 of 1,000): stops collecting, gives its bytes back
    expect(slow.collecting).toBe(false);
    expect(await buffered()).toBe(0);
    const held = collecting(cache.beginFill(await fillFor('/held', hostile), 'GET', 200, {}));
    held.push(Buffer.alloc(250));
    expect(cache.beginFill(await fillFor('/more', hostile), 'GET', 200, {}).outcome).toBe('over_budget');
    expect(await metric('vantageedge_gateway_cache_fill_budget_bypass_total')).toBe(3);

    // Meanwhile the other tenant fills as usual.
    const fine = collecting(
      cache.beginFill(await fillFor('/page', victim), 'GET', 200, { 'content-length': '200' }),
    );
    fine.push(Buffer.alloc(200));
    expect(await buffered()).toBe(450);
    expect(await fine.end()).toBe(true);
    const hit = await cache.lookup(victim, { method: 'GET', path: '/page', query: '', headers: {} }, {});
    expect(hit.outcome).toBe('HIT');
    held.abort();
    expect(await buffered()).toBe(0);
  });

  it('stops collecting a fill that runs past its deadline, even when no further chunk comes', async () => {
    const { cache, policy, fillFor, buffered, metric } = await setup(1_000, 10_000, {
      fillDeadlineMs: 5_000,
    });
    const fill = await fillFor('/trickle');
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const body = collecting(cache.beginFill(fill, 'GET', 200, { 'content-length': '200' }));
    body.push(Buffer.alloc(100));
    expect(await buffered()).toBe(100);
    vi.advanceTimersByTime(4_999);
    expect(body.collecting).toBe(true);
    vi.advanceTimersByTime(1);
    expect(body.collecting).toBe(false);
    expect(await buffered()).toBe(0);
    expect(await metric('vantageedge_gateway_cache_not_stored_total', 'fill_deadline')).toBe(1);
    body.push(Buffer.alloc(100)); // the response goes on streaming to its client; nothing is collected
    expect(await buffered()).toBe(0);
    expect(await body.end()).toBe(false);
    vi.useRealTimers();
    const next = await cache.lookup(policy, { method: 'GET', path: '/trickle', query: '', headers: {} }, {});
    expect(next.outcome).toBe('MISS');
  });

  it('gives back what a chunked fill buffered when it grows past max_body_bytes, the budget, or is aborted', async () => {
    const { cache, fillFor, buffered } = await setup(1_000, 600, { fillTenantShare: 1 });
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
