import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { cachePolicy } from '@vantageedge/shared/domain/gateway-config';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import { TEST_INFRA } from '@vantageedge/shared/testing/infrastructure';
import { createTestRedis, type TestRedis } from '@vantageedge/shared/testing/redis';
import type { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { type HttpOrigin, startHttpOrigin } from '../testing/http-origins.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createCacheStage } from './cache-stage.js';
import { RedisCacheStore } from './redis-cache-store.js';
import { createResponseCache, type ResponseCache } from './response-cache.js';

/**
 * A URL whose responses vary keeps at most GATEWAY_CACHE_MAX_VARIANTS of them. Once full, an anonymous
 * client sending junk values (`Accept-Language: x1` … `x16`) refused every later variant until the
 * junk expired: the variants real browsers need went to the origin on every request. A new variant now
 * takes the place of the least recently used one, on each replica and atomically in Redis.
 */

const MAX_VARIANTS = 16;
const BROWSER = 'en-GB,en;q=0.9';

function originHandler(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(204);
    res.end();
    return;
  }
  res.writeHead(200, {
    'content-type': 'text/plain',
    'cache-control': 'max-age=60',
    vary: 'Accept-Language',
    'surrogate-key': 'page',
  });
  res.end(`language ${req.headers['accept-language'] ?? 'none'}`);
}

interface Replica {
  gateway: TestGateway;
  cache: ResponseCache;
  client: RedisClient;
  registry: Registry;
}

