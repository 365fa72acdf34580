import {
  compileRateLimits,
  FAST_MODE_LEASE_MS,
} from '@vantageedge/shared/gateway-policies/compile-rate-limits';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { describe, expect, it } from 'vitest';
import { MemoryLimitStore } from './memory-limit-store.js';
import { createRateLimiter } from './rate-limiter.js';
import { routeWith, tenantWith } from './test-fixtures.js';

const logger = createLogger({ service: 'test', level: 'error' });
const identity = (
  tenantId: string,
  routeId: string,
  extra: { userId?: string; apiKeyId?: string; clientIp?: string } = {},
) => ({
  tenantId,
  routeId,
  clientIp: extra.clientIp ?? '192.0.2.1',
  userId: extra.userId,
  apiKeyId: extra.apiKeyId,
});

/** A memory store that counts its calls (a call is a Redis round trip with the real store). */
function countingStore(): MemoryLimitStore & { calls: number } {
  const store = Object.assign(new MemoryLimitStore(), { calls: 0 });
  const consume = store.consume.bind(store);
  store.consume = (requests) => {
    store.calls++;
    return consume(requests);
  };
  return store;
}

describe('compileRateLimits', () => {
  it('combines the tenant-wide cap and the route limit, keys namespaced by a tenant hash tag', () => {
    const tenant = tenantWith({ requests_per_second: 50, burst: 100, scope: 'tenant' });
    const route = routeWith({
      requests_per_second: 5,
      algorithm: 'sliding_window',
      window_seconds: 60,
      limit: 30,
      scope: 'api_key',
    });
    const limits = compileRateLimits(tenant, route);
    expect(limits.descriptors.map((d) => d.name)).toEqual(['tenant', 'route_api_key']);
    expect(limits.descriptors[0]!.keyPrefix).toBe(`rl:{${tenant.id}}:t:tb:`);
    // sw2: the sliding-window counter's hash (sw was the old log's ZSET: never read, left to expire).
    expect(limits.descriptors[1]!.keyPrefix).toBe(`rl:{${tenant.id}}:r:${route.id}:sw2:key:`);
    expect(limits.policyHeader).toBe('"tenant";q=100;w=2, "route_api_key";q=30;w=60');
  });

  it('has no descriptors when neither tenant nor route limits', () => {
    const limits = compileRateLimits(tenantWith(null), routeWith(null));
    expect(limits.descriptors).toEqual([]);
    expect(limits.policyHeader).toBeNull();
  });
});

