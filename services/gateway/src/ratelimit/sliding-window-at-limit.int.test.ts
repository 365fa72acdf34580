import { TEST_INFRA } from '@vantageedge/shared/testing/infrastructure';
import { createTestRedis } from '@vantageedge/shared/testing/redis';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import type { LimitSpec } from './limit-store.js';
import { RedisLimitStore } from './redis-limit-store.js';

const redis = createTestRedis('sw-at-limit');
const clients = Array.from({ length: 6 }, () => new Redis(TEST_INFRA.redisUrl));

afterAll(async () => {
  for (const client of clients) client.disconnect();
  await redis.cleanup();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sleeps to 2 ms after the next boundary of aligned windows of `windowMs` (Redis's clock is ours). */
async function nextWindow(windowMs: number): Promise<number> {
  // One reading of the clock: two may straddle a millisecond and give a start 1 ms off the boundary.
  const now = Date.now();
  const start = now - (now % windowMs) + windowMs;
  while (Date.now() < start + 2) await sleep(start + 2 - Date.now());
  return start;
}

/**
 * Regression test, kept from the sliding-window log (whose members, built from Lua's default number
 * format, collided under concurrency: the log under-counted and admitted more than its limit) for the
 * counter that replaced it. At the limit, while the previous window's admissions leave the estimate,
 * 48 concurrent callers on 6 connections may only get what the decaying estimate frees — by the time
 * a fraction f of the window has passed, floor(limit × f) — and every admission is counted exactly
 * once (no update lost between concurrent script runs, none of the refused counted).
 */
describe('sliding window at its limit under concurrency (real Redis)', () => {
  it('admits only what the previous window leaves as its weight decays, each admission counted once', async () => {
    const limit = 500;
    const windowMs = 2_000;
    const spec: LimitSpec = {
      algorithm: 'sliding_window',
      capacity: limit,
      ratePerMs: 0,
      windowMs,
      ttlMs: 2 * windowMs,
    };
    const key = redis.key('{tenant}:sw2');
    const stores = clients.map((client) => new RedisLimitStore(client));

    // One aligned window full of earlier admissions ...
    const previousStart = await nextWindow(windowMs);
    const [filled] = await stores[0]!.consume([{ key, spec, cost: limit, minCost: limit }]);
    expect(filled!.granted).toBe(limit);
    expect(Date.now(), 'filled within its window').toBeLessThan(previousStart + windowMs);

    // ... then, through 90% of the next, callers as fast as they can.
    const start = await nextWindow(windowMs);
    expect(start).toBe(previousStart + windowMs);
    let admitted = 0;
    const until = start + 0.9 * windowMs;
    await Promise.all(
      stores.flatMap((store) =>
        Array.from({ length: 8 }, async () => {
          while (Date.now() < until) {
            const [outcome] = await store.consume([{ key, spec, cost: 1, minCost: 1 }]);
            admitted += outcome!.granted;
          }
        }),
      ),
    );
    const end = Date.now() + 1;
    const f = Math.min(1, (end - start) / windowMs);
    console.log(`${admitted} admitted in ${((end - start) / windowMs).toFixed(3)} of the window`);
    // The m-th admission needs limit × (1 − f) + m ≤ limit: f ≥ m / limit.
    expect(admitted).toBeLessThanOrEqual(Math.floor(limit * f));
    // The callers kept up with what the estimate freed (250 per second here).
    expect(admitted).toBeGreaterThanOrEqual(limit / 2);
    // Counted exactly: this window's count is what was admitted, the previous window's is the limit.
    if (end < start + windowMs) {
      expect(await redis.client.hmget(key, 'c', 'p')).toEqual([String(admitted), String(limit)]);
    }
  }, 30_000);
});
