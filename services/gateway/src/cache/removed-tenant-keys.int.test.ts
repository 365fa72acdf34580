import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PURGE_FENCE_MS, tenantKeyspace } from '@vantageedge/shared/cache-purge/purge-protocol';
import { createRedisCachePurger } from '@vantageedge/shared/cache-purge/redis-cache-purger';
import { cachePolicy } from '@vantageedge/shared/domain/gateway-config';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createTestRedis, scanKeys } from '@vantageedge/shared/testing/redis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createCacheStage } from './cache-stage.js';
import { RedisCacheStore } from './redis-cache-store.js';
import { createResponseCache, type ResponseCache } from './response-cache.js';
import { type TrackedWrites, trackingWrites } from './testing/tracked-writes.js';

/**
 * Regression test: the control plane forgets a deleted tenant's cache keys that never expire (its
 * accounting, its purge generations) once the delete is recorded, but every replica serves the tenant
 * until the tombstone reaches it, and a fill under way then still commits. A fill stored meanwhile wrote
 * the accounting back, without a TTL, for good: `volatile-lru` never evicts it and no write of the
 * tenant ever comes to reclaim it. A replica forgets the accounting itself once it has dropped the
 * tenant, and stores nothing of a tenant it no longer serves.
 */
const redis = createTestRedis('removed-tenant-keys');
/** What the control plane runs once a tenant's delete is recorded. */
const controlPlane = createRedisCachePurger(redis.client, redis.prefix);
let origin: Server;
let originUrl: string;
let gateway: TestGateway;
let cache: ResponseCache;
/** The store's writes, so a test can wait until a fill reached Redis. */
let writes: TrackedWrites;
/** Requests to /slow/* wait for this before their body ends. */
let releaseSlowBody: () => void = () => {};
let slowRequestArrived: () => void = () => {};

/** The tenant's keys in Redis, split into those that expire and those that never do. */
async function tenantKeys(tenantId: string): Promise<{ expiring: string[]; forever: string[] }> {
  const found = { expiring: [] as string[], forever: [] as string[] };
  for (const key of await scanKeys(redis.client, `${tenantKeyspace(redis.prefix, tenantId)}*`)) {
    if ((await redis.client.pttl(key)) === -1) found.forever.push(key);
    else found.expiring.push(key);
  }
  return found;
}

/**
 * The tenant's keys that outlast the fills and purges under way (a fill's lease, a purge's fence): every
 * other key of a deleted tenant is garbage no tenant's bound counts any more.
 */
async function longLived(tenantId: string): Promise<string[]> {
  const found: string[] = [];
  for (const key of await scanKeys(redis.client, `${tenantKeyspace(redis.prefix, tenantId)}*`)) {
    const ttl = await redis.client.pttl(key);
    if (ttl === -1 || ttl > PURGE_FENCE_MS) found.push(key);
  }
  return found;
}

/** A tenant caching every response under /c/* and /slow/* for a minute. */
async function cachingTenant(subdomain: string): Promise<string> {
  const originId = randomUUID();
  const snapshot = buildSnapshot({
    subdomain,
    origins: [{ id: originId, targets: [originUrl] }],
    routes: [{ origin_id: originId, path_pattern: '/*' }],
  });
  snapshot.routes[0]!.cache_policy = cachePolicy.parse({ ttl_seconds: 60 });
  gateway.store.apply(snapshot);
  await cache.prepareTenant(snapshot.tenant_id);
  return snapshot.tenant_id;
}