describe('rate limiter in single-process mode (memory store)', () => {
  it('admits up to the limit with remaining-quota headers, then refuses with Retry-After', async () => {
    // 15 s into an aligned minute (a simulated clock): the sliding window's times are exact.
    const limiter = createRateLimiter({
      store: new MemoryLimitStore({ now: () => 1_000 * 60_000 + 15_000 }),
      registry: createMetricsRegistry('t', { defaultMetrics: false }),
      logger,
    });
    const tenant = tenantWith(null);
    const route = routeWith({
      requests_per_second: 1,
      algorithm: 'sliding_window',
      window_seconds: 60,
      limit: 2,
      scope: 'user',
    });
    const limits = compileRateLimits(tenant, route);
    const who = identity(tenant.id, route.id, { userId: 'user_1' });
    const first = await limiter.check(limits, who);
    expect(first.outcome).toBe('allowed');
    // Fully available again once this window's count has left the estimate: the end of the next window.
    expect(first.headers).toContainEqual(['RateLimit', '"route_user";r=1;t=105']);
    expect((await limiter.check(limits, who)).outcome).toBe('allowed');
    const third = await limiter.check(limits, who);
    expect(third.outcome).toBe('limited');
    if (third.outcome !== 'limited') return;
    expect(third.limitedBy).toBe('route_user');
    // 2 admitted in this window: the estimate is 1 half-way through the next, 45 s + 30 s from now.
    expect(third.retryAfterSeconds).toBe(75);
    expect(third.headers).toContainEqual(['Retry-After', String(third.retryAfterSeconds)]);
    // Another user has their own quota; an anonymous caller is keyed by client IP.
    expect((await limiter.check(limits, identity(tenant.id, route.id, { userId: 'user_2' }))).outcome).toBe(
      'allowed',
    );
    expect((await limiter.check(limits, identity(tenant.id, route.id))).outcome).toBe('allowed');
  });

  it('counts decisions by tenant, route, scope and outcome', async () => {
    const registry = createMetricsRegistry('t', { defaultMetrics: false });
    const limiter = createRateLimiter({ store: new MemoryLimitStore(), registry, logger });
    const tenant = tenantWith(null);
    const route = routeWith({ requests_per_second: 0.001, burst: 1, scope: 'ip' });
    const limits = compileRateLimits(tenant, route);
    await limiter.check(limits, identity(tenant.id, route.id));
    await limiter.check(limits, identity(tenant.id, route.id));
    const text = await registry.metrics();
    expect(text).toContain(
      `vantageedge_gateway_ratelimit_decisions_total{tenant="${tenant.id}",route="${route.id}",scope="route_ip",outcome="allowed",service="t"} 1`,
    );
    expect(text).toContain(
      `vantageedge_gateway_ratelimit_decisions_total{tenant="${tenant.id}",route="${route.id}",scope="route_ip",outcome="limited",service="t"} 1`,
    );
  });

  // Both the tenant-wide cap and the route's limit refuse: the client may only come back when both
  // admit, so Retry-After and RateLimit name the limit that frees up last.
  it('refused by the tenant-wide cap and the route limit, reports the one that frees up last', async () => {
    const limiter = createRateLimiter({
      store: new MemoryLimitStore({ now: () => 1_000 * 60_000 + 15_000 }),
      registry: createMetricsRegistry('t', { defaultMetrics: false }),
      logger,
    });
    const tenant = tenantWith({ requests_per_second: 1, burst: 1, scope: 'tenant' });
    const route = routeWith({
      requests_per_second: 1,
      algorithm: 'sliding_window',
      window_seconds: 60,
      limit: 1,
      scope: 'route',
    });
    const limits = compileRateLimits(tenant, route);
    const who = identity(tenant.id, route.id);
    expect((await limiter.check(limits, who)).outcome).toBe('allowed');

    const refused = await limiter.check(limits, who);
    expect(refused.outcome === 'limited' && refused.limitedBy).toBe('route');
    // The route's window admits again once this minute's request has decayed out of the next one
    // (45 + 60 s), long after the tenant's bucket refills (1 s).
    expect(refused.outcome === 'limited' && refused.retryAfterSeconds).toBe(105);
    expect(refused.headers).toContainEqual(['Retry-After', '105']);
    expect(refused.headers).toContainEqual(['RateLimit', '"route";r=0;t=105']);
  });

  it('admitted under both, reports the limit with the fewest requests left', async () => {
    const limiter = createRateLimiter({
      store: new MemoryLimitStore({ now: () => 1_000 * 60_000 + 15_000 }),
      registry: createMetricsRegistry('t', { defaultMetrics: false }),
      logger,
    });
    const tenant = tenantWith({ requests_per_second: 0.01, burst: 10, scope: 'tenant' });
    const route = routeWith({ requests_per_second: 0.01, burst: 3, scope: 'api_key' });
    const limits = compileRateLimits(tenant, route);
    const first = await limiter.check(limits, identity(tenant.id, route.id, { apiKeyId: 'key_1' }));
    expect(first.headers).toContainEqual(['RateLimit', '"route_api_key";r=2;t=100']);
    for (const key of ['key_2', 'key_3', 'key_4', 'key_5', 'key_6', 'key_7']) {
      await limiter.check(limits, identity(tenant.id, route.id, { apiKeyId: key }));
    }
    // Now 3 left tenant-wide and 2 for key_1: key_1 sees its own; key_8 (3 left of its 3) the tenant's.
    const again = await limiter.check(limits, identity(tenant.id, route.id, { apiKeyId: 'key_1' }));
    expect(again.headers).toContainEqual(['RateLimit', '"route_api_key";r=1;t=200']);
    const fresh = await limiter.check(limits, identity(tenant.id, route.id, { apiKeyId: 'key_8' }));
    expect(fresh.headers).toContainEqual(['RateLimit', '"tenant";r=1;t=900']);
  });
});

