import { randomUUID } from 'node:crypto';
import {
  CACHE_TAGS_MAX,
  generationField,
  generationKey,
} from '@vantageedge/shared/cache-purge/purge-protocol';
import { createRedisCachePurger } from '@vantageedge/shared/cache-purge/redis-cache-purger';
import type { CacheRequest } from '@vantageedge/shared/gateway-policies/cache-key';
import type { CompiledCachePolicy } from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import type { RedisClient } from '@vantageedge/shared/redis/client';
import { afterAll, describe, expect, it } from 'vitest';
import { publicRouteCachePolicy } from '../testing/cache-policies.js';
import { RedisCacheStore } from './redis-cache-store.js';
import { createResponseCache, type ResponseCache } from './response-cache.js';

/**
 * A purge as the control plane sends it (createRedisCachePurger from the shared purge protocol, no
 * gateway code) empties every replica's cache, its L1 included: one route, or the whole tenant. A
 * replica that starts after the purge does not see the purged entries either. Run against the single
 * Redis server and against the Redis Cluster.
 */
export interface PurgeProtocolTarget {
  /** Every key and the purge channel start with it (GATEWAY_REDIS_KEY_PREFIX). */
  prefix: string;
  /** The control plane's client. */
  client: RedisClient;
  /** A new client as a gateway replica makes it (createRedisClient), connected. */
  connect(name: string): Promise<RedisClient>;
}

const logger = createLogger({ service: 'test', level: 'error' });

const request: CacheRequest = { method: 'GET', path: '/posts/1', query: '', headers: {} };

async function fill(cache: ResponseCache, policy: CompiledCachePolicy): Promise<void> {
  const miss = await cache.lookup(policy, request, {});
  if (miss.outcome !== 'MISS' || !miss.fill) throw new Error(`expected to lead a fill, got ${miss.outcome}`);
  await cache.store(miss.fill, 'GET', { status: 200, headers: {}, body: Buffer.from('{"id":1}') });
}

async function outcome(cache: ResponseCache, policy: CompiledCachePolicy): Promise<string> {
  const lookup = await cache.lookup(policy, request, {});
  if (lookup.outcome === 'MISS') cache.abandon(lookup.fill!);
  return lookup.outcome;
}

/** Up to ~15 s: a Redis Cluster relays a PUBLISH to other nodes' subscribers over its bus, late on a busy host. */
async function eventually(check: () => Promise<boolean>, attempts = 750): Promise<boolean> {
  for (let i = 0; i < attempts; i++) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}

