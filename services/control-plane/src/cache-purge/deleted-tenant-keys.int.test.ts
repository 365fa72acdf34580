import { tenantKeyspace } from '@vantageedge/shared/cache-purge/purge-protocol';
import { createRedisCachePurger } from '@vantageedge/shared/cache-purge/redis-cache-purger';
import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { scanKeys } from '@vantageedge/shared/testing/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * Regression test: a deleted tenant's keys without a TTL — its purge generations (up to 10,000
 * soft-purged tags) and its cache's accounting (one member per entry it ever held, up to its byte
 * bound) — stayed in the shared Redis for ever. `volatile-lru` never evicts them, so every deleted
 * tenant left memory the live tenants' counters and entries were then evicted to make room for.
 */
const keyPrefix = `ve-test-deleted-tenant-${uniqueSuffix()}:`;
let cp: ControlPlaneHarness;
let redis: RedisClient;

beforeAll(async () => {
  redis = createRedisClient({ url: TEST_INFRA.redisUrl, commandTimeoutMs: 1_000, name: 'deleted-tenant' });
  await whenReady(redis);
  cp = await startControlPlane({ cachePurger: createRedisCachePurger(redis, keyPrefix) });
});

afterAll(async () => {
  await cp?.close();
  if (redis) {
    const keys = await redis.keys(`${keyPrefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  }
});

/** The tenant's keys in Redis that never expire. */
async function keysWithoutExpiry(tenantId: string): Promise<string[]> {
  const found: string[] = [];
  for (const key of await scanKeys(redis, `${tenantKeyspace(keyPrefix, tenantId)}*`))
    if ((await redis.pttl(key)) === -1) found.push(key);
  return found.sort();
}

describe('deleting a tenant', () => {
  it('leaves none of its cache keys without an expiry in the shared Redis', async () => {
    const subdomain = `gone${uniqueSuffix()}`;
    const tenant = json(
      await cp.request('POST', '/api/v1/tenants', { body: { name: subdomain, subdomain } }),
    );
    const tenantId = String(tenant['id']);
    const soft = await cp.request('POST', `/api/v1/tenants/${tenantId}/cache/purge`, {
      body: { tags: ['product-1', 'product-2'], soft: true },
    });
    expect(soft.status).toBe(200);
    // What a gateway's cache leaves under the tenant's hash tag (docs/cache.md, "Accounting, in Redis"):
    // entries expire, their accounting does not.
    const keyspace = tenantKeyspace(keyPrefix, tenantId);
    const entry = `${keyspace}0:r:0:p:v`;
    await redis
      .multi()
      .set(entry, 'x', 'PX', 60_000)
      .zadd(`${keyspace}bound:lru`, 1, entry)
      .hset(`${keyspace}bound:sizes`, entry, 300)
      .set(`${keyspace}bound:bytes`, 300)
      .hset(`${keyspace}bound:lists`, entry, `p${keyspace}0:r:0:p:idx`)
      .exec();
    expect(await keysWithoutExpiry(tenantId)).toHaveLength(5);

    expect((await cp.request('DELETE', `/api/v1/tenants/${tenantId}`)).status).toBe(204);

    expect(await keysWithoutExpiry(tenantId)).toEqual([]);
  });

  // Regression: a purge checked the tenant was live, then bumped its generation: a delete landing in
  // between (its keys forgotten first) left the deleted tenant's generation hash in Redis for good.
  it.each([
    ['the whole tenant', {}],
    ['soft, by tag', { tags: ['product-1'], soft: true }],
  ])('leaves none of them behind when the tenant is deleted while a purge of %s runs', async (_, body) => {
    const real = createRedisCachePurger(redis, keyPrefix);
    let deleted: () => void = () => {};
    const deleteDone = new Promise<void>((resolve) => {
      deleted = resolve;
    });
    let purgeStarted: () => void = () => {};
    const purging = new Promise<void>((resolve) => {
      purgeStarted = resolve;
    });
    const afterTheDelete = async <T>(purge: () => Promise<T>): Promise<T> => {
      purgeStarted();
      await deleteDone;
      return purge();
    };
    const racing = await startControlPlane({
      cachePurger: {
        ...real,
        purgeTenant: (tenantId) => afterTheDelete(() => real.purgeTenant(tenantId)),
        purgeTags: (tenantId, tags, options) => afterTheDelete(() => real.purgeTags(tenantId, tags, options)),
      },
    });
    try {
      const subdomain = `purgerace${uniqueSuffix()}`;
      const tenant = json(
        await racing.request('POST', '/api/v1/tenants', { body: { name: subdomain, subdomain } }),
      );
      const tenantId = String(tenant['id']);
      const purge = racing.request('POST', `/api/v1/tenants/${tenantId}/cache/purge`, { body });
      await purging;
      expect((await racing.request('DELETE', `/api/v1/tenants/${tenantId}`)).status).toBe(204);
      deleted();
      expect((await purge).status).toBeLessThan(500);

      expect(await keysWithoutExpiry(tenantId)).toEqual([]);
    } finally {
      await racing.close();
    }
  });
});