describe('rate limiter decisions without a store call', () => {
  it('answers from a fast-mode lease synchronously, and goes to the store only to refill it', async () => {
    const store = countingStore();
    const limiter = createRateLimiter({
      store,
      registry: createMetricsRegistry('sync', { defaultMetrics: false }),
      logger,
    });
    const tenant = tenantWith(null);
    const route = routeWith({ requests_per_second: 10_000, burst: 10_000, scope: 'route', accuracy: 'fast' });
    const limits = compileRateLimits(tenant, route);
    const who = identity(tenant.id, route.id);
    const first = limiter.checkNow(limits, who);
    expect(first).toBeInstanceOf(Promise); // no lease yet: one store call takes it
    expect((await first).outcome).toBe('allowed');
    expect(limits.descriptors[0]!.leaseSize).toBeGreaterThan(10);
    const leasedAt = Date.now();
    const decisions = Array.from({ length: 10 }, () => limiter.checkNow(limits, who));
    // The lease lives FAST_MODE_LEASE_MS; only a machine that stalled longer than that refills it.
    if (Date.now() - leasedAt < FAST_MODE_LEASE_MS) {
      for (const decision of decisions) {
        expect(decision).not.toBeInstanceOf(Promise);
        expect((decision as { outcome: string }).outcome).toBe('allowed');
      }
      expect(store.calls).toBe(1);
    }
  });

  it('answers without limits at once, and exact limits through the store', async () => {
    const limiter = createRateLimiter({
      store: new MemoryLimitStore(),
      registry: createMetricsRegistry('sync2', { defaultMetrics: false }),
      logger,
    });
    const none = compileRateLimits(tenantWith(null), routeWith(null));
    expect(limiter.checkNow(none, identity('t', 'r'))).toMatchObject({ outcome: 'allowed' });
    const tenant = tenantWith(null);
    const route = routeWith({ requests_per_second: 100, scope: 'route', accuracy: 'exact' });
    const exact = limiter.checkNow(compileRateLimits(tenant, route), identity(tenant.id, route.id));
    expect(exact).toBeInstanceOf(Promise);
    expect((await exact).outcome).toBe('allowed');
  });
});

describe('fast-mode leases kept by a replica', () => {
  it('regression: keeps at most maxLocalKeys leases, however many callers a scoped limit refuses', async () => {
    // A refused lease is remembered until Redis's retry-after (here up to 2 days): a client rotating its
    // IPv6 /64 (or a tenant's OIDC provider minting subjects) used to add one lease per caller for good.
    const store = countingStore();
    const limiter = createRateLimiter({
      store,
      registry: createMetricsRegistry('leases', { defaultMetrics: false }),
      logger,
      maxLocalKeys: 100,
    });
    const tenant = tenantWith(null);
    const route = routeWith({
      requests_per_second: 0.001,
      algorithm: 'sliding_window',
      window_seconds: 86_400,
      limit: 1,
      scope: 'user',
      accuracy: 'fast',
    });
    const limits = compileRateLimits(tenant, route);
    const caller = (n: number) => identity(tenant.id, route.id, { userId: `oidc:idp:user-${n}` });
    for (let n = 0; n < 1_000; n++) {
      expect((await limiter.check(limits, caller(n))).outcome).toBe('allowed');
      expect((await limiter.check(limits, caller(n))).outcome).toBe('limited');
    }
    // The first caller's refusal was dropped with the oldest leases: Redis is asked (and refuses) again.
    store.calls = 0;
    expect((await limiter.check(limits, caller(0))).outcome).toBe('limited');
    expect(store.calls).toBe(1);
  });

  it("keeps another tenant's leases, however many callers one tenant's limit sees", async () => {
    const store = countingStore();
    const limiter = createRateLimiter({
      store,
      registry: createMetricsRegistry('fair-leases', { defaultMetrics: false }),
      logger,
      maxLocalKeys: 100,
    });
    const policy = {
      requests_per_second: 0.001,
      algorithm: 'sliding_window',
      window_seconds: 86_400,
      limit: 1,
      scope: 'user',
      accuracy: 'fast',
    } as const;
    const [quiet, churning] = [tenantWith(null), tenantWith(null)];
    const quietRoute = routeWith(policy);
    const churningRoute = routeWith(policy);
    const quietLimits = compileRateLimits(quiet, quietRoute);
    const churningLimits = compileRateLimits(churning, churningRoute);
    const quietCaller = identity(quiet.id, quietRoute.id, { userId: 'user_1' });
    expect((await limiter.check(quietLimits, quietCaller)).outcome).toBe('allowed');
    expect((await limiter.check(quietLimits, quietCaller)).outcome).toBe('limited');
    for (let n = 0; n < 1_000; n++) {
      const caller = identity(churning.id, churningRoute.id, { userId: `oidc:idp:user-${n}` });
      await limiter.check(churningLimits, caller);
    }
    // The quiet tenant's refusal is still known to the replica: decided without asking the store.
    store.calls = 0;
    expect((await limiter.check(quietLimits, quietCaller)).outcome).toBe('limited');
    expect(store.calls).toBe(0);
  });
});
