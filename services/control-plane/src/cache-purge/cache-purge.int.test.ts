import { pathTags } from '@vantageedge/shared/cache-purge/path-prefix';
import {
  CACHE_SOFT_PURGED_TAGS_MAX,
  type CachePurgeMessage,
  generationKey,
  parseGenerations,
  parsePurgeMessage,
  purgeChannel,
  tagIndexKey,
  tenantKeyspace,
} from '@vantageedge/shared/cache-purge/purge-protocol';
import { createRedisCachePurger } from '@vantageedge/shared/cache-purge/redis-cache-purger';
import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

// The purge endpoints through the real admin API, with the Redis purge protocol
// (@vantageedge/shared/cache-purge): a purge bumps the route's or tenant's generation and is published
// on the purge channel, as a listening replica sees it. That a gateway replica receiving it drops its
// cached responses is proven on the gateway side (services/gateway/src/cache/purge-protocol.int.test.ts).

const keyPrefix = `ve-test-purge-${uniqueSuffix()}:`;
let cp: ControlPlaneHarness;
let cpWithoutCache: ControlPlaneHarness;
let purgerRedis: RedisClient;
let listener: RedisClient;
const received: CachePurgeMessage[] = [];
/** The routes whose generation the control plane dropped, in order. */
const forgotten: string[] = [];

beforeAll(async () => {
  purgerRedis = createRedisClient({ url: TEST_INFRA.redisUrl, commandTimeoutMs: 1_000, name: 'purger' });
  listener = createRedisClient({ url: TEST_INFRA.redisUrl, commandTimeoutMs: 1_000, name: 'replica' });
  await Promise.all([whenReady(purgerRedis), whenReady(listener)]);
  listener.on('message', (_channel: string, text: string) => {
    const message = parsePurgeMessage(text);
    if (message) received.push(message);
  });
  await listener.subscribe(purgeChannel(keyPrefix));
  const purger = createRedisCachePurger(purgerRedis, keyPrefix);
  cp = await startControlPlane({
    withReadSide: true,
    cachePurger: {
      ...purger,
      async forgetRoute(tenantId, routeId) {
        forgotten.push(routeId);
        await purger.forgetRoute(tenantId, routeId);
      },
    },
  });
  cpWithoutCache = await startControlPlane();
});

afterAll(async () => {
  await cp?.close();
  await cpWithoutCache?.close();
  if (purgerRedis) {
    const keys = await purgerRedis.keys(`${keyPrefix}*`);
    if (keys.length > 0) await purgerRedis.del(...keys);
    purgerRedis.disconnect();
  }
  listener?.disconnect();
});

/** The purge message a replica listening on the channel receives for this tenant. */
async function receivedFor(tenantId: string): Promise<CachePurgeMessage | undefined> {
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline) {
    const message = received.find((m) => m.kind !== 'path' && m.tenantId === tenantId);
    if (message) return message;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return undefined;
}

/** The first `count` purge messages for this tenant (in any order: several purges of one request). */
async function receivedAllFor(tenantId: string, count: number): Promise<CachePurgeMessage[]> {
  const deadline = Date.now() + 5_000;
  const forTenant = () => received.filter((m) => m.kind !== 'path' && m.tenantId === tenantId);
  while (Date.now() < deadline && forTenant().length < count) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return forTenant();
}

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