export function describePurgeProtocol(name: string, target: () => PurgeProtocolTarget): void {
  const clients: RedisClient[] = [];
  const caches: ResponseCache[] = [];

  afterAll(async () => {
    for (const cache of caches) await cache.close();
    for (const client of clients) client.disconnect();
  });

  async function replica(
    replicaName: string,
    generationRefreshMs?: number,
    forgottenRouteGraceMs?: number,
  ): Promise<ResponseCache> {
    const { connect, prefix } = target();
    const client = await connect(replicaName);
    clients.push(client);
    const cache = createResponseCache({
      store: new RedisCacheStore(client, { keyPrefix: prefix }),
      l1MaxBytes: 1_000_000,
      generationRefreshMs,
      forgottenRouteGraceMs,
      registry: createMetricsRegistry(replicaName, { defaultMetrics: false }),
      logger,
    });
    caches.push(cache);
    return cache;
  }

  describe(`purges sent with the shared purge protocol: ${name}`, () => {
    it('empty one route, then the whole tenant, on every replica', async () => {
      const tenantId = randomUUID();
      const purged = publicRouteCachePolicy(tenantId);
      const kept = publicRouteCachePolicy(tenantId);
      const [a, b] = [await replica('a'), await replica('b')];
      for (const cache of [a, b]) await cache.prepareTenant(tenantId);
      await fill(a, purged);
      await fill(a, kept);
      for (const cache of [a, b])
        for (const policy of [purged, kept]) expect(await outcome(cache, policy)).toBe('HIT');

      const purger = createRedisCachePurger(target().client, target().prefix);
      await purger.purgeRoute(tenantId, purged.routeId);
      for (const cache of [a, b]) {
        expect(await eventually(async () => (await outcome(cache, purged)) === 'MISS')).toBe(true);
        expect(await outcome(cache, kept)).toBe('HIT');
      }
      const late = await replica('late');
      await late.prepareTenant(tenantId);
      expect(await outcome(late, purged)).toBe('MISS');
      expect(await outcome(late, kept)).toBe('HIT');

      await purger.purgeTenant(tenantId);
      for (const cache of [a, b, late])
        expect(await eventually(async () => (await outcome(cache, kept)) === 'MISS')).toBe(true);
    });

    // Regression: a soft purge of tags and prefixes together (up to twice CACHE_TAGS_MAX tags) went out
    // as one message the other replicas refused, so they applied it only at their next generation
    // refresh (15 s), and a hard purge of as many tags never reached their L1 copies.
    it('a purge of more than CACHE_TAGS_MAX tags through a replica reaches the other replicas at once', async () => {
      const tenantId = randomUUID();
      const [sender, other] = [await replica('many-tags-sender'), await replica('many-tags-other')];
      for (const cache of [sender, other]) await cache.prepareTenant(tenantId);
      const tags = Array.from({ length: CACHE_TAGS_MAX * 2 }, (_, i) => `tag-${i}`);
      // Well before the default generation refresh (15 s): only the purge messages can do it.
      const atOnce = (count: number) =>
        eventually(async () => other.heldGenerations(tenantId).softTags === count, 150);
      // Both subscribed (a replica reads the generations again once its subscription holds).
      await sender.purgeTags(tenantId, ['first'], { soft: true });
      expect(await eventually(async () => other.heldGenerations(tenantId).softTags === 1)).toBe(true);
      await sender.purgeTags(tenantId, tags, { soft: true });
      expect(await atOnce(tags.length + 1)).toBe(true);
      await sender.purgeTags(tenantId, tags);
      expect(await atOnce(1)).toBe(true);
    });

    it('a purge whose message is lost still reaches the replica when it reads the generations again', async () => {
      const tenantId = randomUUID();
      const policy = publicRouteCachePolicy(tenantId);
      const cache = await replica('refreshing', 200);
      await cache.prepareTenant(tenantId);
      await fill(cache, policy);
      expect(await outcome(cache, policy)).toBe('HIT');
      // What a purger does, minus the PUBLISH: as if the message were lost on the way.
      const { client, prefix } = target();
      await client.hincrby(generationKey(prefix, tenantId), generationField({ kind: 'tenant', tenantId }), 1);
      expect(await eventually(async () => (await outcome(cache, policy)) === 'MISS')).toBe(true);
    });

    // Regression: a replica kept every soft-purged tag it ever saw (its refresh merged them back), so a
    // tenant soft-purging new tags and hard-purging them again grew every replica's heap without bound.
    it('a replica holds the soft-purged tags the store holds: hard purges and tenant purges forget them', async () => {
      const tenantId = randomUUID();
      const cache = await replica('soft-tags', 50);
      await cache.prepareTenant(tenantId);
      const purger = createRedisCachePurger(target().client, target().prefix);
      const held = (count: number) =>
        eventually(async () => cache.heldGenerations(tenantId).softTags === count);
      await purger.purgeTags(tenantId, ['a', 'b', 'c'], { soft: true });
      expect(await held(3)).toBe(true);
      await purger.purgeTags(tenantId, ['a', 'b']);
      expect(await held(1)).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 200)); // a few refreshes of the generations
      expect(cache.heldGenerations(tenantId).softTags).toBe(1);
      // Its subscription may come up just after the tenant purge below is published, and its first read
      // of the store may fall between the purge's generation bump and the soft tags' removal that
      // follows it: the refresh is what brings it to what the store holds then.
      const late = await replica('soft-tags-late', 50);
      await late.prepareTenant(tenantId);
      expect(late.heldGenerations(tenantId).softTags).toBe(1);
      await purger.purgeTenant(tenantId);
      for (const replicaCache of [cache, late])
        expect(await eventually(async () => replicaCache.heldGenerations(tenantId).softTags === 0)).toBe(
          true,
        );
    });
    // Regression: a replica kept the generation of every route it had seen purged (its reloads merged
    // them back), so a tenant purging and deleting routes grew every replica's heap without bound.
    it('a replica holds the route generations the store holds: a deleted route’s is forgotten', async () => {
      const tenantId = randomUUID();
      const cache = await replica('route-generations', 50, 500);
      await cache.prepareTenant(tenantId);
      const purger = createRedisCachePurger(target().client, target().prefix);
      const [deleted, kept] = [randomUUID(), randomUUID()];
      const held = (count: number) =>
        eventually(async () => cache.heldGenerations(tenantId).routes === count);
      await purger.purgeRoute(tenantId, deleted);
      await purger.purgeRoute(tenantId, kept);
      expect(await held(2)).toBe(true);
      await purger.forgetRoute(tenantId, deleted);
      // Held a while: the replica may serve the route until its config without it arrives.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(cache.heldGenerations(tenantId).routes).toBe(2);
      expect(await held(1)).toBe(true);
      // Restored under its old id, the route is purged first: above every generation it had.
      await purger.purgeRoute(tenantId, deleted);
      expect(await held(2)).toBe(true);
      const late = await replica('route-generations-late');
      await late.prepareTenant(tenantId);
      expect(late.heldGenerations(tenantId).routes).toBe(2);
    });
  });
}
