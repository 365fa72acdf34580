import { randomUUID } from 'node:crypto';
import { encodePurgeMessage, purgeChannel } from '@vantageedge/shared/cache-purge/purge-protocol';
import { createRedisClient, whenReady } from '@vantageedge/shared/redis/client';
import {
  createTestRedisCluster,
  killRedisNode,
  pauseRedisNode,
  restoreRedisCluster,
  TEST_CLUSTER,
} from '@vantageedge/shared/testing/cluster';
import { uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { L1Cache } from './l1-cache.js';
import { RedisCacheStore } from './redis-cache-store.js';
import { subscriptionOnlyGenerations } from './testing/subscription-only-generations.js';
import { testCacheEntry } from './testing/test-cache-entry.js';

const redis = await createTestRedisCluster('purge-gap');
const name = `purge-gap-${uniqueSuffix()}`;
const tenantId = randomUUID();
const cleanups: Array<() => Promise<void> | void> = [];

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await redis.cleanup();
}, 240_000);

/** One connection per node: each node is asked about its own clients. */
function nodeConnection(address: string): Redis {
  const [host, port] = address.split(':');
  const connection = new Redis({ host, port: Number(port), lazyConnect: true, retryStrategy: () => null });
  connection.on('error', () => {});
  return connection;
}

/** The node holding the replica's purge subscription (ioredis names it after the client), if any. */
async function subscriptionNode(): Promise<string | undefined> {
  for (const address of TEST_CLUSTER.redisNodes) {
    const connection = nodeConnection(address);
    try {
      const clients = String(await connection.call('CLIENT', 'LIST', 'TYPE', 'pubsub'));
      if (clients.includes(`name=ioredis-cluster(subscriber):${name}`)) return address;
    } catch {
      // A node down answers nothing.
    } finally {
      connection.disconnect();
    }
  }
  return undefined;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An entry of the tenant in the replica's L1, as a fill leaves it. */
function cacheInL1(l1: L1Cache, path: string): { key: string; pathIndexKey: string } {
  const base = `c:{${tenantId}}:0:${randomUUID()}:0:${path}`;
  const keys = { key: `${base}:v`, pathIndexKey: `${base}:idx` };
  l1.set(keys.key, testCacheEntry({ freshMs: 600_000 }), keys.pathIndexKey);
  return keys;
}

/** What a replica that served an unsafe method on the path tells every other replica. */
function pathPurge(pathIndexKey: string): string {
  return encodePurgeMessage({ kind: 'path', pathIndexKey });
}

describe('the purge subscription of a replica whose cache is on a Redis Cluster', () => {
  it('a purge published while the node holding the subscription hangs and then crashes still empties the L1', async () => {
    const client = createRedisClient({
      clusterNodes: TEST_CLUSTER.redisNodes,
      commandTimeoutMs: 1_000,
      connectTimeoutMs: 2_000,
      name,
    });
    client.on('error', () => {});
    cleanups.push(() => client.disconnect());
    await whenReady(client, 20_000);
    const store = new RedisCacheStore(client, { keyPrefix: redis.prefix });
    cleanups.push(() => store.close());
    const l1 = new L1Cache(1_000_000);
    const generations = subscriptionOnlyGenerations(store, l1);
    cleanups.push(() => generations.stopRefreshing());
    await generations.prepareTenant(tenantId);

    const publisher = redis.client;
    const channel = purgeChannel(redis.prefix);
    /** Publishes a path purge until the replica's L1 no longer holds the entry (false: it never did). */
    const purgedByMessage = async (keys: { key: string; pathIndexKey: string }): Promise<boolean> => {
      for (let i = 0; i < 200 && l1.get(keys.key) !== undefined; i++) {
        await publisher.publish(channel, pathPurge(keys.pathIndexKey));
        await pause(50);
      }
      return l1.get(keys.key) === undefined;
    };
    expect(await purgedByMessage(cacheInL1(l1, 'before'))).toBe(true);

    const held = cacheInL1(l1, 'held');
    let victim: string | undefined;
    for (let i = 0; i < 100 && victim === undefined; i++) {
      victim = await subscriptionNode();
      if (victim === undefined) await pause(100);
    }
    if (victim === undefined) throw new Error('the subscription is on no node');
    const stuck = victim;
    cleanups.push(() => restoreRedisCluster());
    // The node hangs: the message reaches it over the cluster bus, never the replica.
    await pauseRedisNode(stuck);
    cleanups.push(() => killRedisNode(stuck).catch(() => {}));
    const healthy = nodeConnection(TEST_CLUSTER.redisNodes.find((address) => address !== stuck)!);
    try {
      await healthy.publish(channel, pathPurge(held.pathIndexKey));
    } finally {
      healthy.disconnect();
    }
    // Then it crashes: the replica subscribes again on another node.
    await killRedisNode(stuck);
    let moved: string | undefined;
    for (let i = 0; i < 200 && (moved === undefined || moved === stuck); i++) {
      moved = await subscriptionNode();
      if (moved === undefined || moved === stuck) await pause(100);
    }
    expect(moved).toBeDefined();
    expect(moved).not.toBe(stuck);
    // The purge sent during the gap was lost: the replica drops the copies it may concern.
    for (let i = 0; i < 100 && l1.get(held.key) !== undefined; i++) await pause(100);
    expect(l1.get(held.key)).toBeUndefined();
    // And purges sent after it reach it again.
    expect(await purgedByMessage(cacheInL1(l1, 'after'))).toBe(true);
  }, 180_000);
});
