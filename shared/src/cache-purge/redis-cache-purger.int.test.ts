import { afterAll, describe, expect, it } from 'vitest';
import { createTestRedis } from '../testing/redis.js';
import {
  CACHE_SOFT_PURGED_TAGS_MAX,
  generationKey,
  parseGenerations,
  parsePurgeMessage,
  purgeChannel,
  SoftPurgedTagsFull,
} from './purge-protocol.js';
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

describe('soft purges by tag in the shared Redis', () => {
  it("keeps at most CACHE_SOFT_PURGED_TAGS_MAX of a tenant's soft-purged tags (the hash has no TTL)", async () => {
    const purger = createRedisCachePurger(redis.client, redis.prefix);
    const hostile = async (tenantId: string, purges: number) => {
      for (let i = 0; i < purges; i++) {
        const tags = Array.from({ length: 64 }, (_, j) => `t${i}-${j}-${'x'.repeat(200)}`);
        await purger.purgeTags(tenantId, tags, { soft: true }).catch(() => {});
      }
    };
    // A tenant admin soft-purging fresh tags: 64 per command, every one kept forever before the bound.
    await hostile('tenant-soft', Math.ceil(CACHE_SOFT_PURGED_TAGS_MAX / 64) + 10);
    const fields = await redis.client.hkeys(generationKey(redis.prefix, 'tenant-soft'));
    expect(fields.filter((field) => field.startsWith('tag:')).length).toBeLessThanOrEqual(
      CACHE_SOFT_PURGED_TAGS_MAX,
    );
  });

  it('refuses a soft purge past the bound, takes tags already held, and frees them on hard purges', async () => {
    const purger = createRedisCachePurger(redis.client, redis.prefix);
    const key = generationKey(redis.prefix, 'tenant-full');
    const softTags = async () => (await redis.client.hkeys(key)).filter((f) => f.startsWith('tag:'));
    const held = Array.from({ length: CACHE_SOFT_PURGED_TAGS_MAX }, (_, i) => `tag:h${i}`);
    await redis.client.hset(key, Object.fromEntries(held.map((field) => [field, 1])));

    await expect(purger.purgeTags('tenant-full', ['fresh'], { soft: true })).rejects.toBeInstanceOf(
      SoftPurgedTagsFull,
    );
    await purger.purgeTags('tenant-full', ['h1', 'h2'], { soft: true }); // already held: no new field
    expect((await softTags()).length).toBe(CACHE_SOFT_PURGED_TAGS_MAX);

    await purger.purgeTags('tenant-full', ['h1']); // hard: its entries are gone, so is its soft purge
    await purger.purgeTags('tenant-full', ['fresh'], { soft: true });
    expect(await redis.client.hexists(key, 'tag:h1')).toBe(0);
    expect(await redis.client.hexists(key, 'tag:fresh')).toBe(1);

    await purger.purgeRoute('tenant-full', 'route-1');
    await purger.purgeTenant('tenant-full'); // every older entry unreachable: no soft purge matters
    expect(await softTags()).toEqual([]);
    expect(await redis.client.hgetall(key)).toEqual({ 'route-1': '1', _tenant: '1' });
  });
});

describe('generations of deleted routes', () => {
  it('a forgotten route leaves no field, and its next purge goes above every generation it had', async () => {
    const purger = createRedisCachePurger(redis.client, redis.prefix);
    for (let i = 0; i < 3; i++) await purger.purgeRoute('tenant-f', 'route-old');
    await purger.purgeRoute('tenant-f', 'route-kept');
    await purger.forgetRoute('tenant-f', 'route-old');
    const key = generationKey(redis.prefix, 'tenant-f');
    expect(parseGenerations(await redis.client.hgetall(key)).routes).toEqual(new Map([['route-kept', 1]]));
    // Restored under its old id: the entries it stored at generations 0…3 stay unreachable.
    expect(await purger.purge({ kind: 'route', tenantId: 'tenant-f', routeId: 'route-old' })).toMatchObject({
      generation: 4,
    });
    // A route never purged starts from there too, so forgetting it again keeps one field at most.
    await purger.forgetRoute('tenant-f', 'route-old');
    await purger.forgetRoute('tenant-f', 'route-never-purged');
    expect(await redis.client.hlen(key)).toBe(2);
  });
});
