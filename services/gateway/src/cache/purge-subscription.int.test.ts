import type { CachePurgeMessage } from '@vantageedge/shared/cache-purge/purge-protocol';
import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import {
  type PrivateRedisServer,
  startPrivateRedisServer,
} from '@vantageedge/shared/redis/private-redis-server';
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
