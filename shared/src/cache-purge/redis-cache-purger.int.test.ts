import { afterAll, describe, expect, it } from 'vitest';
import { createTestRedis } from '../testing/redis.js';
import { generationKey, parsePurgeMessage, purgeChannel } from './purge-protocol.js';
import { createRedisCachePurger } from './redis-cache-purger.js';

const redis = createTestRedis('cache-purger');
const subscriber = redis.client.duplicate();

afterAll(async () => {
  subscriber.disconnect();
  await redis.cleanup();
});

describe('createRedisCachePurger', () => {
  it('bumps the route or tenant generation in Redis and publishes it on the purge channel', async () => {
    const received: unknown[] = [];
    subscriber.on('message', (_channel: string, text: string) => received.push(parsePurgeMessage(text)));
    await subscriber.subscribe(purgeChannel(redis.prefix));
    const purger = createRedisCachePurger(redis.client, redis.prefix);

    await purger.purgeRoute('tenant-a', 'route-1');
    await purger.purgeRoute('tenant-a', 'route-1');
    await purger.purgeTenant('tenant-a');
    expect(await redis.client.hgetall(generationKey(redis.prefix, 'tenant-a'))).toEqual({
      'route-1': '2',
      _tenant: '1',
    });
    for (let i = 0; i < 50 && received.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
    expect(received).toEqual([
      { kind: 'route', tenantId: 'tenant-a', routeId: 'route-1', generation: 1 },
      { kind: 'route', tenantId: 'tenant-a', routeId: 'route-1', generation: 2 },
      { kind: 'tenant', tenantId: 'tenant-a', generation: 1 },
    ]);
  });
});
