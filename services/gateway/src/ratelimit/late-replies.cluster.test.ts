import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import { createTestRedisCluster, masterOf, proxiedClusterNodes } from '@vantageedge/shared/testing/cluster';
import type { TcpProxy } from '@vantageedge/shared/testing/tcp-proxy';
import { afterAll, describe, expect, it } from 'vitest';
import type { LimitOutcome, LimitRequest } from './limit-store.js';
import { RedisLimitStore } from './redis-limit-store.js';

/**
 * On a Redis Cluster, a charge whose answer comes after the command timeout is heard, and what its
 * caller did not use is given back: the bucket holds what it held before. Every node is reached through
 * a TCP proxy; the one of the charge's master delays every answer.
 */
const cluster = await createTestRedisCluster('rl-late-replies');
const clients: RedisClient[] = [];
const proxies: TcpProxy[] = [];
const COMMAND_TIMEOUT_MS = 100;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

afterAll(async () => {
  for (const client of clients) client.disconnect();
  await Promise.all(proxies.map((proxy) => proxy.close()));
  await cluster.cleanup();
});

describe.each([true, false])('late charge answers on a Cluster (auto-pipelining: %s)', (autoPipelining) => {
  it('hears each one and gives its charge back', async () => {
    const { natMap, seeds, proxyOf: byNode } = await proxiedClusterNodes(proxies);
    const redis = createRedisClient({
      clusterNodes: seeds,
      natMap,
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
      connectTimeoutMs: 2_000,
      autoPipelining,
      name: `rl-late-replies-${autoPipelining}`,
    });
    redis.on('error', () => undefined);
    clients.push(redis);
    await whenReady(redis, 20_000);
    const store = new RedisLimitStore(redis);
    const request: LimitRequest = {
      key: cluster.key(`${autoPipelining}:{tenant-late}`),
      spec: { algorithm: 'token_bucket', capacity: 10, ratePerMs: 0.000_001, windowMs: 0, ttlMs: 60_000 },
      cost: 1,
      minCost: 1,
    };
    expect((await store.consume([request]))[0]!.granted).toBe(1);
    const proxy = byNode.get(await masterOf(cluster.client, request.key))!;
    proxy.delayAnswers(4 * COMMAND_TIMEOUT_MS);
    const heard: LimitOutcome[] = [];
    const calls = Array.from({ length: 5 }, () =>
      store.consume([request], (late) => {
        heard.push(...late);
        return late.map((outcome) => outcome.granted);
      }),
    );
    for (const call of calls) await expect(call).rejects.toThrow('Command timed out');
    proxy.delayAnswers(0);
    for (let i = 0; i < 100 && heard.length < 5; i++) await sleep(25);
    expect(heard.map((outcome) => outcome.granted)).toEqual([1, 1, 1, 1, 1]);
    // The give-backs ran: the bucket holds 9 tokens again (one charge answered in time).
    let tokens = 0;
    for (let i = 0; i < 100 && tokens < 9; i++) {
      tokens = Math.floor(Number((await cluster.client.hmget(request.key, 't'))[0]));
      if (tokens < 9) await sleep(25);
    }
    expect(tokens).toBe(9);
  });
});
