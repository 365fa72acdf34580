import { randomUUID } from 'node:crypto';
import { type CachePurgeMessage, encodePurgeMessage } from '@vantageedge/shared/cache-purge/purge-protocol';
import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import {
  type PrivateRedisServer,
  startPrivateRedisServer,
} from '@vantageedge/shared/redis/private-redis-server';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { startTcpProxy, type TcpProxy } from '@vantageedge/shared/testing/tcp-proxy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { L1Cache } from './l1-cache.js';
import { RedisCacheStore } from './redis-cache-store.js';
import { subscriptionOnlyGenerations } from './testing/subscription-only-generations.js';
import { testCacheEntry } from './testing/test-cache-entry.js';

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Regression test: the purge subscription was sent once, with the client's command timeout (50 ms by
 * default). On a busy Redis the SUBSCRIBE took longer, was rejected, and the replica never received a
 * purge again: it kept serving purged responses from its in-process cache. Redis is made slow here
 * (CLIENT PAUSE on a private server) while the store subscribes.
 */
describe('purge subscription on a slow Redis', () => {
  let server: PrivateRedisServer;
  let client: RedisClient;
  let admin: RedisClient;

  beforeAll(async () => {
    server = await startPrivateRedisServer();
    client = createRedisClient({ url: server.url, commandTimeoutMs: 50, name: 'replica' });
    admin = createRedisClient({ url: server.url, commandTimeoutMs: 2_000, name: 'admin' });
    await Promise.all([whenReady(client), whenReady(admin)]);
  });
  afterAll(async () => {
    client?.disconnect();
    admin?.disconnect();
    await server?.stop();
  });

  it('still receives purges when its first SUBSCRIBE outlasts the command timeout', async () => {
    const store = new RedisCacheStore(client, { keyPrefix: 'slow:' });
    const received: CachePurgeMessage[] = [];
    await admin.call('CLIENT', 'PAUSE', '300', 'ALL');
    store.subscribe({ onPurge: (message) => received.push(message), onResync: () => {} });
    const probe = 'c:{t}:0:r:0:p:idx';
    for (let i = 0; i < 100 && received.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      await admin.publish(
        'slow:vantageedge:cache:purge',
        JSON.stringify({ kind: 'path', pathIndexKey: probe }),
      );
    }
    expect(received[0]).toEqual({ kind: 'path', pathIndexKey: probe });
    await store.close();
  });
});

/**
 * Regression test: the purge subscription's connection sends nothing once subscribed, so when it went
 * dead without a word (a NAT or load balancer that forgot the flow, a partition) nothing ever noticed:
 * the replica received no purge again — path and tag purges never, their responses served from its L1
 * until their TTL — while Redis answered every new connection. A TCP proxy stands between the replica
 * and the shared Redis and passes nothing more of the connections open at that moment.
 */
describe('purge subscription whose connection goes silent while Redis is up', () => {
  const prefix = `test:purge-silent:${uniqueSuffix()}:`;
  let proxy: TcpProxy;
  let client: RedisClient;
  let admin: RedisClient;

  beforeAll(async () => {
    proxy = await startTcpProxy(TEST_INFRA.redisUrl);
    client = createRedisClient({
      url: proxy.urlFor(TEST_INFRA.redisUrl),
      commandTimeoutMs: 50,
      name: 'replica',
    });
    admin = createRedisClient({ url: TEST_INFRA.redisUrl, commandTimeoutMs: 2_000, name: 'admin' });
    await Promise.all([whenReady(client), whenReady(admin)]);
  });
  afterAll(async () => {
    client?.disconnect();
    admin?.disconnect();
    await proxy?.close();
  });

  it('subscribes again on a new connection and receives purges again', async () => {
    const store = new RedisCacheStore(client, { keyPrefix: prefix, subscriberPingIntervalMs: 200 });
    const received: CachePurgeMessage[] = [];
    let resyncs = 0;
    store.subscribe({ onPurge: (message) => received.push(message), onResync: () => resyncs++ });
    const publishUntilReceived = async (pathIndexKey: string): Promise<boolean> => {
      for (let i = 0; i < 300; i++) {
        await admin.publish(
          `${prefix}vantageedge:cache:purge`,
          JSON.stringify({ kind: 'path', pathIndexKey }),
        );
        await new Promise((resolve) => setTimeout(resolve, 50));
        if (received.some((message) => message.kind === 'path' && message.pathIndexKey === pathIndexKey))
          return true;
      }
      return false;
    };
    expect(await publishUntilReceived('c:{t}:0:r:0:p:before')).toBe(true);
    const resyncsBefore = resyncs;

    proxy.blackholeOpenConnections();
    expect(await publishUntilReceived('c:{t}:0:r:0:p:after')).toBe(true);
    // Generations read while no message could arrive are read again.
    expect(resyncs).toBeGreaterThan(resyncsBefore);
    await store.close();
  });
});

