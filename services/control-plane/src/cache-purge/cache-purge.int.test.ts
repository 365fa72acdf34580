// A real gateway response cache (a devDependency) proves that a purge sent by the control plane
// reaches a replica; the control plane itself only speaks the shared purge protocol.
import {
  compileCachePolicy,
  createResponseCache,
  RedisCacheStore,
  type ResponseCache,
} from '@vantageedge/gateway/cache/index';
import { createRedisCachePurger } from '@vantageedge/shared/cache-purge/redis-cache-purger';
import { cachePolicy, routeConfig } from '@vantageedge/shared/domain/gateway-config';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

// The purge endpoints through the real admin API, with the Redis purge protocol: a purge sent by the
// control plane must empty a gateway replica's cache (its L1 included) for that route only.

const logger = createLogger({ service: 'cache-purge-test', level: 'error' });
const keyPrefix = `ve-test-purge-${uniqueSuffix()}:`;
let cp: ControlPlaneHarness;
let cpWithoutCache: ControlPlaneHarness;
let replica: ResponseCache;
const clients: RedisClient[] = [];

function redis(name: string): RedisClient {
  const client = createRedisClient({ url: TEST_INFRA.redisUrl, commandTimeoutMs: 1_000, name });
  clients.push(client);
  return client;
}

beforeAll(async () => {
  const purgerRedis = redis('purger');
  const replicaRedis = redis('replica');
  await Promise.all([whenReady(purgerRedis), whenReady(replicaRedis)]);
  const purger = createRedisCachePurger(purgerRedis, keyPrefix);
  replica = createResponseCache({
    store: new RedisCacheStore(replicaRedis, { keyPrefix }),
    l1MaxBytes: 1_000_000,
    registry: createMetricsRegistry('replica', { defaultMetrics: false }),
    logger,
  });
  cp = await startControlPlane({ cachePurger: purger });
  cpWithoutCache = await startControlPlane();
});

afterAll(async () => {
  await replica?.close();
  await cp?.close();
  await cpWithoutCache?.close();
  for (const client of clients) client.disconnect();
});

async function createTenantWithRoute(harness: ControlPlaneHarness, subdomain: string) {
  const tenant = json(
    await harness.request('POST', '/api/v1/tenants', { body: { name: subdomain, subdomain } }),
  );
  const origin = json(
    await harness.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenant['id'], name: 'o', url: 'http://127.0.0.1:9' },
    }),
  );
  const routeResponse = await harness.request('POST', '/api/v1/routes', {
    body: {
      tenant_id: tenant['id'],
      origin_id: origin['id'],
      path_pattern: '/posts/*',
      auth_mode: 'public',
      cache_policy: { enabled: true, ttl_seconds: 300, cache_key_pattern: 'path' },
    },
  });
  expect(routeResponse.status).toBe(201);
  return { tenantId: String(tenant['id']), routeId: String(json(routeResponse)['id']) };
}

async function fillReplica(
  tenantId: string,
  routeId: string,
): Promise<ReturnType<typeof compileCachePolicy>> {
  const policy = compileCachePolicy(
    tenantId,
    routeConfig.parse({
      id: routeId,
      origin_id: routeId,
      path_pattern: '/posts/*',
      auth_mode: 'public',
      cache_policy: cachePolicy.parse({ ttl_seconds: 300, cache_key_pattern: 'path' }),
    }),
  );
  if (!policy) throw new Error('route has no cache policy');
  await replica.prepareTenant(tenantId);
  const request = { method: 'GET', path: '/posts/1', query: '', headers: {} };
  const miss = await replica.lookup(policy, request, {});
  expect(miss.outcome).toBe('MISS');
  if (miss.outcome !== 'MISS' || !miss.fill) throw new Error('expected to lead the fill');
  await replica.store(miss.fill, 'GET', { status: 200, headers: {}, body: Buffer.from('{"id":1}') });
  expect((await replica.lookup(policy, request, {})).outcome).toBe('HIT');
  return policy;
}

describe('cache purge through the admin API', () => {
  it('POST /routes/:id/cache/purge empties that route on a gateway replica and records CachePurgeRequested', async () => {
    const { tenantId, routeId } = await createTenantWithRoute(cp, `purge${uniqueSuffix()}`);
    const policy = await fillReplica(tenantId, routeId);

    const response = await cp.request('POST', `/api/v1/routes/${routeId}/cache/purge`);
    expect(response.status).toBe(200);
    expect(json(response)).toMatchObject({ tenant_id: tenantId, route_id: routeId });
    expect(response.headers.get('x-event-position')).toMatch(/^\d+$/);

    // The purge travels over pub/sub; the replica's next lookup of the key must miss.
    const deadline = Date.now() + 5_000;
    let outcome = 'HIT';
    while (Date.now() < deadline) {
      outcome = (
        await replica.lookup(policy!, { method: 'GET', path: '/posts/1', query: '', headers: {} }, {})
      ).outcome;
      if (outcome === 'MISS') break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(outcome).toBe('MISS');

    const purges = (await cp.allEvents()).filter((event) => event.type === 'CachePurgeRequested');
    expect(purges).toHaveLength(1);
    expect(purges[0]?.data).toEqual({ tenant_id: tenantId, route_id: routeId });
    expect(purges[0]?.metadata.actor).toBe('user_platformadmin');
  });

  it('POST /tenants/:id/cache/purge purges the whole tenant', async () => {
    const { tenantId, routeId } = await createTenantWithRoute(cp, `purget${uniqueSuffix()}`);
    const policy = await fillReplica(tenantId, routeId);
    expect((await cp.request('POST', `/api/v1/tenants/${tenantId}/cache/purge`)).status).toBe(200);
    const deadline = Date.now() + 5_000;
    let outcome = 'HIT';
    while (Date.now() < deadline && outcome !== 'MISS') {
      outcome = (
        await replica.lookup(policy!, { method: 'GET', path: '/posts/1', query: '', headers: {} }, {})
      ).outcome;
      if (outcome !== 'MISS') await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(outcome).toBe('MISS');
  });

  it('refuses another tenant’s route and unknown routes, appending nothing', async () => {
    const { routeId } = await createTenantWithRoute(cp, `purgeo${uniqueSuffix()}`);
    const before = (await cp.allEvents()).length;
    const outsider = await cp.token({ userId: 'user_outsider', orgId: 'org_nobody', orgRole: 'admin' });
    expect(
      (await cp.request('POST', `/api/v1/routes/${routeId}/cache/purge`, { token: outsider })).status,
    ).toBe(403);
    const unknown = await cp.request(
      'POST',
      '/api/v1/routes/00000000-0000-4000-8000-000000000000/cache/purge',
    );
    expect(unknown.status).toBe(404);
    expect((await cp.allEvents()).length).toBe(before);
  });

  it('answers 503 cache_purge_unavailable without a cache to purge, appending nothing', async () => {
    const { routeId } = await createTenantWithRoute(cpWithoutCache, `purgen${uniqueSuffix()}`);
    const before = (await cpWithoutCache.allEvents()).length;
    const response = await cpWithoutCache.request('POST', `/api/v1/routes/${routeId}/cache/purge`);
    expect(response.status).toBe(503);
    expect(json(response)['error']).toMatchObject({ code: 'cache_purge_unavailable' });
    expect((await cpWithoutCache.allEvents()).length).toBe(before);
  });
});
