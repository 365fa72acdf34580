import type { RateLimitPolicy } from '@vantageedge/shared/domain/gateway-config';
import { compileRateLimits } from '@vantageedge/shared/gateway-policies/compile-rate-limits';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { startTcpProxy, type TcpProxy } from '@vantageedge/shared/testing/tcp-proxy';
import { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
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
    let registry: Registry;
    // Another replica's, answered in time all along.
    let direct: RedisClient;
    let elsewhere: RateLimiter;

    beforeAll(async () => {
      proxy = await startTcpProxy(TEST_INFRA.redisUrl);
      redis = createRedisClient({
        url: proxy.urlFor(TEST_INFRA.redisUrl),
        commandTimeoutMs: COMMAND_TIMEOUT_MS,
        // Answers up to 2 s late still come on the connection: it is not replaced as unanswering first.
        connectTimeoutMs: 4_000,
        autoPipelining,
        name: `late-charges-${autoPipelining}`,
      });
      await whenReady(redis);
      registry = createMetricsRegistry(`late-charges-${autoPipelining}`, { defaultMetrics: false });
      limiter = createRateLimiter({
        store: new RedisLimitStore(redis),
        registry,
        logger: createLogger({ service: 'test', level: 'error' }),
        keyPrefix: prefix,
        // Every check of the slow spell reaches Redis (an open circuit would skip some): each is a charge.
        circuitFailures: 1_000,
        halfOpenAfterMs: 50,
        fallbackShare: 2,
      });
      // Its checks must be Redis's decisions: the default command timeout (50 ms) is a busy machine's
      // scheduling delay, and a check answered 503 for it would be counted as the bucket's refusal.
      direct = createRedisClient({
        url: TEST_INFRA.redisUrl,
        autoPipelining,
        commandTimeoutMs: 2_000,
        name: `late-charges-direct`,
      });
      await whenReady(direct);
      elsewhere = createRateLimiter({
        store: new RedisLimitStore(direct),
        registry: createMetricsRegistry(`late-charges-direct-${autoPipelining}`, { defaultMetrics: false }),
        logger: createLogger({ service: 'test', level: 'error' }),
        keyPrefix: prefix,
      });
    });

    beforeEach(() => proxy.delayAnswers(0));

    afterAll(async () => {
      redis?.disconnect();
      direct?.disconnect();
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
        /** The same caller's check through the other replica. */
        checkElsewhere: () => elsewhere.check(limits, who),
      };
    };

    const lateAnswers = async () => {
      const metric = await registry
        .getSingleMetric('vantageedge_gateway_ratelimit_late_answers_total')
        ?.get();
      return metric?.values[0]?.value ?? 0;
    };

    /**
     * Redis answers in time again: waits until every late answer has arrived, then until one check is
     * Redis's, then until no late answer has come for a while: a check of this loop that a busy machine
     * held past the command timeout is given back when its answer comes, which must be before counting.
     */
    const afterTheSpell = async (check: () => Promise<RateLimitDecision>) => {
      proxy.delayAnswers(0);
      await sleep(ANSWER_DELAY_MS + 200);
      for (let attempt = 0; attempt < 100; attempt++) {
        const decision = await check();
        if (decision.outcome !== 'store_unavailable' && !decision.degraded) {
          await untilNoLateAnswerFor(ANSWER_DELAY_MS);
          return;
        }
        await sleep(25);
      }
      throw new Error('Redis never decided a check again');
    };

    const untilNoLateAnswerFor = async (quietMs: number) => {
      for (let seen = await lateAnswers(), quietSince = Date.now(); Date.now() - quietSince < quietMs; ) {
        await sleep(25);
        const now = await lateAnswers();
        if (now !== seen) [seen, quietSince] = [now, Date.now()];
      }
    };

    /**
     * Checks until one is refused by Redis: how many Redis admitted (the checks before it). The tests
     * count through the other replica's limiter, whose Redis answers at once: the slow one's checks may
     * outlast its short command timeout on a busy machine.
     */
    const admittedUntilRefused = async (check: () => Promise<RateLimitDecision>, most: number) => {
      let admitted = 0;
      for (let attempt = 0; attempt <= most; attempt++) {
        const decision = await check();
        if (decision.outcome === 'limited') return admitted;
        if (decision.outcome !== 'allowed')
          throw new Error(
            `a check was not decided by Redis (${decision.outcome}) after ${admitted} admitted`,
          );
        admitted++;
      }
      return admitted;
    };

    it('gives back to a fail-closed token bucket the charges of the requests it answered 503', async () => {
      const burst = 6;
      // No refill within the test: the bucket's tokens are exactly the requests charged.
      const { outcomes, check, checkElsewhere } = caller({
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
      expect(decidedFirst + (await admittedUntilRefused(checkElsewhere, burst))).toBe(burst - 1);
    });

    it('gives back to a fail-closed sliding window the charges of the requests it answered 503', async () => {
      const limit = 6;
      await withinOneAlignedWindow(60_000, 10_000);
      const { outcomes, check, checkElsewhere } = caller({
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
      expect(decidedFirst + (await admittedUntilRefused(checkElsewhere, limit))).toBe(limit - 1);
    });

    it('gives a token bucket back no more than its charges still cost it once it refilled and was drained meanwhile', async () => {
      const burst = 10;
      // 10 per second: the bucket refills its burst in a second, well before the late answers arrive.
      const { check, checkElsewhere } = caller({
        requests_per_second: 10,
        burst,
        scope: 'route',
        on_store_failure: 'closed',
      });
      const lateBefore = await lateAnswers();
      proxy.delayAnswers(1_600);
      const spell = Promise.all(Array.from({ length: burst }, () => check()));
      expect((await spell).map((decision) => decision.outcome)).toEqual(
        Array(burst).fill('store_unavailable'),
      );
      // Refilled; another replica admits the whole burst, as it would have without the spell's charges.
      await sleep(1_200);
      expect(await admittedUntilRefused(checkElsewhere, 2 * burst)).toBeGreaterThanOrEqual(burst);
      // The late answers still come when due; what is sent after them (their give-backs) is answered at once.
      proxy.delayAnswers(0);
      for (let attempt = 0; attempt < 200 && (await lateAnswers()) < lateBefore + burst; attempt++)
        await sleep(5);
      expect(await lateAnswers()).toBe(lateBefore + burst);
      // Their give-backs, sent through the proxy at once, have reached Redis.
      await sleep(50);
      // What refilled since the other replica's requests (a few), not a burst given back on top of it.
      expect(await admittedUntilRefused(checkElsewhere, 2 * burst)).toBeLessThanOrEqual(burst / 2 + 2);
    });

    it('keeps the charges of the requests a fail-open fallback admitted and gives back those it refused', async () => {
      const burst = 6;
      const { outcomes, check, checkElsewhere } = caller({
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
      expect(servedDuringSpell + decidedFirst + (await admittedUntilRefused(checkElsewhere, burst))).toBe(
        burst,
      );
    });
  },
);