/**
 * Regression test: after Redis restarted, a replica took the reconnect as a cue to read its tenants'
 * generations again, nothing more. A path purge (a replica served an unsafe method) or a hard tag purge
 * leaves no trace but its message: one published between the restart and this replica's resubscription
 * never reached it, and it served the purged responses from its L1 until their TTL.
 */
describe('purge subscription across a Redis restart', () => {
  let server: PrivateRedisServer;
  let client: RedisClient;

  beforeAll(async () => {
    server = await startPrivateRedisServer();
    client = createRedisClient({ url: server.url, commandTimeoutMs: 1_000, name: 'replica' });
    client.on('error', () => {});
    await whenReady(client);
  });
  afterAll(async () => {
    client?.disconnect();
    await server?.stop();
  });

  it('drops its L1 copies once subscribed again: a purge sent before that was not received', async () => {
    const prefix = 'restart:';
    const channel = `${prefix}vantageedge:cache:purge`;
    const store = new RedisCacheStore(client, { keyPrefix: prefix });
    const l1 = new L1Cache(1_000_000);
    const generations = subscriptionOnlyGenerations(store, l1);
    const tenantId = randomUUID();
    await generations.prepareTenant(tenantId);
    const subscribers = async (admin: RedisClient) =>
      Number(((await admin.call('PUBSUB', 'NUMSUB', channel)) as [string, number])[1]);

    let missed = false;
    let held = '';
    for (let attempt = 0; attempt < 3 && !missed; attempt++) {
      const observer = createRedisClient({ url: server.url, commandTimeoutMs: 2_000, name: 'observer' });
      await whenReady(observer);
      for (let i = 0; i < 100 && (await subscribers(observer)) === 0; i++) await pause(50);
      observer.disconnect();
      held = `c:{${tenantId}}:0:${randomUUID()}:0:p`;
      l1.set(`${held}:v`, testCacheEntry({ freshMs: 600_000 }), `${held}:idx`);

      await server.stop();
      // Down long enough for the replica's reconnect attempts to back off.
      await pause(1_500);
      await server.start();
      // Another replica, connected first, sends a purge before this one has subscribed again.
      const admin = createRedisClient({ url: server.url, commandTimeoutMs: 2_000, name: 'admin' });
      await whenReady(admin);
      const receivers = await admin.publish(
        channel,
        encodePurgeMessage({ kind: 'path', pathIndexKey: `${held}:idx` }),
      );
      for (let i = 0; i < 100 && (await subscribers(admin)) === 0; i++) await pause(50);
      admin.disconnect();
      missed = receivers === 0;
    }
    expect(missed).toBe(true);
    for (let i = 0; i < 50 && l1.get(`${held}:v`) !== undefined; i++) await pause(100);
    expect(l1.get(`${held}:v`)).toBeUndefined();
    generations.stopRefreshing();
    await store.close();
  }, 60_000);
});
