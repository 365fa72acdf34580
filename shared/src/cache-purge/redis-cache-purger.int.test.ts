import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createTestRedis } from '../testing/redis.js';
import { recordCommandSizes } from '../testing/redis-command-sizes.js';
import { monitorRedis } from '../testing/redis-monitor.js';
import {
  CACHE_SOFT_PURGED_TAGS_MAX,
  generationKey,
  PURGE_FENCE_HORIZON,
  PURGE_FENCE_MAX_LISTINGS,
  PURGE_FENCE_MS,
  parseGenerations,
  parsePurgeMessage,
  purgeChannel,
  purgeFenceKey,
  SoftPurgedTagsFull,
  tagIndexKey,
  tenantBoundKeys,
  tenantKeyspace,
} from './purge-protocol.js';
import { createRedisCachePurger, deleteListed, PURGE_DELETE_BATCH } from './redis-cache-purger.js';

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
    // Published messages arrive when the shared Redis gets to them: wait for them, not for a time.
    await expect
      .poll(() => received, { timeout: 20_000 })
      .toEqual([
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
    expect(await redis.client.hgetall(key)).toEqual({ 'route-1': '1', _tenant: '1', _soft_tags: '0' });
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

describe('the work one purge command gives the shared Redis', () => {
  it('a hard purge of a tag listing thousands of entries deletes them all, in commands of at most 1,000 keys', async () => {
    const purger = createRedisCachePurger(redis.client, redis.prefix);
    // A tenant's byte bound holds 100,000s of small entries, every one listed under one tag.
    const index = tagIndexKey(redis.prefix, 'tenant-tagged', 'all');
    const entries = Array.from({ length: 5_000 }, (_, i) => `${redis.prefix}c:{tenant-tagged}:0:r:0:p:${i}`);
    await redis.client.mset(...entries.flatMap((key) => [key, 'x']));
    await redis.client.sadd(index, ...entries);

    const sizes = recordCommandSizes(redis.client);
    await purger.purgeTags('tenant-tagged', ['all']).finally(() => sizes.stop());

    expect(sizes.largest().size).toBeLessThanOrEqual(1_000);
    expect(await redis.client.exists(index, ...entries)).toBe(0);
  });
});

describe("the work forgetting a deleted tenant's entries gives the shared Redis", () => {
  it('deletes every entry of a tenant holding thousands, with what lists them, about 500 keys a script', async () => {
    const purger = createRedisCachePurger(redis.client, redis.prefix);
    const tenantId = 'tenant-forgotten';
    const [lru, sizes, bytes, lists] = tenantBoundKeys(redis.prefix, tenantId);
    const keyspace = tenantKeyspace(redis.prefix, tenantId);
    // As the write scripts leave them: each entry in the accounting, listed under its path index and
    // tag sets; a variant also under its URL's Vary marker and variant set.
    const pathIndex = `${keyspace}0:r:0:p:idx`;
    const shared = tagIndexKey(redis.prefix, tenantId, 'all');
    const entries = Array.from({ length: 3_000 }, (_, i) => `${keyspace}0:r:0:p:${i}`);
    const own = entries.map((_, i) => tagIndexKey(redis.prefix, tenantId, `own-${i}`));
    const url = `${keyspace}0:r:0:p:varying`;
    const variant = `${url}:v`;
    const pipeline = redis.client.pipeline();
    entries.forEach((entry, i) => {
      pipeline.set(entry, 'x', 'PX', 86_400_000);
      pipeline.sadd(own[i]!, entry);
      pipeline.zadd(lru, i, entry);
      pipeline.hset(sizes, entry, 1);
      pipeline.hset(lists, entry, `p${pathIndex}\ns${shared}\ns${own[i]}`);
    });
    pipeline.sadd(pathIndex, ...entries, url, variant, `${url}:variants`);
    pipeline.sadd(shared, ...entries);
    pipeline.set(url, 'marker', 'PX', 86_400_000).set(variant, 'x', 'PX', 86_400_000);
    pipeline.sadd(`${url}:variants`, variant);
    pipeline.zadd(lru, 0, variant).hset(sizes, variant, 1).hset(lists, variant, `p${pathIndex}\nm${url}`);
    pipeline.set(bytes, entries.length + 1);
    await pipeline.exec();

    const monitor = await monitorRedis();
    const unlinkedByScript: number[] = [];
    monitor.onCommand(({ args, fromScript }) => {
      // Other clients share the server: only this tenant's scripts and keys count.
      const name = args[0]!.toLowerCase();
      if (!fromScript && name.startsWith('eval') && args.includes(lru)) unlinkedByScript.push(0);
      else if (fromScript && name === 'unlink' && unlinkedByScript.length > 0)
        unlinkedByScript[unlinkedByScript.length - 1]! += args.filter((arg) =>
          arg.startsWith(keyspace),
        ).length;
    });
    await purger.forgetTenant(tenantId);
    const marker = `end-of-run-${randomUUID()}`;
    await new Promise<void>((resolve) => {
      monitor.onCommand(({ args }) => {
        if (args[1] === marker) resolve();
      });
      void redis.client.echo(marker);
    });
    monitor.stop();

    const everything = [lru, sizes, bytes, lists, pathIndex, shared, url, variant, `${url}:variants`];
    expect(await redis.client.exists(...entries, ...own, ...everything)).toBe(0);
    expect(unlinkedByScript.length).toBeGreaterThan(1);
    expect(Math.max(...unlinkedByScript)).toBeLessThanOrEqual(PURGE_DELETE_BATCH + 3);
  });

  it("deletes the listings a purge that failed part-way left taken aside, which outlive the tenant's entries by their TTL", async () => {
    const purger = createRedisCachePurger(redis.client, redis.prefix);
    const tenantId = `tenant-${randomUUID()}`;
    const [lru, sizes, bytes, lists] = tenantBoundKeys(redis.prefix, tenantId);
    const keyspace = tenantKeyspace(redis.prefix, tenantId);
    const pathIndex = `${keyspace}0:r:0:p:idx`;
    const tagSet = tagIndexKey(redis.prefix, tenantId, 'product-7');
    // An origin's max-age of 2^31 s: the entries and what lists them are kept ~68 years.
    const ttlMs = 2 ** 31 * 1_000;
    const entries = Array.from({ length: 3 }, (_, i) => `${keyspace}0:r:0:p:${i}`);
    const pipeline = redis.client.pipeline();
    entries.forEach((entry, i) => {
      pipeline.set(entry, 'x', 'PX', ttlMs);
      pipeline.zadd(lru, i, entry).hset(sizes, entry, 1).hset(lists, entry, `p${pathIndex}\ns${tagSet}`);
    });
    pipeline.sadd(pathIndex, ...entries).pexpire(pathIndex, ttlMs);
    pipeline.sadd(tagSet, ...entries).pexpire(tagSet, ttlMs);
    pipeline.set(bytes, entries.length);
    await pipeline.exec();
    // A POST's invalidation and an admin's tag purge each time out (a busy Redis) once they have taken
    // their listing aside, before deleting what it lists; then the tenant is deleted.
    const fence = purgeFenceKey(redis.prefix, tenantId);
    const spop = vi.spyOn(redis.client, 'spop').mockRejectedValue(new Error('Command timed out'));
    try {
      await expect(deleteListed(redis.client, pathIndex, fence)).rejects.toThrow('timed out');
      await expect(deleteListed(redis.client, tagSet, fence)).rejects.toThrow('timed out');
    } finally {
      spop.mockRestore();
    }
    const takenAside = [`${pathIndex}:purging`, `${tagSet}:purging`];
    expect(await redis.client.exists(...takenAside)).toBe(2);

    await purger.forgetTenant(tenantId);

    expect(await redis.client.exists(...entries, pathIndex, tagSet, ...takenAside)).toBe(0);
  });
});

/**
 * The most fields of `key` one script touched while `run` ran (MONITOR shows a script's own commands
 * after the call that ran it): a command reading the whole hash touches all of them.
 */
async function fieldsOneScriptTouched(key: string, run: () => Promise<unknown>): Promise<number> {
  const monitor = await monitorRedis();
  const wholeHash = new Set(['hkeys', 'hgetall', 'hvals']);
  const fields = await redis.client.hlen(key);
  const scripts: Array<Set<string>> = [];
  monitor.onCommand(({ args, fromScript }) => {
    const [name, target, ...rest] = args.map((arg) => arg.toLowerCase());
    const touched = scripts.at(-1);
    if (!fromScript) {
      if (name!.startsWith('eval') || name!.startsWith('fcall')) scripts.push(new Set());
    } else if (target === key.toLowerCase() && touched) {
      if (wholeHash.has(name!)) for (let i = 0; i < fields; i++) touched.add(`#${i}`);
      for (const field of rest) touched.add(field);
    }
  });
  await run();
  // MONITOR lines arrive in order: once the marker's has, so have those of every command above.
  const marker = `end-of-run-${randomUUID()}`;
  await new Promise<void>((resolve) => {
    monitor.onCommand(({ args }) => {
      if (args[1] === marker) resolve();
    });
    void redis.client.echo(marker);
  });
  monitor.stop();
  return Math.max(0, ...scripts.map((touched) => touched.size));
}

describe('the work soft-purged tags give one script', () => {
  /** A tenant admin's soft purges of 64 fresh tags each, up to (nearly) the most kept. */
  const holdingMostSoftPurgedTags = async (tenantId: string) => {
    const purger = createRedisCachePurger(redis.client, redis.prefix);
    for (let i = 0; i < CACHE_SOFT_PURGED_TAGS_MAX / 64 - 1; i++) {
      const tags = Array.from({ length: 64 }, (_, j) => `t${i}-${j}`);
      await purger.purgeTags(tenantId, tags, { soft: true });
    }
    return { purger, key: generationKey(redis.prefix, tenantId) };
  };

  it('a soft purge touches at most 1,000 fields of a hash holding the most soft-purged tags', async () => {
    const { purger, key } = await holdingMostSoftPurgedTags('tenant-soft-again');
    const softPurge = () => purger.purgeTags('tenant-soft-again', ['fresh-1', 'fresh-2'], { soft: true });
    expect(await fieldsOneScriptTouched(key, softPurge)).toBeLessThanOrEqual(1_000);
    expect(parseGenerations(await redis.client.hgetall(key)).softTags.has('fresh-2')).toBe(true);
  });

  it('a tenant purge forgets them all, touching at most 1,000 fields per script', async () => {
    const { purger, key } = await holdingMostSoftPurgedTags('tenant-purged-whole');
    const tenantPurge = () => purger.purgeTenant('tenant-purged-whole');
    expect(await fieldsOneScriptTouched(key, tenantPurge)).toBeLessThanOrEqual(1_000);
    expect(parseGenerations(await redis.client.hgetall(key))).toEqual({
      tenant: 1,
      routes: new Map(),
      softTags: new Map(),
    });
    // Soft purges after it count from nothing and stay.
    await purger.purgeTags('tenant-purged-whole', ['after'], { soft: true });
    expect(parseGenerations(await redis.client.hgetall(key)).softTags.has('after')).toBe(true);
  });
});

describe("a tenant's purge fence (the purges the fills under way are checked against)", () => {
  it('names at most PURGE_FENCE_MAX_LISTINGS listings, keeps the latest time of those that left, and expires', async () => {
    const purger = createRedisCachePurger(redis.client, redis.prefix);
    const tenantId = `fence-${randomUUID()}`;
    const fence = purgeFenceKey(redis.prefix, tenantId);
    // 64 fresh tags a command, as a hostile tenant admin (or a client POSTing to fresh paths) would.
    for (let i = 0; i * 64 < PURGE_FENCE_MAX_LISTINGS + 64; i++)
      await purger.purgeTags(
        tenantId,
        Array.from({ length: 64 }, (_, j) => `t${i}-${j}`),
      );
    expect(await redis.client.zcard(fence)).toBe(PURGE_FENCE_MAX_LISTINGS);
    const horizon = Number(await redis.client.zscore(fence, PURGE_FENCE_HORIZON));
    const [, oldestNamed] = await redis.client.zrange(fence, '1', '1', 'WITHSCORES');
    expect(horizon).toBeGreaterThan(0);
    expect(horizon).toBeLessThanOrEqual(Number(oldestNamed));
    expect(await redis.client.zscore(fence, tagIndexKey(redis.prefix, tenantId, 't0-0'))).toBeNull();
    const ttl = await redis.client.pttl(fence);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(PURGE_FENCE_MS);
  });
});

describe('a hard purge while fills whose lookups began after it are stored', () => {
  it('deletes every entry listed before it, whatever is listed while it runs', async () => {
    const purger = createRedisCachePurger(redis.client, redis.prefix);
    const tenantId = `fills-${randomUUID()}`;
    const index = tagIndexKey(redis.prefix, tenantId, 'product-7');
    const entry = (name: string) => `${tenantKeyspace(redis.prefix, tenantId)}0:r:0:${name}`;
    const before = Array.from({ length: 400 }, (_, i) => entry(`before-${i}`));
    await redis.client.mset(...before.flatMap((key) => [key, 'purged answer']));
    await redis.client.sadd(index, ...before);
    // The fills asked the origin after the purge began (the fence lets them through): they list their
    // entries under the tag while the purge deletes.
    const after = Array.from({ length: 400 }, (_, i) => entry(`after-${i}`));
    const spop = redis.client.spop.bind(redis.client);
    const spy = vi.spyOn(redis.client, 'spop').mockImplementationOnce((async (
      ...args: Parameters<typeof spop>
    ) => {
      await redis.client.mset(...after.flatMap((key) => [key, 'current answer']));
      await redis.client.sadd(index, ...after);
      return spop(...args);
    }) as typeof redis.client.spop);
    try {
      await purger.purgeTags(tenantId, ['product-7']);
    } finally {
      spy.mockRestore();
    }
    expect(await redis.client.exists(...before)).toBe(0);
  });
});
