import type { RateLimitPolicy } from '@vantageedge/shared/domain/gateway-config';
import {
  type CompiledRateLimits,
  compileRateLimits,
} from '@vantageedge/shared/gateway-policies/compile-rate-limits';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import {
  type PrivateRedisServer,
  startPrivateRedisServer,
} from '@vantageedge/shared/redis/private-redis-server';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRateLimiter, type RateLimiter, type RateLimitIdentity } from './rate-limiter.js';
import { RedisLimitStore } from './redis-limit-store.js';
import { routeWith, tenantWith } from './test-fixtures.js';

/**
 * One tenant's rate limit must not take the shared Redis, or the replica's one store circuit, from the
 * other tenants. The policies here are stored ones, as events recorded before the control plane bounded
 * them still carry: a fast-mode sliding window of 100,000,000 requests per second (when a sliding window
 * was a log, its lease was 1,000,000 ZADDs in one script run: Redis blocked for seconds; a lease is now
 * one counter increment, and stays capped), a token bucket refilled at 1e-14 rps
 * (its TTL, ~1e21 ms, made PEXPIRE fail the script on every request). And a command the store refuses
 * is that tenant's problem: it does not open the circuit every tenant's limits go through, while a store
 * that is really down still does.
 *
 * Runs on a private redis-server (started and stopped here), never the shared one: before the lease cap
 * the first test blocks its Redis for seconds.
 */
const logger = createLogger({ service: 'test', level: 'error' });
let server: PrivateRedisServer;
let redis: RedisClient;
let probe: Redis;
let limiter: RateLimiter;

beforeAll(async () => {
  server = await startPrivateRedisServer();
  // A generous command timeout: the test measures what another client waits for, not this one.
  redis = createRedisClient({ url: server.url, commandTimeoutMs: 30_000, name: 'oversized-policies' });
  probe = new Redis(server.url, { maxRetriesPerRequest: 0, lazyConnect: true });
  await Promise.all([whenReady(redis), probe.connect()]);
  limiter = createRateLimiter({
    store: new RedisLimitStore(redis),
    registry: createMetricsRegistry('oversized-policies', { defaultMetrics: false }),
    logger,
    halfOpenAfterMs: 60_000,
  });
});
afterAll(async () => {
  probe?.disconnect();
  redis?.disconnect();
  await server?.stop();
});

/** From now on the private server's slow log records every command with how long it ran. */
async function recordEveryCommandDuration(): Promise<void> {
  await probe.config('SET', 'slowlog-log-slower-than', '0');
  await probe.config('SET', 'slowlog-max-len', '1000');
  await probe.call('SLOWLOG', 'RESET');
}

/** The longest run of a command the slow log recorded, in milliseconds. */
async function longestCommandMs(): Promise<number> {
  const entries = (await probe.call('SLOWLOG', 'GET', '-1')) as Array<[number, number, number, string[]]>;
  return Math.max(0, ...entries.map(([, , durationMicros]) => durationMicros / 1_000));
}

function limitsFor(policy: Partial<RateLimitPolicy>): { limits: CompiledRateLimits; who: RateLimitIdentity } {
  const tenant = tenantWith(null);
  const route = routeWith(policy);
  return {
    limits: compileRateLimits(tenant, route),
    who: { tenantId: tenant.id, routeId: route.id, clientIp: '203.0.113.9' },
  };
}

