import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parsePathPrefix } from '@vantageedge/shared/cache-purge/path-prefix';
import { cachePolicy, routeConfig } from '@vantageedge/shared/domain/gateway-config';
import { compileCachePolicy } from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MemoryLimitStore } from '../ratelimit/memory-limit-store.js';
import { createRateLimiter } from '../ratelimit/rate-limiter.js';
import type { CacheStore } from './cache-store.js';
import { MemoryCacheStore } from './memory-cache-store.js';
import { RedisCacheStore } from './redis-cache-store.js';
import { createResponseCache, type ResponseCache } from './response-cache.js';
import { type StageRoute, type StagesGateway, startStagesGateway } from './stages.test-harness.js';

/**
 * A purge that lands while a fill of an entry it selects is under way: the origin answered before the
 * purge (its old content), the entry is stored after the purge returned. Purges by tag, by URL prefix
 * and an unsafe method's path invalidation list nothing of it yet; once the purge has returned, no
 * replica may serve that answer.
 */
const logger = createLogger({ service: 'test', level: 'error' });
const prefix = `test:purge-fill:${uniqueSuffix()}:`;
const clients: RedisClient[] = [];

/** An origin whose responses under /held/ and /refreshed/ send their head and hold their body until released. */
interface HeldOrigin {
  url: string;
  hits(path: string): number;
  /** Resolves once a held response has sent its head; release() ends it. */
  held(): Promise<{ release(): void }>;
  close(): Promise<void>;
}

