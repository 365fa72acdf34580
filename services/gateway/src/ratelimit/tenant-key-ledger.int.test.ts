import { randomUUID } from 'node:crypto';
import {
  type CompiledRateLimits,
  compileRateLimits,
} from '@vantageedge/shared/gateway-policies/compile-rate-limits';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createRateLimiter, type RateLimiter } from './rate-limiter.js';
import { RedisLimitStore } from './redis-limit-store.js';
import { routeWith, tenantWith } from './test-fixtures.js';

/**
 * Regression tests: a tenant whose own OIDC provider mints any `sub` (or whose clients rotate API keys or
 * addresses) made one Redis key per fresh identity and limit, each kept up to two days (a 1-day sliding
 * window): 20,000 requests made 40,000 keys (287 bytes each) in 0.7 s, and at `maxmemory` the shared
 * Redis (volatile-lru) evicted other tenants' counters (their limits reset) and cached responses.
 */
const redis = new Redis(TEST_INFRA.redisUrl);
const prefix = `test:rl-ledger:${uniqueSuffix()}:`;

afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

/** The ledger's epochs where a test waits for one to end (LEDGER_EPOCH_MS, 10 s, elsewhere). */
const SHORT_LEDGER_EPOCH_MS = 1_000;

function limiterWith(
  tenantMaxKeys: number,
  {
    registry = createMetricsRegistry('rl_ledger', { defaultMetrics: false }),
    ledgerEpochMs,
  }: { registry?: ReturnType<typeof createMetricsRegistry>; ledgerEpochMs?: number } = {},
): RateLimiter {
  return createRateLimiter({
    store: new RedisLimitStore(redis, { tenantMaxKeys, ledgerEpochMs }),
    registry,
    logger: createLogger({ service: 'test', level: 'error' }),
    keyPrefix: prefix,
  });
}

const check = (limiter: RateLimiter, limits: CompiledRateLimits, userId: string) =>
  limiter.check(limits, { tenantId: limits.tenantId, routeId: limits.routeId, userId, clientIp: '10.0.0.1' });

const keysOf = (tenantId: string) => redis.keys(`${prefix}rl:{${tenantId}}:*`);

describe('the caller keys one tenant keeps in the shared Redis', () => {
  it('stay within the tenant bound whatever identities its clients present (1-day windows)', async () => {
    const limiter = limiterWith(50);
    const daily = {
      algorithm: 'sliding_window',
      requests_per_second: 100,
      window_seconds: 86_400,
      scope: 'user',
    } as const;
    const limits = compileRateLimits(tenantWith(daily), routeWith(daily));
    for (let i = 0; i < 500; i++) {
      expect((await check(limiter, limits, `oidc:idp:${randomUUID()}`)).outcome).toBe('allowed');
    }
    // 50 callers' keys (each on both limits: 100) plus one overflow key per limit and the ledger.
    expect((await keysOf(limits.tenantId)).length).toBeLessThanOrEqual(100 + 2 + 1);
  });

  it('count callers past the bound on one overflow counter per limit; callers with keys keep theirs', async () => {
    const limiter = limiterWith(2);
    const limits = compileRateLimits(
      tenantWith(null),
      routeWith({ requests_per_second: 0.001, burst: 1, scope: 'user' }),
    );
    expect((await check(limiter, limits, 'oidc:a')).outcome).toBe('allowed');
    expect((await check(limiter, limits, 'oidc:b')).outcome).toBe('allowed');
    expect((await check(limiter, limits, 'oidc:c')).outcome).toBe('allowed');
    expect((await check(limiter, limits, 'oidc:d')).outcome).toBe('limited');
    expect((await check(limiter, limits, 'oidc:a')).outcome).toBe('limited');
    expect((await keysOf(limits.tenantId)).sort()).toEqual(
      [
        `${prefix}rl:{${limits.tenantId}}:keys`,
        `${prefix}rl:{${limits.tenantId}}:r:${limits.routeId}:tb:user:oidc:a`,
        `${prefix}rl:{${limits.tenantId}}:r:${limits.routeId}:tb:user:oidc:b`,
        `${prefix}rl:{${limits.tenantId}}:r:${limits.routeId}:tb:user:~overflow`,
      ].sort(),
    );
    // Another tenant's callers are not counted against this tenant's bound.
    const other = compileRateLimits(
      tenantWith(null),
      routeWith({ requests_per_second: 0.001, burst: 1, scope: 'user' }),
    );
    expect((await check(limiter, other, 'oidc:c')).outcome).toBe('allowed');
    expect((await check(limiter, other, 'oidc:d')).outcome).toBe('allowed');
  });

  it('count each call sent to the overflow counter in a metric of its tenant', async () => {
    const registry = createMetricsRegistry('rl_ledger', { defaultMetrics: false });
    const limiter = limiterWith(2, { registry });
    const limits = compileRateLimits(
      tenantWith(null),
      routeWith({ requests_per_second: 1000, burst: 1000, scope: 'user' }),
    );
    const overflowOf = async (tenantId: string) => {
      const metric = await registry.getSingleMetric('vantageedge_gateway_ratelimit_overflow_total')?.get();
      return metric?.values.find((v) => v.labels['tenant'] === tenantId)?.value ?? 0;
    };
    for (const user of ['a', 'b', 'a']) await check(limiter, limits, `oidc:${user}`);
    expect(await overflowOf(limits.tenantId)).toBe(0);
    for (const user of ['c', 'd', 'c']) await check(limiter, limits, `oidc:${user}`);
    // Callers a and b keep their own keys; c and d (three calls) share the overflow counter.
    await check(limiter, limits, 'oidc:a');
    expect(await overflowOf(limits.tenantId)).toBe(3);
  });

  it('gives callers their own keys again once the counted keys have expired', async () => {
    const limiter = limiterWith(1, { ledgerEpochMs: SHORT_LEDGER_EPOCH_MS });
    // A key lives until its bucket is full again: about a second after one request.
    const limits = compileRateLimits(
      tenantWith(null),
      routeWith({ requests_per_second: 1, burst: 5, scope: 'ip' }),
    );
    const from = (clientIp: string) =>
      limiter.check(limits, { tenantId: limits.tenantId, routeId: limits.routeId, clientIp });
    await from('10.0.0.1');
    await from('10.0.0.2');
    const own = `${prefix}rl:{${limits.tenantId}}:r:${limits.routeId}:tb:ip:10.0.0.3`;
    await from('10.0.0.3');
    expect(await redis.exists(own)).toBe(0);
    // 10.0.0.1's key (kept until its token is back, plus a second: 2 s) has expired, and the epoch it
    // expired in has ended: it is counted no more.
    await new Promise((resolve) => setTimeout(resolve, 2_000 + SHORT_LEDGER_EPOCH_MS + 200));
    await from('10.0.0.3');
    expect(await redis.exists(own)).toBe(1);
  });
});
