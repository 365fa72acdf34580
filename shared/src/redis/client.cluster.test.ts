import { afterAll, describe, expect, it } from 'vitest';
import { createClusterClient, createTestRedisCluster, masterOf } from '../testing/cluster.js';
import { duplicateForSubscribe, type RedisClient } from './client.js';

const redis = await createTestRedisCluster('client');
const extra: RedisClient[] = [];

afterAll(async () => {
  for (const client of extra) client.disconnect();
  await redis.cleanup();
});

describe('the Redis client on a Redis Cluster', () => {
  // Regression test: the subscribe copy of a Cluster client inherited `enableOfflineQueue: false`, so its
  // SUBSCRIBE (sent at once, before the copy had discovered the cluster) failed and no cache purge
  // message ever reached a gateway running against a Redis Cluster.
  it('a subscribe connection made from it receives messages published right after it was made', async () => {
    const client = await createClusterClient('client-test');
    extra.push(client);
    const subscriber = duplicateForSubscribe(client);
    extra.push(subscriber);
    subscriber.on('error', () => {});
    const received: string[] = [];
    subscriber.on('message', (_channel: string, text: string) => received.push(text));
    const channel = redis.key('channel');
    await subscriber.subscribe(channel);
    await client.publish(channel, 'purge');
    for (let i = 0; i < 100 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(received).toEqual(['purge']);
  });

  it('routes keys of different hash tags to different masters and runs a script on one slot', async () => {
    const { client } = redis;
    const masters = new Set<string>();
    for (let tenant = 0; tenant < 12; tenant++) {
      const key = redis.key(`{tenant-${tenant}}:k`);
      await client.set(key, String(tenant));
      expect(await client.get(key)).toBe(String(tenant));
      masters.add(await masterOf(client, key));
    }
    expect(masters.size).toBe(3);
    // Two keys with one hash tag: a multi-key script is accepted; without a shared tag it is refused.
    const same = [redis.key('{t}:a'), redis.key('{t}:b')];
    expect(await client.eval("return redis.call('MSET', KEYS[1], 1, KEYS[2], 2)", 2, ...same)).toBe('OK');
    await expect(
      client.eval("return redis.call('MSET', KEYS[1], 1, KEYS[2], 2)", 2, redis.key('x:a'), redis.key('y:b')),
    ).rejects.toThrow(/CROSSSLOT|same slot/);
  });
});
