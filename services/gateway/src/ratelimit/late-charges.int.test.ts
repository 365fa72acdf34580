import type { RateLimitPolicy } from '@vantageedge/shared/domain/gateway-config';
import { compileRateLimits } from '@vantageedge/shared/gateway-policies/compile-rate-limits';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { startTcpProxy, type TcpProxy } from '@vantageedge/shared/testing/tcp-proxy';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createRateLimiter, type RateLimitDecision, type RateLimiter } from './rate-limiter.js';
import { RedisLimitStore } from './redis-limit-store.js';
import { routeWith, tenantWith, withinOneAlignedWindow } from './test-fixtures.js';

/**
 * A Redis that answers later than the command timeout (overloaded, a congested link) still runs the
 * charges the replica stopped waiting for. A TCP proxy delays every answer of the shared Redis: the
 * charge script runs at once, its answer arrives after the replica decided without it. What Redis
 * keeps of those charges must be what the replica admitted: a request answered 503 (fail closed) or
 * refused by the per-replica fallback (fail open) must not be taken from the caller's limit.
 */
const prefix = `test:rl-late-charges:${uniqueSuffix()}:`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const COMMAND_TIMEOUT_MS = 100;
const ANSWER_DELAY_MS = 4 * COMMAND_TIMEOUT_MS;

// Auto-pipelined, as the gateway's connection by default (GATEWAY_REDIS_AUTO_PIPELINING), and not.
describe.each([true, false])(
  'a rate limiter whose Redis answers later than the command timeout (auto-pipelining: %s)',
  (autoPipelining) => {
    let proxy: TcpProxy;
    let redis: RedisClient;
    let limiter: RateLimiter;

    beforeAll(async () => {
      proxy = await startTcpProxy(TEST_INFRA.redisUrl);
      redis = createRedisClient({
        url: proxy.urlFor(TEST_INFRA.redisUrl),
        commandTimeoutMs: COMMAND_TIMEOUT_MS,
        autoPipelining,
        name: `late-charges-${autoPipelining}`,
      });
      await whenReady(redis);
      limiter = createRateLimiter({
        store: new RedisLimitStore(redis),
        registry: createMetricsRegistry(`late-charges-${autoPipelining}`, { defaultMetrics: false }),
        logger: createLogger({ service: 'test', level: 'error' }),
        keyPrefix: prefix,
        // Every check of the slow spell reaches Redis (an open circuit would skip some): each is a charge.
        circuitFailures: 1_000,
        halfOpenAfterMs: 50,
        fallbackShare: 2,
      });
    });

    beforeEach(() => proxy.delayAnswers(0));

    afterAll(async () => {
      redis?.disconnect();
      await proxy?.close();
      const cleaner = new Redis(TEST_INFRA.redisUrl);
      const keys = await cleaner.keys(`${prefix}*`);
      if (keys.length > 0) await cleaner.del(...keys);
      cleaner.disconnect();
    });

    /** Checks of one caller on a fresh route with `policy`, recording each outcome. */
    const caller = (policy: Partial<RateLimitPolicy>) => {
      const tenant = tenantWith(null);
      const route = routeWith(policy);
      const limits = compileRateLimits(tenant, route);
      const who = { tenantId: tenant.id, routeId: route.id, clientIp: '192.0.2.41' };
      const outcomes: Array<RateLimitDecision['outcome'] | 'degraded-allowed'> = [];
      return {
        outcomes,
        async check() {
          const decision = await limiter.check(limits, who);
          outcomes.push(
            decision.outcome === 'allowed' && decision.degraded ? 'degraded-allowed' : decision.outcome,
          );
          return decision;
        },
      };
    };

    /** Redis answers in time again: waits until every late answer has arrived, then until one check is Redis's. */
    const afterTheSpell = async (check: () => Promise<RateLimitDecision>) => {
      proxy.delayAnswers(0);
      await sleep(ANSWER_DELAY_MS + 200);
      for (let attempt = 0; attempt < 100; attempt++) {
        const decision = await check();
        if (decision.outcome !== 'store_unavailable' && !decision.degraded) return;
        await sleep(25);
      }
      throw new Error('Redis never decided a check again');
    };

    /** Checks until one is refused by Redis: how many Redis admitted (the checks before it). */
    const admittedUntilRefused = async (check: () => Promise<RateLimitDecision>, most: number) => {
      let admitted = 0;
      for (let attempt = 0; attempt <= most; attempt++) {
        const decision = await check();
        if (decision.outcome !== 'allowed') return admitted;
        admitted++;
      }
      return admitted;
    };

    it('gives back to a fail-closed token bucket the charges of the requests it answered 503', async () => {
      const burst = 6;
      // No refill within the test: the bucket's tokens are exactly the requests charged.
      const { outcomes, check } = caller({
        requests_per_second: 0.001,
        burst,
        scope: 'route',
        on_store_failure: 'closed',
      });
      expect((await check()).outcome).toBe('allowed');

      proxy.delayAnswers(ANSWER_DELAY_MS);
      for (let i = 0; i < 20; i++) await check();
      expect(outcomes.slice(1)).toEqual(Array(20).fill('store_unavailable'));

      await afterTheSpell(check);
      const decidedFirst = outcomes.at(-1) === 'allowed' ? 1 : 0;
      // The bucket holds the burst less the one request Redis admitted before the spell.
      expect(decidedFirst + (await admittedUntilRefused(check, burst))).toBe(burst - 1);
    });

    it('gives back to a fail-closed sliding window the charges of the requests it answered 503', async () => {
      const limit = 6;
      await withinOneAlignedWindow(60_000, 10_000);
      const { outcomes, check } = caller({
        algorithm: 'sliding_window',
        requests_per_second: 0.1,
        limit,
        window_seconds: 60,
        scope: 'route',
        on_store_failure: 'closed',
      });
      expect((await check()).outcome).toBe('allowed');

      proxy.delayAnswers(ANSWER_DELAY_MS);
      for (let i = 0; i < 20; i++) await check();
      expect(outcomes.slice(1)).toEqual(Array(20).fill('store_unavailable'));

      await afterTheSpell(check);
      const decidedFirst = outcomes.at(-1) === 'allowed' ? 1 : 0;
      expect(decidedFirst + (await admittedUntilRefused(check, limit))).toBe(limit - 1);
    });

    it('keeps the charges of the requests a fail-open fallback admitted and gives back those it refused', async () => {
      const burst = 6;
      const { outcomes, check } = caller({
        requests_per_second: 0.001,
        burst,
        scope: 'route',
        on_store_failure: 'open',
      });

      // The per-replica fallback admits burst / fallbackShare (3) and refuses the rest; Redis, answering
      // late, charged the first 6 and refused the others.
      proxy.delayAnswers(ANSWER_DELAY_MS);
      for (let i = 0; i < 10; i++) await check();
      const servedDuringSpell = outcomes.filter((outcome) => outcome === 'degraded-allowed').length;
      expect(servedDuringSpell).toBe(burst / 2);
      expect(outcomes.filter((outcome) => outcome === 'limited')).toHaveLength(10 - burst / 2);

      await afterTheSpell(check);
      const decidedFirst = outcomes.at(-1) === 'allowed' ? 1 : 0;
      // Across the spell the caller is served its burst: those served by the fallback count, no other.
      expect(servedDuringSpell + decidedFirst + (await admittedUntilRefused(check, burst))).toBe(burst);
    });
  },
);
