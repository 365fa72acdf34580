import type { CachePurgeMessage } from '@vantageedge/shared/cache-purge/purge-protocol';
import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import {
  type PrivateRedisServer,
  startPrivateRedisServer,
} from '@vantageedge/shared/redis/private-redis-server';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { startTcpProxy, type TcpProxy } from '@vantageedge/shared/testing/tcp-proxy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisCacheStore } from './redis-cache-store.js';

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
