import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { admitAheadInRedis, describeLimitStoreContract } from './limit-store.contract.js';
import { REFUND_LIMITS_LUA } from './lua.js';
import { RedisLimitStore } from './redis-limit-store.js';
import { withinOneAlignedWindow } from './test-fixtures.js';

const redis = new Redis(TEST_INFRA.redisUrl);
// The gateway's own client setting: commands of one event-loop turn leave as one pipeline.
const pipelined = new Redis(TEST_INFRA.redisUrl, { enableAutoPipelining: true });
const prefix = `test:rl-store:${uniqueSuffix()}`;
let counter = 0;

afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
  pipelined.disconnect();
});

describeLimitStoreContract('redis', () => {
  const store = new RedisLimitStore(redis);
  const test = `${prefix}:${++counter}:{tenant}`;
  return {
    store,
    key: (name) => `${test}:${name}`,
    admitAhead: async (key, spec, windowsAhead, current) => {
      await admitAheadInRedis(redis, key, spec, windowsAhead, current);
    },
  };
});

describe('RedisLimitStore after the clock stepped back', () => {
  it('charges a newer stored window in place: its index is kept, its count grows (the repro: 10 consumes at the limit admit none)', async () => {
    const store = new RedisLimitStore(redis);
    const spec = {
      algorithm: 'sliding_window',
      capacity: 10,
      ratePerMs: 0,
      windowMs: 60_000,
      ttlMs: 120_000,
    } as const;
    const full = `${prefix}:ahead-full:{tenant}`;
    const fullWindow = await admitAheadInRedis(redis, full, spec, 1, 10);
    let admitted = 0;
    for (let i = 0; i < 10; i++)
      admitted += (await store.consume([{ key: full, spec, cost: 1, minCost: 1 }]))[0]!.granted;
    expect(admitted).toBe(0);
    expect(await redis.hmget(full, 'w', 'c', 'p')).toEqual([String(fullWindow), '10', '0']);

    const part = `${prefix}:ahead-part:{tenant}`;
    const partWindow = await admitAheadInRedis(redis, part, spec, 1, 4);
    expect((await store.consume([{ key: part, spec, cost: 1, minCost: 1 }]))[0]!.granted).toBe(1);
    expect(await redis.hmget(part, 'w', 'c', 'p')).toEqual([String(partWindow), '5', '0']);
  });
});

describe('RedisLimitStore on an auto-pipelined client', () => {
  const spec = {
    algorithm: 'token_bucket',
    capacity: 10,
    ratePerMs: 0.00001,
    windowMs: 0,
    ttlMs: 60_000,
  } as const;

  it('charges concurrent calls that share one pipeline exactly, one script run each', async () => {
    const store = new RedisLimitStore(pipelined);
    const key = `${prefix}:concurrent:{tenant}`;
    const outcomes = await Promise.all(
      Array.from({ length: 25 }, () => store.consume([{ key, spec, cost: 1, minCost: 1 }])),
    );
    const granted = outcomes.filter(([outcome]) => outcome!.granted === 1).length;
    expect(granted).toBe(10);
    expect(outcomes.map(([outcome]) => outcome!.remaining).sort((a, b) => a - b)[0]).toBe(0);
  });
});

describe('RedisLimitStore key lifetime', () => {
  it('regression: keeps a token bucket only until it is full again, not for a whole refill after one request', async () => {
    // A 30-day refill (burst 10,000,000) on `scope: user`: every caller seen once held its key for 30
    // days, though one request's token is back within a second; a tenant minting subjects grew Redis.
    const store = new RedisLimitStore(redis);
    const spec = {
      algorithm: 'token_bucket',
      capacity: 10_000_000,
      ratePerMs: 10_000_000 / (30 * 86_400_000),
      windowMs: 0,
      ttlMs: 30 * 86_400_000,
    } as const;
    const key = `${prefix}:lifetime:{tenant}`;
    expect((await store.consume([{ key, spec, cost: 1, minCost: 1 }]))[0]!.granted).toBe(1);
    // One token's refill (≈ 0.26 s) plus the second every key is kept beyond it.
    expect(await redis.pttl(key)).toBeLessThanOrEqual(2_000);
    expect(await redis.pttl(key)).toBeGreaterThan(0);
  });
});

describe('REFUND_LIMITS_LUA', () => {
  it("gives a sliding window's charge back from the previous window once the next one has begun", async () => {
    const store = new RedisLimitStore(redis);
    const windowMs = 1_000;
    const spec = {
      algorithm: 'sliding_window',
      capacity: 3,
      ratePerMs: 0,
      windowMs,
      ttlMs: 2 * windowMs,
    } as const;
    const key = `${prefix}:refund:{tenant}`;
    const one = { key, spec, cost: 1, minCost: 1 };
    const granted = async () => (await store.consume([one]))[0]!.granted;
    await withinOneAlignedWindow(windowMs, 300);
    const charged = Math.floor(Date.now() / windowMs);
    expect([await granted(), await granted()]).toEqual([1, 1]);
    await new Promise((resolve) => setTimeout(resolve, (charged + 1) * windowMs - Date.now() + 5));
    // Early in the next window: one more fits beside the previous window's two, then none.
    expect([await granted(), await granted()]).toEqual([1, 0]);

    await redis.eval(REFUND_LIMITS_LUA, 1, key, 'sw', windowMs, 3, 2, charged);
    expect([await granted(), await granted(), await granted()]).toEqual([1, 1, 0]);
  });

  it('creates no key for a charge whose key is gone (a missing key reads as unused)', async () => {
    const key = `${prefix}:refund-gone:{tenant}`;
    await redis.eval(REFUND_LIMITS_LUA, 2, key, `${key}:sw`, 'tb', 0.001, 5, 1, 0, 'sw', 1_000, 5, 1, 7);
    expect(await redis.exists(key, `${key}:sw`)).toBe(0);
  });
});