async function startHeldOrigin(): Promise<HeldOrigin> {
  const counts = new Map<string, number>();
  const waiting: Array<(release: { release(): void }) => void> = [];
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://origin').pathname;
    const n = (counts.get(path) ?? 0) + 1;
    counts.set(path, n);
    res.setHeader('Content-Type', 'application/json');
    const refreshed = path.startsWith('/refreshed/');
    res.setHeader(
      'Cache-Control',
      refreshed ? 'public, max-age=1, stale-while-revalidate=60' : 'public, max-age=60',
    );
    res.setHeader('Surrogate-Key', 'product-7');
    const body = JSON.stringify({ path, n });
    // /held/: the first response; /refreshed/: the second, the background refresh of a stale entry.
    if (!(path.startsWith('/held/') && n === 1) && !(refreshed && n === 2)) return res.end(body);
    res.flushHeaders();
    waiting.shift()?.({ release: () => res.end(body) });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits: (path) => counts.get(path) ?? 0,
    held: () => new Promise((resolve) => waiting.push(resolve)),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface Replica {
  gateway: StagesGateway;
  cache: ResponseCache;
  /** The shared-store writes this replica began. */
  writes: Promise<unknown>[];
}

/** `store` with its response writes listed in `writes`. */
function listingWrites(store: CacheStore, writes: Promise<unknown>[]): CacheStore {
  return new Proxy(store, {
    get(target, property) {
      const value = Reflect.get(target, property) as unknown;
      if (typeof value !== 'function') return value;
      if (property !== 'putResponse') return value.bind(target);
      return (...args: unknown[]) => {
        const write = (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        writes.push(write);
        return write;
      };
    },
  });
}

afterAll(async () => {
  const cleaner = new Redis(TEST_INFRA.redisUrl);
  const keys = await cleaner.keys(`${prefix}*`);
  if (keys.length > 0) await cleaner.del(...keys);
  cleaner.disconnect();
  for (const client of clients) client.disconnect();
});

for (const mode of ['redis', 'memory'] as const) {
  describe(`a purge during a fill (${mode})`, () => {
    let origin: HeldOrigin;
    const replicas: Replica[] = [];
    const routes = new Map<string, StageRoute>();
    const tenant = () => {
      const tenantId = randomUUID();
      const route = routeConfig.parse({
        id: randomUUID(),
        origin_id: randomUUID(),
        path_pattern: '/*',
        auth_mode: 'public',
        cache_policy: cachePolicy.parse({ ttl_seconds: 60 }),
      });
      routes.set(tenantId, { cache: compileCachePolicy(tenantId, route), limits: null });
      return tenantId;
    };
    const get = async (replica: Replica, tenantId: string, path: string, method = 'GET') => {
      const response = await fetch(replica.gateway.url + path, {
        method,
        headers: { 'x-test-tenant': tenantId },
      });
      const text = await response.text();
      return { xCache: response.headers.get('x-cache'), n: method === 'GET' ? JSON.parse(text).n : 0 };
    };

    beforeAll(async () => {
      origin = await startHeldOrigin();
      const memory = new MemoryCacheStore({ maxBytes: 1_000_000 });
      for (let i = 0; i < (mode === 'redis' ? 2 : 1); i++) {
        let store: RedisCacheStore | MemoryCacheStore = memory;
        if (mode === 'redis') {
          const redis = createRedisClient({
            url: TEST_INFRA.redisUrl,
            commandTimeoutMs: 1_000,
            name: `r${i}`,
          });
          clients.push(redis);
          await whenReady(redis);
          store = new RedisCacheStore(redis, { keyPrefix: prefix });
        }
        const registry = createMetricsRegistry(`purge-fill-${i}`, { defaultMetrics: false });
        const writes: Promise<unknown>[] = [];
        const cache = createResponseCache({
          store: listingWrites(store, writes),
          l1MaxBytes: 1_000_000,
          registry,
          logger,
        });
        const limiter = createRateLimiter({
          store: new MemoryLimitStore(),
          registry,
          logger,
          keyPrefix: prefix,
        });
        const gateway = await startStagesGateway({
          origin: origin.url,
          cache,
          limiter,
          routes: (t) => routes.get(t) ?? { cache: null, limits: null },
        });
        replicas.push({ gateway, cache, writes });
      }
      await new Promise((resolve) => setTimeout(resolve, 50)); // purge subscriptions established
    });
    afterAll(async () => {
      for (const replica of replicas) {
        await replica.gateway.close();
        await replica.cache.close();
      }
      await origin.close();
    });

    /** Fills `path` on the first replica, runs `purge` while the origin holds the body, then ends it. */
    const fillAcross = async (tenantId: string, path: string, purge: () => Promise<unknown>) => {
      await Promise.all(replicas.map((r) => r.cache.prepareTenant(tenantId)));
      const held = origin.held();
      const filling = get(replicas[0]!, tenantId, path);
      const { release } = await held;
      await purge();
      release();
      expect(await filling).toEqual({ xCache: 'MISS', n: 1 });
    };
    /** Once the purge returned, no replica serves the answer the origin gave before it. */
    const expectPurged = async (tenantId: string, path: string) => {
      for (const replica of replicas) expect((await get(replica, tenantId, path)).n).toBeGreaterThan(1);
    };

    it('a purge by tag', async () => {
      const t = tenant();
      await fillAcross(t, '/held/tag', () => replicas.at(-1)!.cache.purgeTags(t, ['product-7']));
      await expectPurged(t, '/held/tag');
    });

    it('a soft purge by tag', async () => {
      const t = tenant();
      await fillAcross(t, '/held/soft', () =>
        replicas.at(-1)!.cache.purgeTags(t, ['product-7'], { soft: true }),
      );
      await expectPurged(t, '/held/soft');
    });

    it('a purge by tag during the background refresh of a stale entry (stale-while-revalidate)', async () => {
      const t = tenant();
      const path = '/refreshed/1';
      await Promise.all(replicas.map((r) => r.cache.prepareTenant(t)));
      const first = replicas[0]!;
      const writesBefore = first.writes.length;
      expect(await get(first, t, path)).toEqual({ xCache: 'MISS', n: 1 });
      await Promise.all(first.writes);
      await new Promise((resolve) => setTimeout(resolve, 1_100)); // max-age=1 ran out
      const held = origin.held();
      expect(await get(first, t, path)).toEqual({ xCache: 'STALE', n: 1 });
      const { release } = await held;
      await replicas.at(-1)!.cache.purgeTags(t, ['product-7']);
      release();
      // The refresh's answer (n = 2) was the origin's before the purge.
      await vi.waitFor(() => expect(first.writes).toHaveLength(writesBefore + 2));
      await Promise.all(first.writes);
      for (const replica of replicas) expect((await get(replica, t, path)).n).toBeGreaterThan(2);
    });

    it('a purge by URL prefix', async () => {
      const t = tenant();
      const parsed = parsePathPrefix('/held/');
      if (!parsed.ok) throw new Error(parsed.issue);
      await fillAcross(t, '/held/prefix/1', () => replicas.at(-1)!.cache.purgeTags(t, [parsed.tag]));
      await expectPurged(t, '/held/prefix/1');
    });

    it("an unsafe method's invalidation of the path", async () => {
      const t = tenant();
      await fillAcross(t, '/held/posted', () => get(replicas.at(-1)!, t, '/held/posted', 'POST'));
      await expectPurged(t, '/held/posted');
    });
  });
}

describe('a purge during a fill kept in the L1 only (larger than one store command may move)', () => {
  it("the filling replica that applied the purge before the fill ended does not keep the purge's answer", async () => {
    const origin = await startHeldOrigin();
    const redis = createRedisClient({ url: TEST_INFRA.redisUrl, commandTimeoutMs: 1_000, name: 'l1-only' });
    clients.push(redis);
    await whenReady(redis);
    const registry = createMetricsRegistry('purge-fill-l1-only', { defaultMetrics: false });
    const cache = createResponseCache({
      store: new RedisCacheStore(redis, { keyPrefix: prefix, maxEntryBytes: 1 }),
      l1MaxBytes: 1_000_000,
      registry,
      logger,
    });
    const limiter = createRateLimiter({ store: new MemoryLimitStore(), registry, logger, keyPrefix: prefix });
    const tenantId = randomUUID();
    const route = routeConfig.parse({
      id: randomUUID(),
      origin_id: randomUUID(),
      path_pattern: '/*',
      auth_mode: 'public',
      cache_policy: cachePolicy.parse({ ttl_seconds: 60 }),
    });
    const policy: StageRoute = { cache: compileCachePolicy(tenantId, route), limits: null };
    const gateway = await startStagesGateway({ origin: origin.url, cache, limiter, routes: () => policy });
    try {
      await cache.prepareTenant(tenantId);
      const get = async () => {
        const response = await fetch(`${gateway.url}/held/large`, { headers: { 'x-test-tenant': tenantId } });
        return (JSON.parse(await response.text()) as { n: number }).n;
      };
      const held = origin.held();
      const filling = get();
      const { release } = await held;
      // Applied on this replica as it returns: its message came before the fill ended.
      await cache.purgeTags(tenantId, ['product-7']);
      release();
      expect(await filling).toBe(1);
      expect(await get()).toBeGreaterThan(1);
    } finally {
      await gateway.close();
      await cache.close();
      await origin.close();
    }
  });
});
