import { compileRateLimits } from '@vantageedge/shared/gateway-policies/compile-rate-limits';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import {
  type PrivateRedisServer,
  startPrivateRedisServer,
} from '@vantageedge/shared/redis/private-redis-server';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRateLimiter, type RateLimitDecision, type RateLimiter } from './rate-limiter.js';
import { RedisLimitStore } from './redis-limit-store.js';
import { routeWith, tenantWith } from './test-fixtures.js';

/**
 * Regression (docs/benchmarks.md): fast mode answered spurious 429s under concurrency for a limit one
 * replica can never reach. Causes: (1) when a lease had expired with units left, every concurrent request
 * sent its own lease refill (50 clients → 50 × leaseSize taken per lease period), draining the shared
 * bucket; (2) a refill slower than the lease period arrived already expired (its expiry was counted from
 * before the Redis call), so its units were wasted and the next request leased again.
 */
const logger = createLogger({ service: 'test', level: 'error' });
const prefix = `test:rl-fast:${uniqueSuffix()}:`;
const clients: RedisClient[] = [];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function limiter(url: string, commandTimeoutMs: number): RateLimiter {
  const redis = createRedisClient({ url, commandTimeoutMs, name: `fast-${clients.length}` });
  clients.push(redis);
  return createRateLimiter({
    store: new RedisLimitStore(redis),
    registry: createMetricsRegistry(`fast-${clients.length}`, { defaultMetrics: false }),
    logger,
    keyPrefix: prefix,
    halfOpenAfterMs: 200,
  });
}

// A limit one replica can never reach (the bench's `full-fast` route).
const tenant = tenantWith(null);
const route = routeWith({
  requests_per_second: 1_000_000,
  burst: 10_000_000,
  scope: 'route',
  accuracy: 'fast',
});
const limits = compileRateLimits(tenant, route);
const who = { tenantId: tenant.id, routeId: route.id, clientIp: '192.0.2.77' };
const bucketKey = `${prefix}${limits.descriptors[0]!.keyPrefix}`;

const outcomes = (decisions: RateLimitDecision[]) => {
  const counts: Record<string, number> = {};
  for (const d of decisions) counts[d.outcome] = (counts[d.outcome] ?? 0) + 1;
  return counts;
};

afterAll(async () => {
  const cleaner = new Redis(TEST_INFRA.redisUrl);
  const keys = await cleaner.keys(`${prefix}*`);
  if (keys.length > 0) await cleaner.del(...keys);
  cleaner.disconnect();
  for (const client of clients) client.disconnect();
});

describe('fast mode under concurrency (shared Redis)', () => {
  it('never refuses while the shared bucket has tokens, and takes one lease per period, not one per waiting request', async () => {
    const fast = limiter(TEST_INFRA.redisUrl, 2_000);
    await whenReady(clients.at(-1)!);
    const decisions: RateLimitDecision[] = [];
    // Rounds of 50 concurrent checks, each round after the previous lease has expired (100 ms).
    for (let round = 0; round < 8; round++) {
      decisions.push(...(await Promise.all(Array.from({ length: 50 }, () => fast.check(limits, who)))));
      await sleep(130);
    }
    expect(outcomes(decisions)).toEqual({ allowed: 400 });
    // One replica leases at most one lease (leaseSize units) per round; refill adds 130,000 per round.
    const tokens = Number(await clients[0]!.hget(bucketKey, 't'));
    expect(tokens).toBeGreaterThan(10_000_000 - 8 * limits.descriptors[0]!.leaseSize - 1);
  });
});

describe('fast mode with a slow or failing Redis (private redis-server)', () => {
  let server: PrivateRedisServer;
  let admin: Redis;
  beforeAll(async () => {
    server = await startPrivateRedisServer();
    admin = new Redis(server.url);
  });
  afterAll(async () => {
    admin.disconnect();
    await server.stop();
  });

  it('a refill slower than the lease period still serves the waiting requests from the new lease', async () => {
    const fast = limiter(server.url, 2_000);
    await whenReady(clients.at(-1)!);
    const decisions: RateLimitDecision[] = [];
    for (let round = 0; round < 6; round++) {
      // Redis answers nothing for 150 ms (longer than a lease lasts) while 50 requests arrive.
      await admin.call('CLIENT', 'PAUSE', '150', 'ALL');
      decisions.push(...(await Promise.all(Array.from({ length: 50 }, () => fast.check(limits, who)))));
      await sleep(20);
    }
    expect(outcomes(decisions)).toEqual({ allowed: 300 });
    const tokens = Number(await admin.hget(bucketKey, 't'));
    expect(tokens).toBeGreaterThan(10_000_000 - 6 * limits.descriptors[0]!.leaseSize - 1);
  });

  it('a refill that times out takes the store-failure path (fail open), never a refusal', async () => {
    const fast = limiter(server.url, 30);
    await whenReady(clients.at(-1)!);
    const decisions: RateLimitDecision[] = [];
    for (let round = 0; round < 4; round++) {
      await admin.call('CLIENT', 'PAUSE', '100', 'ALL');
      decisions.push(...(await Promise.all(Array.from({ length: 50 }, () => fast.check(limits, who)))));
      await sleep(120);
    }
    expect(decisions.every((d) => d.outcome === 'allowed')).toBe(true);
    expect(decisions.some((d) => d.outcome === 'allowed' && d.degraded)).toBe(true);
  });
});