describe('the Vary cap replaces the least recently used variant (two replicas, Redis store)', () => {
  let origin: HttpOrigin;
  let redis: TestRedis;
  let replicas: Replica[];
  let tenantId: string;
  const subdomain = 'varycap';
  const host = `${subdomain}.localhost`;

  beforeAll(async () => {
    origin = await startHttpOrigin(originHandler);
    redis = createTestRedis('vary-cap-replacement');
    const logger = createLogger({ service: 'test', level: 'error' });
    const originId = randomUUID();
    const snapshot = buildSnapshot({
      subdomain,
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [{ origin_id: originId, path_pattern: '/*' }],
    });
    snapshot.routes[0]!.cache_policy = cachePolicy.parse({ ttl_seconds: 60 });
    tenantId = snapshot.tenant_id;
    replicas = [];
    for (let i = 0; i < 2; i++) {
      // Each replica has a connection of its own, as separate processes would.
      const client = createRedisClient({
        url: TEST_INFRA.redisUrl,
        commandTimeoutMs: 2_000,
        name: `vary-${i}`,
      });
      await whenReady(client);
      const registry = createMetricsRegistry(`vary-cap-${i}`, { defaultMetrics: false });
      const cache = createResponseCache({
        store: new RedisCacheStore(client, { keyPrefix: redis.prefix }),
        l1MaxBytes: 1_000_000,
        registry,
        logger,
        maxVariantsPerUrl: MAX_VARIANTS,
      });
      const gateway = await startTestGateway({}, { stages: [createCacheStage(cache)] });
      gateway.store.apply(snapshot);
      await cache.prepareTenant(tenantId);
      replicas.push({ gateway, cache, client, registry });
    }
  });
  afterAll(async () => {
    for (const { gateway, cache, client } of replicas) {
      await gateway.close();
      await cache.close();
      client.disconnect();
    }
    await origin.close();
    await redis.cleanup();
  });

  const get = (replica: number, path: string, language: string) =>
    send(replicas[replica]!.gateway, host, path, { headers: { 'accept-language': language } });

  /** The URL's variant set in Redis, and which of its variants' entries exist. */
  async function storedVariants(): Promise<{ listed: string[]; live: string[]; entries: string[] }> {
    const keys = await tenantKeys();
    const sets = keys.filter((key) => key.endsWith(':variants'));
    expect(sets).toHaveLength(1);
    const set = sets[0]!;
    const urlKey = set.slice(0, -':variants'.length);
    const listed = await redis.client.smembers(set);
    const live = [];
    for (const member of listed) if ((await redis.client.exists(member)) === 1) live.push(member);
    const entries = keys.filter(
      (key) => key.startsWith(`${urlKey}:`) && key !== set && !key.endsWith(':lease'),
    );
    return { listed, live, entries };
  }

  /** Every key of the tenant's cache but its byte-bound accounting: each test clears them first and uses one URL. */
  async function tenantKeys(): Promise<string[]> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, found] = await redis.client.scan(
        cursor,
        'MATCH',
        `${redis.prefix}c:{${tenantId}}:*`,
        'COUNT',
        1000,
      );
      keys.push(...found.filter((key) => !key.includes(':bound:')));
      cursor = next;
    } while (cursor !== '0');
    return keys;
  }

  const urlKeyOf = (variants: readonly string[]) => variants[0]!.slice(0, variants[0]!.lastIndexOf(':'));

  /** The variant entries stored below a URL key. */
  async function entriesOf(urlKey: string): Promise<string[]> {
    return (await tenantKeys()).filter(
      (key) => key.startsWith(`${urlKey}:`) && !key.endsWith(':variants') && !key.endsWith(':lease'),
    );
  }

  async function clearTenantKeys(): Promise<void> {
    for (const key of await tenantKeys()) await redis.client.del(key);
  }

  it("an attacker's junk values do not keep a browser's variant out of the cache", async () => {
    await clearTenantKeys();
    const path = `/page/${randomUUID()}`;
    for (let i = 1; i <= MAX_VARIANTS + 4; i++) await get(i % 2, path, `x${i}`);
    const first = await get(0, path, BROWSER);
    expect(first.text).toBe(`language ${BROWSER}`);
    const again = await get(0, path, BROWSER);
    expect(again.headers['x-cache']).toBe('HIT');
    expect(again.text).toBe(`language ${BROWSER}`);
    // The other replica finds it in Redis.
    const elsewhere = await get(1, path, BROWSER);
    expect(elsewhere.headers['x-cache']).toBe('HIT');
    expect(elsewhere.text).toBe(`language ${BROWSER}`);
    // More junk pushes out junk nobody asked for again, not the browser's variant this replica serves.
    for (let i = 100; i < 100 + MAX_VARIANTS; i++) {
      await get(0, path, `x${i}`);
      expect((await get(0, path, BROWSER)).headers['x-cache']).toBe('HIT');
    }
    const { listed, live, entries } = await storedVariants();
    expect(listed.length).toBeLessThanOrEqual(MAX_VARIANTS);
    expect(live.length).toBe(listed.length);
    expect(entries.sort()).toEqual([...listed].sort());
  });

  it('two replicas filling variants at once stay within the cap', async () => {
    await clearTenantKeys();
    const path = `/busy/${randomUUID()}`;
    await Promise.all(Array.from({ length: 3 * MAX_VARIANTS }, (_, i) => get(i % 2, path, `v${i}`)));
    // Fills are stored after their answers went out, so the last ones may still be replacing variants
    // as Redis is read (each replacement is atomic, reading them here is not): read until they are done.
    await vi.waitFor(
      async () => {
        const { listed, live, entries } = await storedVariants();
        expect(listed.length).toBeLessThanOrEqual(MAX_VARIANTS);
        expect(live.length).toBe(listed.length);
        // No entry of a replaced variant is left behind, listed or not.
        expect(entries.sort()).toEqual([...listed].sort());
      },
      { timeout: 10_000, interval: 200 },
    );
  });

  it('a replaced variant leaves the path index and tag set; purges by URL and by tag still drop every variant', async () => {
    await clearTenantKeys();
    const path = `/purged/${randomUUID()}`;
    for (let i = 0; i < MAX_VARIANTS + 8; i++) await get(i % 2, path, `p${i}`);
    const { listed } = await storedVariants();
    const keys = await tenantKeys();
    const pathIndex = keys.find((key) => key.endsWith(':idx'))!;
    const tagSets = keys.filter((key) => key.includes('}:tag:'));
    const indexed = await redis.client.smembers(pathIndex);
    // Only live keys: the URL's marker, its variant set and its variants.
    for (const member of indexed) expect(await redis.client.exists(member), member).toBe(1);
    expect(indexed.filter((member) => listed.includes(member)).sort()).toEqual([...listed].sort());
    for (const set of tagSets)
      for (const member of await redis.client.smembers(set))
        expect(await redis.client.exists(member), member).toBe(1);

    // By URL: an unsafe method on the path drops every variant on every replica.
    const pathPurges = async () => {
      const metric = await replicas[1]!.registry
        .getSingleMetric('vantageedge_gateway_cache_purges_total')
        ?.get();
      return metric?.values.find((sample) => sample.labels['kind'] === 'path')?.value ?? 0;
    };
    const before = await pathPurges();
    const post = await send(replicas[0]!.gateway, host, path, { method: 'POST' });
    expect(post.status).toBe(204);
    await vi.waitFor(async () => expect(await pathPurges()).toBeGreaterThan(before), { timeout: 10_000 });
    expect(await entriesOf(urlKeyOf(listed))).toEqual([]);
    expect((await get(0, path, `p${MAX_VARIANTS + 6}`)).headers['x-cache']).toBe('MISS');
    expect((await get(1, path, `p${MAX_VARIANTS + 7}`)).headers['x-cache']).toBe('MISS');
    await get(1, path, BROWSER);
    expect((await get(1, path, BROWSER)).headers['x-cache']).toBe('HIT');

    // By tag: every variant tagged `page` goes.
    await replicas[1]!.cache.purgeTags(tenantId, ['page']);
    expect(await entriesOf(urlKeyOf(listed))).toEqual([]);
    expect((await get(1, path, BROWSER)).headers['x-cache']).toBe('MISS');
  });
});
