import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import { createTestRedisCluster, masterOf, TEST_CLUSTER } from '@vantageedge/shared/testing/cluster';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import type { LimitRequest } from './limit-store.js';
import { RedisLimitStore } from './redis-limit-store.js';

/**
 * A Cluster master forgets its scripts (SCRIPT FLUSH, a restart): the next charge's EVALSHA there is
 * refused with NOSCRIPT and ioredis sends it again as EVAL. Each request is still decided by Redis and
 * charged once. Only the master of this file's keys is flushed.
 */
const cluster = await createTestRedisCluster('rl-flushed-scripts');
const clients: RedisClient[] = [];

afterAll(async () => {
  for (const client of clients) client.disconnect();
  await cluster.cleanup();
});

describe.each([true, false])(
  'charges after a master flushed its scripts (auto-pipelining: %s)',
  (autoPipelining) => {
    it('decides every concurrent call by Redis and charges each once', async () => {
      const redis = createRedisClient({
        clusterNodes: TEST_CLUSTER.redisNodes,
        commandTimeoutMs: 1_000,
        connectTimeoutMs: 2_000,
        autoPipelining,
        name: 'flushed-scripts',
      });
      redis.on('error', () => undefined);
      clients.push(redis);
      await whenReady(redis, 20_000);
      const store = new RedisLimitStore(redis);
      const request: LimitRequest = {
        key: cluster.key(`${autoPipelining}:{tenant-flushed}`),
        spec: { algorithm: 'token_bucket', capacity: 100, ratePerMs: 0.000_001, windowMs: 0, ttlMs: 60_000 },
        cost: 1,
        minCost: 1,
      };
      expect((await store.consume([request]))[0]!.granted).toBe(1);
      const [host, port] = (await masterOf(cluster.client, request.key)).split(':');
      const master = new Redis(Number(port), host!);
      await master.script('FLUSH');
      master.disconnect();
      const outcomes = await Promise.all(Array.from({ length: 10 }, () => store.consume([request])));
      expect(outcomes.map((o) => o[0]!.granted)).toEqual(Array(10).fill(1));
      const [tokens] = await cluster.client.hmget(request.key, 't');
      expect(Math.floor(Number(tokens))).toBe(100 - 11);
    });
  },
);
