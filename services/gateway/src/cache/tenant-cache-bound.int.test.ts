import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tenantBoundKeys } from '@vantageedge/shared/cache-purge/purge-protocol';
import { cachePolicy } from '@vantageedge/shared/domain/gateway-config';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createTestRedis } from '@vantageedge/shared/testing/redis';
import type { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createCacheStage } from './cache-stage.js';
import { cacheEvictionRecorder } from './eviction-metrics.js';
import { RedisCacheStore } from './redis-cache-store.js';
import { createResponseCache, type ResponseCache } from './response-cache.js';
import { type TrackedWrites, trackingWrites } from './testing/tracked-writes.js';

/**
 * Each tenant's share of the shared (Redis) cache, through the gateway pipeline with the L1 off (every
 * HIT comes from Redis): a tenant whose settings bound it to ~2 responses keeps only its most recently
 * used ones, refuses a response larger than its bound, and another tenant (the gateway's default
 * bound) keeps all of its own.
 */
// Large enough that what listing an entry costs (chargedBytes: ~2 kB with these keys and path tags)
// leaves room for two in a bound of 2.5 bodies.
const BODY = 10_000;
const redis = createTestRedis('cache-tenant-bound');
let origin: Server;
let gateway: TestGateway;
let cache: ResponseCache;
let registry: Registry;
/** The store's writes, so a test can wait until a fill reached Redis. */
let writes: TrackedWrites;
let originUrl: string;

async function xCache(host: string, path: string): Promise<string | undefined> {
  const response = await send(gateway, host, path);
  // Let the fill reach the store, then let what follows the store's answer (counting a refusal) run
  // before the caller looks.
  await writes.settled();
  await new Promise((resolve) => setImmediate(resolve));
  return response.headers['x-cache'] as string | undefined;
}

async function metric(name: string, reason: string): Promise<number> {
  const values = (await registry.getSingleMetric(name)?.get())?.values ?? [];
  return values.find((value) => value.labels['reason'] === reason)?.value ?? 0;
}

