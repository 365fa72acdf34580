import { afterAll, describe, expect, it } from 'vitest';
import { duplicateForSubscribe } from '../redis/client.js';
import { createTestRedisCluster } from '../testing/cluster.js';
import { generationKey, parsePurgeMessage, purgeChannel } from './purge-protocol.js';
import { createRedisCachePurger } from './redis-cache-purger.js';

const redis = await createTestRedisCluster('cache-purger');
const subscriber = duplicateForSubscribe(redis.client);

afterAll(async () => {
  subscriber.disconnect();
  await redis.cleanup();
});

describe('createRedisCachePurger on a Redis Cluster', () => {
  it('bumps generations on the tenant slot and publishes them to a subscriber connected to any node', async () => {
    const received: unknown[] = [];
    subscriber.on('message', (_channel: string, text: string) => received.push(parsePurgeMessage(text)));
    await subscriber.subscribe(purgeChannel(redis.prefix));
    const purger = createRedisCachePurger(redis.client, redis.prefix);
    // Tenants on different slots (so, with three masters, most likely different nodes).
    for (const tenant of ['tenant-a', 'tenant-b', 'tenant-c']) await purger.purgeRoute(tenant, 'route-1');
    await purger.purgeTenant('tenant-a');
    expect(await redis.client.hgetall(generationKey(redis.prefix, 'tenant-a'))).toEqual({
      'route-1': '1',
      _tenant: '1',
    });
    for (let i = 0; i < 100 && received.length < 4; i++) await new Promise((r) => setTimeout(r, 20));
    // Published through whichever node the client picks, messages may arrive in another order across
    // nodes; receivers keep the highest generation they see (response-cache.ts), so order does not matter.
    const byText = (list: unknown[]) => list.map((m) => JSON.stringify(m)).sort();
    expect(byText(received)).toEqual(
      byText([
        { kind: 'route', tenantId: 'tenant-a', routeId: 'route-1', generation: 1 },
        { kind: 'route', tenantId: 'tenant-b', routeId: 'route-1', generation: 1 },
        { kind: 'route', tenantId: 'tenant-c', routeId: 'route-1', generation: 1 },
        { kind: 'tenant', tenantId: 'tenant-a', generation: 1 },
      ]),
    );
  });
});