describe('stored rate limits beyond the bounds', () => {
  it('a fast-mode sliding window of 100,000,000 per second leases at most 1,000 units: Redis stays responsive', async () => {
    const { limits, who } = limitsFor({
      algorithm: 'sliding_window',
      requests_per_second: 1,
      window_seconds: 1,
      limit: 100_000_000,
      accuracy: 'fast',
    });
    await recordEveryCommandDuration();
    const decision = limiter.check(limits, who);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const pingStarted = performance.now();
    await probe.ping(); // another tenant's Redis call, sent while the lease is taken
    const pingMs = performance.now() - pingStarted;
    const outcome = await decision;
    const longestMs = await longestCommandMs();
    const [key] = await probe.keys('rl:*');
    // The window's counter: how many units the lease took.
    const leased = Number(await probe.hget(key!, 'c'));
    console.log(
      `lease: ${leased} units; Redis's longest command ran ${longestMs.toFixed(1)} ms; a concurrent PING waited ${pingMs.toFixed(1)} ms`,
    );
    expect(outcome).toMatchObject({ outcome: 'allowed', degraded: false });
    expect(leased).toBeGreaterThan(0);
    expect(leased).toBeLessThanOrEqual(1_000);
    // w, c, p and the window's length l.
    expect(await probe.hlen(key!)).toBeLessThanOrEqual(4);
    // How long Redis itself was blocked, as it measured: what this process waited for its PING also
    // counts the time a loaded machine kept it from running.
    expect(longestMs).toBeLessThan(250);
    await probe.del(key!);
  });

  it.each([1e-14, 5e-324])(
    'a token bucket refilled at %s rps with a burst of 10,000,000 is served by Redis, with a TTL it accepts',
    async (rps) => {
      const { limits, who } = limitsFor({ requests_per_second: rps, burst: 10_000_000 });
      for (let i = 0; i < 5; i++) {
        const decision = await limiter.check(limits, who);
        expect(decision).toMatchObject({ outcome: 'allowed', degraded: false });
        expect(decision.headers).toContainEqual([
          'RateLimit',
          `"route";r=${9_999_999 - i};t=${1_000 * (i + 1)}`,
        ]);
      }
      const [key] = await probe.keys('rl:*');
      const ttl = await probe.pttl(key!);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(30 * 24 * 3600 * 1000);
      expect(limiter.storeDegraded).toBe(false);
      await probe.del(key!);
    },
  );
});

describe('the store circuit shared by every tenant of a replica', () => {
  it('a command the store refuses falls back for that tenant only; other tenants keep their shared limits', async () => {
    // Tenant A: a limit whose every Redis call is refused (a TTL Redis rejects), however it got there.
    // (A sliding window: a token bucket's key is kept only until it is full again, within any TTL.)
    const a = limitsFor({ algorithm: 'sliding_window', requests_per_second: 10, window_seconds: 1 });
    const descriptor = a.limits.descriptors[0]!;
    const refused: CompiledRateLimits = {
      ...a.limits,
      descriptors: [{ ...descriptor, spec: { ...descriptor.spec, ttlMs: 1e21 } }],
      counters: [],
    };
    // Tenant B: fail closed, so an open circuit would answer it 503.
    const b = limitsFor({ requests_per_second: 100, on_store_failure: 'closed' });
    expect(await limiter.check(b.limits, b.who)).toMatchObject({ outcome: 'allowed', degraded: false });

    for (let i = 0; i < 5; i++) {
      // A falls back to the local limiter (its on_store_failure: open).
      expect(await limiter.check(refused, a.who)).toMatchObject({ outcome: 'allowed', degraded: true });
    }
    expect(limiter.storeDegraded).toBe(false);
    expect(await limiter.check(b.limits, b.who)).toMatchObject({ outcome: 'allowed', degraded: false });
    const failClosed: CompiledRateLimits = {
      ...refused,
      descriptors: [{ ...refused.descriptors[0]!, failClosed: true }],
      counters: [],
    };
    expect(await limiter.check(failClosed, a.who)).toMatchObject({ outcome: 'store_unavailable' });
    expect(await limiter.check(b.limits, b.who)).toMatchObject({ outcome: 'allowed', degraded: false });
  });

  it('a store that is down still opens the circuit (fail-closed limits answer 503)', async () => {
    const b = limitsFor({ requests_per_second: 100, on_store_failure: 'closed' });
    await server.stop();
    for (let i = 0; i < 3; i++)
      expect(await limiter.check(b.limits, b.who)).toMatchObject({ outcome: 'store_unavailable' });
    expect(limiter.storeDegraded).toBe(true);
  });
});