beforeAll(async () => {
  origin = createServer((req, res) => {
    req.resume();
    const size = req.url?.startsWith('/c/large') ? 4 * BODY : BODY;
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('x'.repeat(size));
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
  registry = createMetricsRegistry('tenant-cache-bound', { defaultMetrics: false });
  writes = trackingWrites(
    new RedisCacheStore(redis.client, {
      keyPrefix: redis.prefix,
      tenantMaxBytes: 1_000_000,
      onEvicted: cacheEvictionRecorder(registry),
    }),
  );
  cache = createResponseCache({
    store: writes.store,
    l1MaxBytes: 1,
    registry,
    logger: createLogger({ service: 'test', level: 'error' }),
  });
  gateway = await startTestGateway({}, { stages: [createCacheStage(cache)] });
  for (const [subdomain, settings] of [
    ['boundsmall', { cache: { max_bytes: Math.floor(2.5 * BODY) } }],
    ['bounddefault', {}],
  ] as const) {
    const originId = randomUUID();
    const snapshot = buildSnapshot({
      subdomain,
      settings,
      origins: [{ id: originId, targets: [originUrl] }],
      routes: [{ origin_id: originId, path_pattern: '/c/*' }],
    });
    const [route] = snapshot.routes;
    route!.cache_policy = cachePolicy.parse({ ttl_seconds: 60 });
    gateway.store.apply(snapshot);
    await cache.prepareTenant(snapshot.tenant_id);
  }
});
afterAll(async () => {
  await gateway?.close();
  await cache?.close();
  await new Promise<void>((resolve) => {
    origin.close(() => resolve());
    origin.closeAllConnections();
  });
  await redis.cleanup();
});

describe("a tenant's share of the Redis cache", () => {
  it('keeps the tenant within its own bound (least recently used out), without touching another tenant', async () => {
    const small = 'boundsmall.localhost';
    const other = 'bounddefault.localhost';
    for (const path of ['/c/1', '/c/2', '/c/3']) expect(await xCache(other, path)).toBe('MISS');
    for (const path of ['/c/a', '/c/b']) expect(await xCache(small, path)).toBe('MISS');
    // A read from Redis makes /c/a the most recently used: /c/b is the one to go.
    expect(await xCache(small, '/c/a')).toBe('HIT');
    expect(await xCache(small, '/c/c')).toBe('MISS');
    expect(await xCache(small, '/c/c')).toBe('HIT');
    expect(await xCache(small, '/c/a')).toBe('HIT');
    expect(await metric('vantageedge_gateway_cache_evictions_total', 'lru')).toBe(1);
    expect(await xCache(small, '/c/b')).toBe('MISS');
    for (const path of ['/c/1', '/c/2', '/c/3']) expect(await xCache(other, path)).toBe('HIT');
  });

  // Regression: a config lowering the tenant's bound trimmed nothing: the tenant kept its whole share of
  // the shared store (and served from it) until its next writes evicted, 32 entries each, or for as long
  // as its origin's TTLs ran when it wrote nothing more.
  it('trims the tenant to a lowered bound when the config is applied, least recently used out', async () => {
    const tenantId = randomUUID();
    const originId = randomUUID();
    const routeId = randomUUID();
    const apply = (version: number, settings: Record<string, unknown>) => {
      const snapshot = buildSnapshot({
        tenantId,
        version,
        subdomain: 'boundlowered',
        settings,
        origins: [{ id: originId, targets: [originUrl] }],
        routes: [{ id: routeId, origin_id: originId, path_pattern: '/c/*' }],
      });
      snapshot.routes[0]!.cache_policy = cachePolicy.parse({ ttl_seconds: 60 });
      gateway.store.apply(snapshot);
    };
    apply(1, {});
    await cache.prepareTenant(tenantId);
    const host = 'boundlowered.localhost';
    for (const path of ['/c/1', '/c/2', '/c/3']) expect(await xCache(host, path)).toBe('MISS');
    const evictedBefore = await metric('vantageedge_gateway_cache_evictions_total', 'lru');
    const bound = Math.floor(1.5 * BODY);
    apply(2, { cache: { max_bytes: bound } });
    await writes.settled();
    const bytesKey = tenantBoundKeys(redis.prefix, tenantId)[2];
    expect(Number(await redis.client.get(bytesKey))).toBeLessThanOrEqual(bound);
    expect(await metric('vantageedge_gateway_cache_evictions_total', 'lru')).toBe(evictedBefore + 2);
    expect(await xCache(host, '/c/3')).toBe('HIT');
    expect(await xCache(host, '/c/1')).toBe('MISS');
  });

  it('does not store a response larger than the tenant’s whole bound', async () => {
    const host = 'boundsmall.localhost';
    expect(await xCache(host, '/c/large')).toBe('MISS');
    expect(await xCache(host, '/c/large')).toBe('MISS');
    expect(await metric('vantageedge_gateway_cache_not_stored_total', 'over_tenant_bound')).toBe(2);
    expect(await xCache('bounddefault.localhost', '/c/large')).toBe('MISS');
    expect(await xCache('bounddefault.localhost', '/c/large')).toBe('HIT');
  });
});

describe('replicas that apply a tenant’s configs at different times', () => {
  // Regression: a replica that went from version 1 straight to 3 (2 superseded while it applied, or
  // compacted away) saw its bound unchanged and told the shared store nothing, so another replica that
  // applied version 2 only later trimmed the tenant's entries to a bound version 3 had already undone.
  it('does not trim with a lowered bound undone by a later config another replica applied', async () => {
    const behindWrites = trackingWrites(
      new RedisCacheStore(redis.client, { keyPrefix: redis.prefix, tenantMaxBytes: 1_000_000 }),
    );
    const behindCache = createResponseCache({
      store: behindWrites.store,
      l1MaxBytes: 1,
      registry: createMetricsRegistry('tenant-cache-bound-behind', { defaultMetrics: false }),
      logger: createLogger({ service: 'test', level: 'error' }),
    });
    const behind = await startTestGateway({}, { stages: [createCacheStage(behindCache)] });
    try {
      const tenantId = randomUUID();
      const originId = randomUUID();
      const routeId = randomUUID();
      const apply = (on: TestGateway, version: number, settings: Record<string, unknown>) => {
        const snapshot = buildSnapshot({
          tenantId,
          version,
          subdomain: 'boundreverted',
          settings,
          origins: [{ id: originId, targets: [originUrl] }],
          routes: [{ id: routeId, origin_id: originId, path_pattern: '/c/*' }],
        });
        snapshot.routes[0]!.cache_policy = cachePolicy.parse({ ttl_seconds: 60 });
        on.store.apply(snapshot);
      };
      apply(gateway, 1, {});
      apply(behind, 1, {});
      await cache.prepareTenant(tenantId);
      const host = 'boundreverted.localhost';
      for (const path of ['/c/1', '/c/2', '/c/3']) expect(await xCache(host, path)).toBe('MISS');
      await writes.settled();

      // Version 2 lowered the bound, version 3 put it back: this replica applies 3 only.
      apply(gateway, 3, {});
      await writes.settled();
      // The other one applies version 2 now.
      apply(behind, 2, { cache: { max_bytes: Math.floor(1.5 * BODY) } });
      await behindWrites.settled();

      for (const path of ['/c/1', '/c/2', '/c/3']) expect(await xCache(host, path)).toBe('HIT');
    } finally {
      await behind.close();
      await behindCache.close();
    }
  });
});
