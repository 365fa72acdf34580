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

async function serverMicros(): Promise<number> {
  const [seconds, micros] = await redis.client.time();
  return Number(seconds) * 1_000_000 + Number(micros);
}

/**
 * Regression test: the window log's members were built from the Redis time formatted by Lua's default
 * number format (100 µs resolution) and the current count, so two admissions in the same 100 µs after
 * an expiry got the same member; the second overwrote the first, the window under-counted and admitted
 * more than its limit.
 */
describe('sliding window at its limit under concurrency (real Redis)', () => {
  it('never admits more than the limit in one window while earlier admissions leave it', async () => {
    const limit = 500;
    const windowMs = 60_000;
    const spec: LimitSpec = {
      algorithm: 'sliding_window',
      capacity: limit,
      ratePerMs: 0,
      windowMs,
      ttlMs: windowMs,
    };
    const key = redis.key('{tenant}:sw');
    // The window is full of earlier admissions that leave it one every 20 µs, starting 100 ms from now.
    const now = await serverMicros();
    const firstExpiry = now - windowMs * 1000 + 100_000;
    const earlier: string[] = [];
    for (let i = 0; i < limit; i++) earlier.push(String(firstExpiry + i * 20), `earlier-${i}`);
    await redis.client.zadd(key, ...earlier);

    const stores = clients.map((client) => new RedisLimitStore(client));
    let admitted = 0;
    const until = Date.now() + 100 + (limit * 20) / 1000 + 150;
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
    // Fill whatever the concurrent phase left, one request at a time, until the limiter refuses.
    for (;;) {
      const [outcome] = await stores[0]!.consume([{ key, spec, cost: 1, minCost: 1 }]);
      if (outcome!.granted === 0) break;
      admitted += outcome!.granted;
    }

    const stillInWindow = (await redis.client.zrange(key, '0', '-1')).filter((m) => m.startsWith('earlier-'));
    expect(stillInWindow).toEqual([]);
    // Every earlier admission has left the window and no admission of this test has: exactly `limit`.
    expect(admitted).toBe(limit);
  }, 30_000);
});
