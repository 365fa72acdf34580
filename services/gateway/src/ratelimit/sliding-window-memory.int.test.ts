import { compileRateLimits, tenantLedgerKey } from '@vantageedge/shared/gateway-policies/compile-rate-limits';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createTestRedis } from '@vantageedge/shared/testing/redis';
import { afterAll, describe, expect, it } from 'vitest';
import { createRateLimiter, type RateLimitIdentity } from './rate-limiter.js';
import { RedisLimitStore } from './redis-limit-store.js';
import { routeWith, tenantWith } from './test-fixtures.js';

/**
 * Regression test (tenant isolation): a sliding window was a log, one ZSET member per admitted request
 * kept for the window, so a tenant's 1-day window with a high limit on `scope: ip` grew the shared Redis
 * with its clients' traffic (tens of GB), failing every tenant's limits and cache. A sliding window is
 * now two counters per key: its memory does not depend on the requests it admits.
 */
const redis = createTestRedis('sw-memory');
const limiter = createRateLimiter({
  store: new RedisLimitStore(redis.client),
  registry: createMetricsRegistry('sw-memory', { defaultMetrics: false }),
  logger: createLogger({ service: 'test', level: 'error' }),
  keyPrefix: redis.prefix,
});

afterAll(() => redis.cleanup());

async function keysOf(prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1_000);
    found.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  return found;
}

/** What the keys hold in Redis: bytes (MEMORY USAGE, every element sampled) and elements. */
async function footprint(keys: readonly string[]): Promise<{ bytes: number; elements: number }> {
  let bytes = 0;
  let elements = 0;
  for (const key of keys) {
    bytes += Number(await redis.client.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'));
    const type = await redis.client.type(key);
    elements += type === 'hash' ? await redis.client.hlen(key) : await redis.client.zcard(key);
  }
  return { bytes, elements };
}

function dayWindow() {
  const tenant = tenantWith(null);
  const route = routeWith({
    requests_per_second: 1,
    algorithm: 'sliding_window',
    window_seconds: 86_400,
    limit: 1_000_000,
    scope: 'ip',
  });
  const limits = compileRateLimits(tenant, route);
  const who = (clientIp: string): RateLimitIdentity => ({ tenantId: tenant.id, routeId: route.id, clientIp });
  // The limit's keys, not the tenant's key ledger (one small hash whatever its number of clients).
  const ledger = `${redis.prefix}${tenantLedgerKey(tenant.id)}`;
  const keys = async () => (await keysOf(`${redis.prefix}rl:{${tenant.id}}:`)).filter((k) => k !== ledger);
  return { limits, who, keys };
}

/** `count` checks, 50 at a time; every one must be admitted by Redis. */
async function admit(count: number, send: (i: number) => ReturnType<typeof limiter.check>): Promise<void> {
  for (let sent = 0; sent < count; sent += 50) {
    const batch = Array.from({ length: Math.min(50, count - sent) }, (_, j) => send(sent + j));
    const decisions = await Promise.all(batch);
    expect(decisions.every((d) => d.outcome === 'allowed' && !d.degraded)).toBe(true);
  }
}

describe('a sliding window in Redis takes O(1) memory per key', () => {
  it('a 1-day window of 1,000,000: the key does not grow with the requests it admits', async () => {
    const { limits, who, keys } = dayWindow();
    await admit(100, () => limiter.check(limits, who('198.51.100.7')));
    const [key] = await keys();
    const early = await footprint([key!]);
    await admit(5_000, () => limiter.check(limits, who('198.51.100.7')));
    expect(await keys()).toEqual([key]);
    const late = await footprint([key!]);
    console.log(
      `one key after 100 admissions: ${early.bytes} B, ${early.elements} elements; after 5,100: ${late.bytes} B, ${late.elements} elements`,
    );
    expect(late.elements).toBe(early.elements);
    // w, c, p, the window's length l and the ledger epoch e.
    expect(late.elements).toBeLessThanOrEqual(5);
    // The counters' digits may grow by a byte or two: nothing proportional to the 5,000 admissions.
    expect(late.bytes).toBeLessThanOrEqual(early.bytes + 16);
    expect(late.bytes).toBeLessThan(256);
    // An idle key leaves within two windows.
    const ttl = await redis.client.pttl(key!);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(2 * 86_400_000);
  });

  it('many clients of a scope-ip window: Redis holds one small key per client, whatever each sends', async () => {
    const { limits, who, keys } = dayWindow();
    const clients = 200;
    await admit(20 * clients, (i) => limiter.check(limits, who(`203.0.113.${i % clients}`)));
    const all = await keys();
    // 203.0.113.0-199: one key per address.
    expect(all).toHaveLength(clients);
    const { bytes, elements } = await footprint(all);
    console.log(`${clients} clients × 20 admissions: ${bytes} B in ${elements} elements`);
    expect(elements).toBeLessThanOrEqual(5 * clients);
    expect(bytes / clients).toBeLessThan(256);
  });
});