beforeAll(async () => {
  origin = createServer((req, res) => {
    req.resume();
    if (req.url?.startsWith('/long/')) {
      // As long as an origin may say (RFC 9111's largest delta-seconds), tagged, some of it varying.
      res.writeHead(200, {
        'content-type': 'text/plain',
        'cache-control': 'max-age=2147483648, stale-while-revalidate=2147483648',
        'surrogate-key': `all ${req.url.slice('/long/'.length)}`,
        ...(req.url.includes('varying') ? { vary: 'accept-language' } : {}),
      });
      res.end('kept for decades');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    if (!req.url?.startsWith('/slow/')) {
      res.end('cached body');
      return;
    }
    res.write('first half, ');
    const released = new Promise<void>((resolve) => {
      releaseSlowBody = resolve;
    });
    slowRequestArrived();
    void released.then(() => res.end('second half'));
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
  const registry = createMetricsRegistry('removed-tenant-keys', { defaultMetrics: false });
  writes = trackingWrites(new RedisCacheStore(redis.client, { keyPrefix: redis.prefix }));
  cache = createResponseCache({
    store: writes.store,
    l1MaxBytes: 1,
    registry,
    logger: createLogger({ service: 'test', level: 'error' }),
  });
  gateway = await startTestGateway({}, { stages: [createCacheStage(cache)] });
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

describe('a deleted tenant’s cache keys', () => {
  it('regression: none stays without an expiry when a replica stored a response after the control plane forgot them', async () => {
    const tenantId = await cachingTenant(`gone${randomUUID().slice(0, 8)}`);
    const host = `${gateway.store.get(tenantId)!.subdomain}.localhost`;
    expect((await send(gateway, host, '/c/before')).headers['x-cache']).toBe('MISS');
    await writes.settled();
    expect((await tenantKeys(tenantId)).forever.length).toBeGreaterThan(0);

    // The delete is recorded: the control plane forgets the keys; the tombstone is not here yet.
    await controlPlane.forgetTenant(tenantId);
    expect((await tenantKeys(tenantId)).forever).toEqual([]);
    expect((await send(gateway, host, '/c/meanwhile')).headers['x-cache']).toBe('MISS');
    await writes.settled();

    // The tombstone arrives.
    expect(gateway.store.remove(tenantId)).toBe(true);
    await vi.waitFor(async () => expect((await tenantKeys(tenantId)).forever).toEqual([]));
  });

  it('regression: none outlives the tenant for the years its origin said to keep its responses', async () => {
    const tenantId = await cachingTenant(`gone${randomUUID().slice(0, 8)}`);
    const host = `${gateway.store.get(tenantId)!.subdomain}.localhost`;
    const stored = async (path: string, headers: Record<string, string> = {}) => {
      expect((await send(gateway, host, path, { headers })).headers['x-cache']).toBe('MISS');
      await writes.settled();
      expect((await send(gateway, host, path, { headers })).headers['x-cache']).toBe('HIT');
    };
    await stored('/long/plain');
    await stored('/long/varying', { 'accept-language': 'de' });
    await stored('/long/varying', { 'accept-language': 'fr' });
    expect((await longLived(tenantId)).length).toBeGreaterThan(0);

    // The delete is recorded: the control plane forgets the tenant's keys; the tombstone is not here yet.
    await controlPlane.forgetTenant(tenantId);
    expect(await longLived(tenantId)).toEqual([]);
    await stored('/long/meanwhile');

    // The tombstone arrives.
    expect(gateway.store.remove(tenantId)).toBe(true);
    await vi.waitFor(async () => expect(await longLived(tenantId)).toEqual([]));
  });

  it('regression: a fill under way when the tombstone arrives stores nothing of the tenant', async () => {
    const tenantId = await cachingTenant(`gone${randomUUID().slice(0, 8)}`);
    const host = `${gateway.store.get(tenantId)!.subdomain}.localhost`;
    const arrived = new Promise<void>((resolve) => {
      slowRequestArrived = resolve;
    });
    const response = send(gateway, host, '/slow/page');
    await arrived;

    await controlPlane.forgetTenant(tenantId);
    expect(gateway.store.remove(tenantId)).toBe(true);
    releaseSlowBody();
    // The client still gets the response it asked for before the delete reached this replica.
    const answered = await response;
    expect(answered.status).toBe(200);
    expect(answered.text).toBe('first half, second half');
    await writes.settled();

    await vi.waitFor(async () => expect(await tenantKeys(tenantId)).toEqual({ expiring: [], forever: [] }));
  });
});
