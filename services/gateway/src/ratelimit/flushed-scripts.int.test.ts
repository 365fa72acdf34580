import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import {
  type PrivateRedisServer,
  startPrivateRedisServer,
} from '@vantageedge/shared/redis/private-redis-server';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LimitRequest } from './limit-store.js';
import { RedisLimitStore } from './redis-limit-store.js';

/**
 * Redis forgets its scripts (SCRIPT FLUSH, a restart): the next charge's EVALSHA is refused with
 * NOSCRIPT and ioredis sends it again as EVAL. Each request is still decided by Redis and charged once.
 */
describe.each([true, false])(
  'charges after the script cache was flushed (auto-pipelining: %s)',
  (autoPipelining) => {
    let server: PrivateRedisServer;
    let redis: RedisClient;
    let admin: Redis;

    beforeAll(async () => {
      server = await startPrivateRedisServer();
      redis = createRedisClient({
        url: server.url,
        commandTimeoutMs: 1_000,
        autoPipelining,
        name: 'flushed-scripts',
      });
      admin = new Redis(server.url);
      await whenReady(redis);
    });

    afterAll(async () => {
      redis?.disconnect();
      admin?.disconnect();
      await server?.stop();
    });

    const charge = (key: string): LimitRequest => ({
      key: `${key}:{tenant}`,
      spec: { algorithm: 'token_bucket', capacity: 100, ratePerMs: 0.000_001, windowMs: 0, ttlMs: 60_000 },
      cost: 1,
      minCost: 1,
    });

    it('decides every concurrent call by Redis and charges each once', async () => {
      const store = new RedisLimitStore(redis);
      const request = charge('flushed');
      expect((await store.consume([request]))[0]!.granted).toBe(1);
      await admin.script('FLUSH');
      const outcomes = await Promise.all(Array.from({ length: 10 }, () => store.consume([request])));
      expect(outcomes.map((o) => o[0]!.granted)).toEqual(Array(10).fill(1));
      expect(Math.min(...outcomes.map((o) => o[0]!.remaining))).toBe(100 - 11);
      const [tokens] = await admin.hmget(request.key, 't');
      expect(Math.floor(Number(tokens))).toBe(100 - 11);
    });
  },
);
