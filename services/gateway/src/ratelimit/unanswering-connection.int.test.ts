import { compileRateLimits } from '@vantageedge/shared/gateway-policies/compile-rate-limits';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { startTcpProxy, type TcpProxy } from '@vantageedge/shared/testing/tcp-proxy';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRateLimiter, type RateLimitDecision, type RateLimiter } from './rate-limiter.js';
import { RedisLimitStore } from './redis-limit-store.js';
import { routeWith, tenantWith } from './test-fixtures.js';

/**
 * Regression test: a replica's Redis connection that went dead without a word (a NAT or load balancer
 * that forgot the flow, a partition: no reset, no reply) was kept for ever. Every command on it timed
 * out, so a fail-closed limit answered 503 `rate_limit_unavailable` (and fail-open limits counted per
 * replica, the cache bypassed) for as long as the replica ran, although Redis answered every new
 * connection. When the connection was replaced, the charges that had timed out on it were sent again
 * on the new one, so requests already refused used up the caller's allowance.
 *
 * A TCP proxy stands between the replica and the shared Redis: it keeps the bytes of the connection
 * open at that moment (holdOpenConnections) and passes those of any new one.
 */
const prefix = `test:rl-unanswering:${uniqueSuffix()}:`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a rate limiter whose Redis connection stops answering while Redis is up', () => {
  let proxy: TcpProxy;
  let redis: RedisClient;
  let limiter: RateLimiter;

  beforeAll(async () => {
    proxy = await startTcpProxy(TEST_INFRA.redisUrl);
    redis = createRedisClient({
      url: proxy.urlFor(TEST_INFRA.redisUrl),
      // Long enough that a busy machine never times out a command on the new, answering connection
      // (Redis would have decided it unseen): the count of admitted requests below would be off.
      commandTimeoutMs: 250,
      name: 'unanswering',
    });
    await whenReady(redis);
    limiter = createRateLimiter({
      store: new RedisLimitStore(redis),
      registry: createMetricsRegistry('unanswering-connection', { defaultMetrics: false }),
      logger: createLogger({ service: 'test', level: 'error' }),
      keyPrefix: prefix,
      halfOpenAfterMs: 100,
    });
  });

  afterAll(async () => {
    redis?.disconnect();
    await proxy?.close();
    const cleaner = new Redis(TEST_INFRA.redisUrl);
    const keys = await cleaner.keys(`${prefix}*`);
    if (keys.length > 0) await cleaner.del(...keys);
    cleaner.disconnect();
  });

  it('serves a fail-closed limit from Redis again over a new connection, charging only the requests Redis decided', async () => {
    const burst = 6;
    const tenant = tenantWith(null);
    // No refill within the test: the bucket's tokens are exactly the requests Redis admitted.
    const route = routeWith({
      requests_per_second: 0.001,
      burst,
      scope: 'route',
      on_store_failure: 'closed',
    });
    const limits = compileRateLimits(tenant, route);
    const who = { tenantId: tenant.id, routeId: route.id, clientIp: '192.0.2.40' };
    const outcomes: RateLimitDecision['outcome'][] = [];
    const check = async () => {
      const decision = await limiter.check(limits, who);
      outcomes.push(decision.outcome);
      return decision;
    };

    expect((await check()).outcome).toBe('allowed');
    proxy.holdOpenConnections();

    // Checks keep coming; the first ones meet the silent connection (each charge a command that is sent
    // and never answered), until the replica is answered again.
    let answered = false;
    for (let attempt = 0; attempt < 200 && !answered; attempt++) {
      const decision = await check();
      answered = decision.outcome !== 'store_unavailable' && !decision.degraded;
      if (!answered) await sleep(25);
    }
    expect(outcomes).toContain('store_unavailable');
    expect(proxy.heldBytes()).toBeGreaterThan(0);
    expect(answered).toBe(true);

    // What the bucket has left is the burst less the checks Redis admitted: none of the refused ones.
    for (let attempt = 0; attempt < burst + 1 && outcomes.at(-1) !== 'limited'; attempt++) await check();
    expect(outcomes.at(-1)).toBe('limited');
    expect(outcomes.filter((outcome) => outcome === 'allowed')).toHaveLength(burst);
  });
});