describe('cache purge through the admin API', () => {
  it('POST /routes/:id/cache/purge bumps that route’s generation, tells every replica and records CachePurgeRequested', async () => {
    const { tenantId, routeId } = await createTenantWithRoute(cp, `purge${uniqueSuffix()}`);

    const response = await cp.request('POST', `/api/v1/routes/${routeId}/cache/purge`);
    expect(response.status).toBe(200);
    expect(json(response)).toMatchObject({ tenant_id: tenantId, route_id: routeId });
    expect(response.headers.get('x-event-position')).toMatch(/^\d+$/);

    expect(await receivedFor(tenantId)).toEqual({ kind: 'route', tenantId, routeId, generation: 1 });
    const generations = parseGenerations(await purgerRedis.hgetall(generationKey(keyPrefix, tenantId)));
    expect(generations.routes.get(routeId)).toBe(1);
    expect(generations.tenant).toBe(0);

    const purges = (await cp.allEvents()).filter((event) => event.type === 'CachePurgeRequested');
    expect(purges).toHaveLength(1);
    expect(purges[0]?.data).toEqual({ tenant_id: tenantId, route_id: routeId });
    expect(purges[0]?.metadata.actor).toBe('user_platformadmin');
  });

  it('POST /tenants/:id/cache/purge purges the whole tenant', async () => {
    const { tenantId } = await createTenantWithRoute(cp, `purget${uniqueSuffix()}`);
    expect((await cp.request('POST', `/api/v1/tenants/${tenantId}/cache/purge`)).status).toBe(200);
    expect(await receivedFor(tenantId)).toEqual({ kind: 'tenant', tenantId, generation: 1 });
    const generations = parseGenerations(await purgerRedis.hgetall(generationKey(keyPrefix, tenantId)));
    expect(generations.tenant).toBe(1);
  });

  it('POST /tenants/:id/cache/purge {"tags": […]} drops the tagged entries from Redis, tells every replica and records the tags', async () => {
    const { tenantId } = await createTenantWithRoute(cp, `purgetag${uniqueSuffix()}`);
    const tagged = tagIndexKey(keyPrefix, tenantId, 'product-7');
    const entryKey = `${tenantKeyspace(keyPrefix, tenantId)}0:r:0:p:v`;
    await purgerRedis.set(entryKey, 'entry', 'PX', 60_000);
    await purgerRedis.sadd(tagged, entryKey);
    const response = await cp.request('POST', `/api/v1/tenants/${tenantId}/cache/purge`, {
      body: { tags: ['product-7', 'catalog'] },
    });
    expect(response.status).toBe(200);
    expect(json(response)).toMatchObject({
      tenant_id: tenantId,
      route_id: null,
      tags: ['product-7', 'catalog'],
    });
    expect(await receivedFor(tenantId)).toEqual({ kind: 'tags', tenantId, tags: ['product-7', 'catalog'] });
    expect(await purgerRedis.exists(entryKey, tagged)).toBe(0);
    // No generation moved: only the tagged entries went.
    expect(parseGenerations(await purgerRedis.hgetall(generationKey(keyPrefix, tenantId))).tenant).toBe(0);
    const purges = (await cp.allEvents()).filter(
      (event) =>
        event.type === 'CachePurgeRequested' && (event.data as { tenant_id: string }).tenant_id === tenantId,
    );
    expect(purges.map((event) => event.data)).toEqual([
      { tenant_id: tenantId, route_id: null, tags: ['product-7', 'catalog'], soft: false },
    ]);
  });

  it('a soft purge by tag keeps the entries and records when the tags went stale', async () => {
    const { tenantId } = await createTenantWithRoute(cp, `purgesoft${uniqueSuffix()}`);
    const tagged = tagIndexKey(keyPrefix, tenantId, 'product-8');
    const entryKey = `${tenantKeyspace(keyPrefix, tenantId)}0:r:0:p:v`;
    await purgerRedis.set(entryKey, 'entry', 'PX', 60_000);
    await purgerRedis.sadd(tagged, entryKey);
    const before = Date.now();
    const response = await cp.request('POST', `/api/v1/tenants/${tenantId}/cache/purge`, {
      body: { tags: ['product-8'], soft: true },
    });
    expect(response.status).toBe(200);
    expect(json(response)).toMatchObject({ tags: ['product-8'], soft: true });
    const message = await receivedFor(tenantId);
    expect(message).toMatchObject({ kind: 'tags', tenantId, tags: ['product-8'] });
    const softAt = (message as { softAt: number }).softAt;
    expect(softAt).toBeGreaterThanOrEqual(before);
    expect(await purgerRedis.exists(entryKey, tagged)).toBe(2);
    const generations = parseGenerations(await purgerRedis.hgetall(generationKey(keyPrefix, tenantId)));
    expect(generations.softTags.get('product-8')).toBe(softAt);
  });

  it("a soft purge past the tenant's soft-purged tags bound is 422 limit_exceeded, purging and appending nothing", async () => {
    const { tenantId } = await createTenantWithRoute(cp, `purgesoftfull${uniqueSuffix()}`);
    const key = generationKey(keyPrefix, tenantId);
    const held = Array.from({ length: CACHE_SOFT_PURGED_TAGS_MAX }, (_, i) => [`tag:h${i}`, 1]);
    await purgerRedis.hset(key, Object.fromEntries(held));
    const before = (await cp.allEvents()).length;
    const response = await cp.request('POST', `/api/v1/tenants/${tenantId}/cache/purge`, {
      body: { tags: ['fresh'], soft: true },
    });
    expect(response.status, JSON.stringify(response.body)).toBe(422);
    expect(json(response)['error']).toMatchObject({
      code: 'limit_exceeded',
      details: [expect.objectContaining({ field: 'tags' })],
    });
    expect(parseGenerations(await purgerRedis.hgetall(key)).softTags.size).toBe(CACHE_SOFT_PURGED_TAGS_MAX);
    expect((await cp.allEvents()).length).toBe(before);
  });

  it('a soft purge of tags and prefixes refused by the soft-purged tags bound soft-purges neither', async () => {
    const { tenantId } = await createTenantWithRoute(cp, `purgesoftboth${uniqueSuffix()}`);
    const key = generationKey(keyPrefix, tenantId);
    const held = Array.from({ length: CACHE_SOFT_PURGED_TAGS_MAX - 1 }, (_, i) => [`tag:h${i}`, 1]);
    await purgerRedis.hset(key, Object.fromEntries(held));
    const before = (await cp.allEvents()).length;
    const response = await cp.request('POST', `/api/v1/tenants/${tenantId}/cache/purge`, {
      body: { tags: ['fresh'], prefixes: ['/products'], soft: true },
    });
    expect(response.status, JSON.stringify(response.body)).toBe(422);
    expect(json(response)['error']).toMatchObject({ code: 'limit_exceeded' });
    expect(await purgerRedis.hexists(key, 'tag:fresh')).toBe(0);
    expect(parseGenerations(await purgerRedis.hgetall(key)).softTags.size).toBe(
      CACHE_SOFT_PURGED_TAGS_MAX - 1,
    );
    expect((await cp.allEvents()).length).toBe(before);
  });

  it('a soft purge naming a tag twice counts it once against the soft-purged tags bound', async () => {
    const { tenantId } = await createTenantWithRoute(cp, `purgesofttwice${uniqueSuffix()}`);
    const key = generationKey(keyPrefix, tenantId);
    const held = Array.from({ length: CACHE_SOFT_PURGED_TAGS_MAX - 1 }, (_, i) => [`tag:h${i}`, 1]);
    await purgerRedis.hset(key, Object.fromEntries(held));
    const response = await cp.request('POST', `/api/v1/tenants/${tenantId}/cache/purge`, {
      body: { tags: ['fresh', 'fresh'], soft: true },
    });
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    expect(await purgerRedis.hexists(key, 'tag:fresh')).toBe(1);
  });

  it('refuses malformed tag lists with 400 and the field, appending nothing', async () => {
    const { tenantId } = await createTenantWithRoute(cp, `purgebad${uniqueSuffix()}`);
    const before = (await cp.allEvents()).length;
    for (const body of [
      { tags: [] },
      { tags: ['two words'] },
      { soft: true },
      { tags: ['a,b'] },
      { tags: 'x' },
      { tag: ['x'] },
    ]) {
      const response = await cp.request('POST', `/api/v1/tenants/${tenantId}/cache/purge`, { body });
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(json(response)['error']).toMatchObject({
        details: [expect.objectContaining({ field: expect.any(String) })],
      });
    }
    expect((await cp.allEvents()).length).toBe(before);
  });

  it('POST /tenants/:id/cache/purge {"prefixes": […]} drops the entries below the prefixes, tells every replica and records the prefixes', async () => {
    const { tenantId } = await createTenantWithRoute(cp, `purgepre${uniqueSuffix()}`);
    const productsTag = pathTags('/products/1')[0]!;
    const below = tagIndexKey(keyPrefix, tenantId, productsTag);
    const entryKey = `${tenantKeyspace(keyPrefix, tenantId)}0:r:0:p:v`;
    await purgerRedis.set(entryKey, 'entry', 'PX', 60_000);
    await purgerRedis.sadd(below, entryKey);
    const response = await cp.request('POST', `/api/v1/tenants/${tenantId}/cache/purge`, {
      body: { prefixes: ['/products/', '/img/%32026'], tags: ['catalog'] },
    });
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    expect(json(response)).toMatchObject({
      tenant_id: tenantId,
      prefixes: ['/products', '/img/2026'],
      tags: ['catalog'],
      soft: false,
    });
    const messages = await receivedAllFor(tenantId, 2);
    expect(messages).toContainEqual({ kind: 'tags', tenantId, tags: ['catalog'] });
    expect(messages).toContainEqual({
      kind: 'tags',
      tenantId,
      tags: [productsTag, pathTags('/img/2026/a.png')[1]],
    });
    expect(await purgerRedis.exists(entryKey, below)).toBe(0);
    const purges = (await cp.allEvents()).filter(
      (event) =>
        event.type === 'CachePurgeRequested' && (event.data as { tenant_id: string }).tenant_id === tenantId,
    );
    expect(purges.map((event) => event.data)).toEqual([
      {
        tenant_id: tenantId,
        route_id: null,
        tags: ['catalog'],
        prefixes: ['/products', '/img/2026'],
        soft: false,
      },
    ]);
  });

  it('a soft purge by prefix keeps the entries and records when their path went stale', async () => {
    const { tenantId } = await createTenantWithRoute(cp, `purgepresoft${uniqueSuffix()}`);
    const productsTag = pathTags('/products')[0]!;
    const below = tagIndexKey(keyPrefix, tenantId, productsTag);
    const entryKey = `${tenantKeyspace(keyPrefix, tenantId)}0:r:0:p:v`;
    await purgerRedis.set(entryKey, 'entry', 'PX', 60_000);
    await purgerRedis.sadd(below, entryKey);
    const response = await cp.request('POST', `/api/v1/tenants/${tenantId}/cache/purge`, {
      body: { prefixes: ['/products'], soft: true },
    });
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    expect(json(response)).toMatchObject({ prefixes: ['/products'], soft: true });
    const message = await receivedFor(tenantId);
    expect(message).toMatchObject({ kind: 'tags', tenantId, tags: [productsTag] });
    expect(await purgerRedis.exists(entryKey, below)).toBe(2);
    const generations = parseGenerations(await purgerRedis.hgetall(generationKey(keyPrefix, tenantId)));
    expect(generations.softTags.get(productsTag)).toBe((message as { softAt: number }).softAt);
  });

  it('refuses malformed prefix lists with 400 naming the prefix, purging and appending nothing', async () => {
    const { tenantId } = await createTenantWithRoute(cp, `purgeprebad${uniqueSuffix()}`);
    const before = (await cp.allEvents()).length;
    const cases: [unknown, string][] = [
      [{ prefixes: [] }, 'prefixes'],
      [{ prefixes: '/products' }, 'prefixes'],
      [{ prefixes: ['/ok', '/fine', 'products/'] }, 'prefixes.2'],
      [{ prefixes: ['/a/../b'] }, 'prefixes.0'],
      [{ prefixes: ['/a//b'] }, 'prefixes.0'],
      [{ prefixes: ['/a%2Fb'] }, 'prefixes.0'],
      [{ prefixes: ['/a%zz'] }, 'prefixes.0'],
      [{ prefixes: ['/a?x=1'] }, 'prefixes.0'],
      [{ prefixes: ['/'] }, 'prefixes.0'],
      [{ prefixes: ['/1/2/3/4/5/6/7/8/9'] }, 'prefixes.0'],
      [{ prefixes: [`/${'a'.repeat(1024)}`] }, 'prefixes.0'],
      [{ prefixes: Array.from({ length: 65 }, (_, i) => `/p${i}`) }, 'prefixes'],
      [{ prefixes: [''] }, 'prefixes.0'],
      [{ prefixes: [7] }, 'prefixes.0'],
    ];
    for (const [body, field] of cases) {
      const response = await cp.request('POST', `/api/v1/tenants/${tenantId}/cache/purge`, { body });
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(json(response)['error'], JSON.stringify(body)).toMatchObject({
        code: 'validation_failed',
        details: [{ field, issue: expect.any(String) }],
      });
    }
    expect((await cp.allEvents()).length).toBe(before);
    expect(received.some((message) => message.kind !== 'path' && message.tenantId === tenantId)).toBe(false);
  });

  it('a tenant admin cannot purge another tenant’s paths, purging and appending nothing', async () => {
    const { tenantId } = await createTenantWithRoute(cp, `purgepreo${uniqueSuffix()}`);
    const before = (await cp.allEvents()).length;
    const outsider = await cp.token({ userId: 'user_outsider', orgId: 'org_nobody', orgRole: 'admin' });
    const response = await cp.request('POST', `/api/v1/tenants/${tenantId}/cache/purge`, {
      token: outsider,
      body: { prefixes: ['/products'] },
    });
    expect(response.status).toBe(404);
    expect(json(response)).toMatchObject({ error: { code: 'not_found' } });
    expect((await cp.allEvents()).length).toBe(before);
    expect(received.some((message) => message.kind !== 'path' && message.tenantId === tenantId)).toBe(false);
  });

  it('refuses another tenant’s route as an unknown route, appending nothing', async () => {
    const { routeId } = await createTenantWithRoute(cp, `purgeo${uniqueSuffix()}`);
    const before = (await cp.allEvents()).length;
    const outsider = await cp.token({ userId: 'user_outsider', orgId: 'org_nobody', orgRole: 'admin' });
    const hidden = await cp.request('POST', `/api/v1/routes/${routeId}/cache/purge`, { token: outsider });
    expect(hidden.status).toBe(404);
    const unknown = await cp.request(
      'POST',
      '/api/v1/routes/00000000-0000-4000-8000-000000000000/cache/purge',
      { token: outsider },
    );
    expect(unknown.status).toBe(404);
    expect(json(hidden)).toEqual(json(unknown));
    expect((await cp.allEvents()).length).toBe(before);
  });

  // Regression test: the purge looked at "deleted" before access, so another tenant's admin told a
  // deleted route from a live one.
  it('refuses another tenant’s deleted route as its live ones', async () => {
    const { routeId } = await createTenantWithRoute(cp, `purged${uniqueSuffix()}`);
    expect((await cp.request('DELETE', `/api/v1/routes/${routeId}`)).status).toBe(204);
    const outsider = await cp.token({ userId: 'user_outsider', orgId: 'org_nobody', orgRole: 'admin' });
    const response = await cp.request('POST', `/api/v1/routes/${routeId}/cache/purge`, { token: outsider });
    expect(response.status).toBe(404);
    expect(json(response)).toMatchObject({ error: { code: 'not_found', message: 'route not found' } });
    // Its own tenant's admin learns it is gone.
    expect((await cp.request('POST', `/api/v1/routes/${routeId}/cache/purge`)).status).toBe(404);
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

describe('purge generations of deleted routes', () => {
  it('a route deleted leaves no field in the generation hash: route churn does not grow the shared Redis', async () => {
    const { tenantId } = await createTenantWithRoute(cp, `purgechurn${uniqueSuffix()}`);
    const origin = json(
      await cp.request('POST', '/api/v1/origins', {
        body: { tenant_id: tenantId, name: 'churn', url: 'http://127.0.0.1:9' },
      }),
    );
    const churned: string[] = [];
    for (let i = 0; i < 5; i++) {
      const route = json(
        await cp.request('POST', '/api/v1/routes', {
          body: {
            tenant_id: tenantId,
            origin_id: origin['id'],
            path_pattern: `/churn${i}/*`,
            auth_mode: 'public',
          },
        }),
      );
      const routeId = String(route['id']);
      churned.push(routeId);
      expect((await cp.request('POST', `/api/v1/routes/${routeId}/cache/purge`)).status).toBe(200);
      expect((await cp.request('DELETE', `/api/v1/routes/${routeId}`)).status).toBe(204);
    }
    const fields = await purgerRedis.hkeys(generationKey(keyPrefix, tenantId));
    expect(fields.filter((field) => churned.includes(field))).toEqual([]);
    expect(fields.length).toBeLessThanOrEqual(1);
  });
  // Regression: a route purge checked the route was live, then bumped its generation: a delete landing
  // in between (its field forgotten first) left the deleted route's field in the hash for good, so a
  // tenant racing purges with deletes grew the shared Redis again.
  it('a route deleted while its purge runs leaves no field in the generation hash', async () => {
    const real = createRedisCachePurger(purgerRedis, keyPrefix);
    let deleted: () => void = () => {};
    const deleteDone = new Promise<void>((resolve) => {
      deleted = resolve;
    });
    let purgeStarted: () => void = () => {};
    const purging = new Promise<void>((resolve) => {
      purgeStarted = resolve;
    });
    const racing = await startControlPlane({
      cachePurger: {
        ...real,
        async purgeRoute(tenantId, routeId) {
          purgeStarted();
          await deleteDone;
          await real.purgeRoute(tenantId, routeId);
        },
      },
    });
    try {
      const { tenantId, routeId } = await createTenantWithRoute(racing, `purgerace${uniqueSuffix()}`);
      const purge = racing.request('POST', `/api/v1/routes/${routeId}/cache/purge`);
      await purging;
      expect((await racing.request('DELETE', `/api/v1/routes/${routeId}`)).status).toBe(204);
      deleted();
      expect((await purge).status).toBeLessThan(500);
      expect(await purgerRedis.hexists(generationKey(keyPrefix, tenantId), routeId)).toBe(0);
    } finally {
      await racing.close();
    }
  });
  // Regression: the apply's rehearsal ran its delete steps with the real purger, so a route was
  // forgotten before the apply had deleted anything (a real run refused after it left the live route
  // at generation 0, where the entries of before its last purge are).
  it('a config apply forgets a deleted route’s generation once; a rollback restoring it purges it again', async () => {
    const { tenantId, routeId } = await createTenantWithRoute(cp, `purgeapply${uniqueSuffix()}`);
    const purged = await cp.request('POST', `/api/v1/routes/${routeId}/cache/purge`);
    expect(purged.status).toBe(200);
    const generations = generationKey(keyPrefix, tenantId);
    const purgedAt = Number(await purgerRedis.hget(generations, routeId));
    const config = `/api/v1/tenants/${tenantId}/config`;
    const read = await cp.request('GET', `${config}/document`, {
      headers: { 'x-min-position': purged.headers.get('x-event-position') ?? '' },
    });
    expect(read.status, JSON.stringify(read.body)).toBe(200);
    const document = json(read)['document'] as { routes: object[] };
    document.routes = [];
    const applied = await cp.request('POST', `${config}/apply`, { body: document });
    expect(applied.status, JSON.stringify(applied.body)).toBe(200);
    expect(forgotten.filter((id) => id === routeId)).toEqual([routeId]);
    expect(await purgerRedis.hexists(generations, routeId)).toBe(0);
    // Back under its old id, the route is above every generation it had: what it stored before its
    // purge (or after it) is not served again.
    const rolledBack = await cp.request('POST', `${config}/rollback`, {
      body: { to_position: purged.headers.get('x-event-position') },
    });
    expect(rolledBack.status, JSON.stringify(rolledBack.body)).toBe(200);
    expect(Number(await purgerRedis.hget(generations, routeId))).toBeGreaterThan(purgedAt);
  });
});
