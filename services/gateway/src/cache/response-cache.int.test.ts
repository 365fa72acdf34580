import { randomUUID } from 'node:crypto';
import {
  type CachePolicy,
  cachePolicy,
  rateLimitPolicy,
  routeConfig,
} from '@vantageedge/shared/domain/gateway-config';
import { compileCachePolicy } from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import { compileRateLimits } from '@vantageedge/shared/gateway-policies/compile-rate-limits';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import { startPrivateRedisServer } from '@vantageedge/shared/redis/private-redis-server';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MemoryLimitStore } from '../ratelimit/memory-limit-store.js';
import { createRateLimiter } from '../ratelimit/rate-limiter.js';
import { RedisLimitStore } from '../ratelimit/redis-limit-store.js';
import { tenantWith } from '../ratelimit/test-fixtures.js';
import { MemoryCacheStore } from './memory-cache-store.js';
import { RedisCacheStore } from './redis-cache-store.js';
import { createResponseCache, type ResponseCache } from './response-cache.js';
import {
  type StageRoute,
  type StagesGateway,
  startStagesGateway,
  startTestOrigin,
  type TestOrigin,
} from './stages.test-harness.js';

/**
 * The cache and rate-limit stages in front of a real origin, through a minimal node:http proxy.
 * Redis mode: three replicas (each its own cache, limiter, Redis connections and listener) sharing the
 * local Redis under a per-file prefix. Memory mode: one process, no Redis. Same behaviour suite.
 */
const logger = createLogger({ service: 'test', level: 'error' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const prefix = `test:cache:${uniqueSuffix()}:`;
const clients: RedisClient[] = [];
let skewMs = 0;
const clock = () => Date.now() + skewMs;

function routeFor(
  tenantId: string,
  policy: Partial<CachePolicy>,
  extra: { auth?: 'public' | 'jwt_required'; routeId?: string; limit?: boolean } = {},
): StageRoute {
  const route = routeConfig.parse({
    id: extra.routeId ?? randomUUID(),
    origin_id: randomUUID(),
    path_pattern: '/*',
    auth_mode: extra.auth ?? 'public',
    cache_policy: cachePolicy.parse(policy),
    rate_limit: extra.limit
      ? rateLimitPolicy.parse({
          requests_per_second: 1,
          algorithm: 'sliding_window',
          window_seconds: 60,
          limit: 3,
          scope: 'user',
        })
      : null,
  });
  return {
    cache: compileCachePolicy(tenantId, route),
    limits: compileRateLimits({ ...tenantWith(null), id: tenantId }, route),
  };
}

interface Replica {
  gateway: StagesGateway;
  cache: ResponseCache;
  registry: ReturnType<typeof createMetricsRegistry>;
}

async function startReplicas(
  count: number,
  origin: TestOrigin,
  routes: Map<string, StageRoute>,
  redisUrl?: string,
): Promise<Replica[]> {
  const replicas: Replica[] = [];
  for (let i = 0; i < count; i++) {
    const redis = redisUrl
      ? createRedisClient({ url: redisUrl, commandTimeoutMs: 1_000, name: `cache-replica-${i}` })
      : undefined;
    if (redis) {
      clients.push(redis);
      await whenReady(redis);
    }
    const registry = createMetricsRegistry(`replica-${i}`, { defaultMetrics: false });
    const cache = createResponseCache({
      store: redis
        ? new RedisCacheStore(redis, { keyPrefix: prefix })
        : new MemoryCacheStore({ maxBytes: 1_000_000 }),
      l1MaxBytes: 1_000_000,
      registry,
      logger,
      now: clock,
    });
    const limiter = createRateLimiter({
      store: redis ? new RedisLimitStore(redis) : new MemoryLimitStore(),
      registry,
      logger,
      keyPrefix: prefix,
    });
    const gateway = await startStagesGateway({
      origin: origin.url,
      cache,
      limiter,
      routes: (tenant) => routes.get(tenant) ?? { cache: null, limits: null },
    });
    replicas.push({ gateway, cache, registry });
  }
  await sleep(50); // purge subscriptions established
  return replicas;
}

async function get(
  replica: Replica,
  tenant: string,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
) {
  const response = await fetch(replica.gateway.url + path, {
    method,
    headers: { 'x-test-tenant': tenant, ...headers },
  });
  const text = await response.text();
  return {
    status: response.status,
    xCache: response.headers.get('x-cache'),
    age: response.headers.get('age'),
    headers: response.headers,
    text,
    json: () => JSON.parse(text) as { n: number; user: string | null; tenant: string | null },
  };
}

afterAll(async () => {
  const cleaner = new Redis(TEST_INFRA.redisUrl);
  const keys = await cleaner.keys(`${prefix}*`);
  if (keys.length > 0) await cleaner.del(...keys);
  cleaner.disconnect();
  for (const client of clients) client.disconnect();
});

for (const mode of ['redis', 'memory'] as const) {
  describe(`response cache stages (${mode})`, () => {
    let origin: TestOrigin;
    let replicas: Replica[];
    let one: Replica;
    const routes = new Map<string, StageRoute>();
    const tenant = (policy: Partial<CachePolicy>, extra: Parameters<typeof routeFor>[2] = {}) => {
      const tenantId = randomUUID();
      routes.set(tenantId, routeFor(tenantId, policy, extra));
      return tenantId;
    };
    const warm = async (tenantId: string) =>
      Promise.all(replicas.map((r) => r.cache.prepareTenant(tenantId)));
    /** Purges of `kind` each replica has applied: its own, and those the others published. */
    const purgesApplied = (kind: 'path' | 'route' | 'tenant') =>
      Promise.all(
        replicas.map(async ({ registry }) => {
          const counter = await registry.getSingleMetric('vantageedge_gateway_cache_purges_total')?.get();
          return counter?.values.find((sample) => sample.labels['kind'] === kind)?.value ?? 0;
        }),
      );
    /** A purge reaches the other replicas through Redis pub/sub, some time after it was published. */
    const untilEveryReplicaApplied = (kind: 'path' | 'route' | 'tenant', before: readonly number[]) =>
      vi.waitFor(
        async () => expect((await purgesApplied(kind)).every((count, i) => count > before[i]!)).toBe(true),
        { timeout: 10_000 },
      );

    beforeAll(async () => {
      origin = await startTestOrigin();
      replicas = await startReplicas(
        mode === 'redis' ? 3 : 1,
        origin,
        routes,
        mode === 'redis' ? TEST_INFRA.redisUrl : undefined,
      );
      one = replicas[0]!;
    });
    afterAll(async () => {
      for (const replica of replicas) {
        await replica.gateway.close();
        await replica.cache.close();
      }
      await origin.close();
    });

    it('MISS then HIT (with Age) on every replica; HEAD is served from the GET entry', async () => {
      const t = tenant({ ttl_seconds: 60 });
      await warm(t);
      const first = await get(one, t, '/items/1');
      expect(first.xCache).toBe('MISS');
      for (const replica of replicas) {
        const again = await get(replica, t, '/items/1');
        expect(again.xCache).toBe('HIT');
        expect(again.age).toMatch(/^\d+$/);
        expect(again.json().n).toBe(1);
      }
      const head = await get(one, t, '/items/1', {}, 'HEAD');
      expect(head.xCache).toBe('HIT');
      expect(head.text).toBe('');
      expect(origin.hits('/items/1')).toBe(1);
      const metrics = await one.registry.metrics();
      const route = routes.get(t)!.cache!.routeId;
      expect(metrics).toContain(
        `vantageedge_gateway_cache_lookups_total{tenant="${t}",route="${route}",outcome="MISS",service="replica-0"} 1`,
      );
      expect(metrics).toContain(
        `vantageedge_gateway_cache_lookups_total{tenant="${t}",route="${route}",outcome="HIT",service="replica-0"} 2`,
      );
      expect(metrics).toMatch(
        new RegExp(
          `vantageedge_gateway_cache_hit_ratio\\{tenant="${t}",route="${route}",service="replica-0"\\} 0\\.666`,
        ),
      );
    });

    it('keys on query parameters sorted by name (path+query) and on the listed vary headers', async () => {
      const t = tenant({ cache_key_pattern: 'path+query+headers', vary_headers: ['Accept-Language'] });
      await warm(t);
      expect((await get(one, t, '/q?b=2&a=1')).xCache).toBe('MISS');
      expect((await get(one, t, '/q?a=1&b=2')).xCache).toBe('HIT');
      expect((await get(one, t, '/q?a=1&b=3')).xCache).toBe('MISS');
      // Regression (cache poisoning): a repeated parameter keeps the order of its values, which the
      // origin may depend on (the first one wins): `?id=1&id=evil` is not served `?id=evil&id=1`'s entry.
      expect((await get(one, t, '/q?id=evil&id=1')).xCache).toBe('MISS');
      expect((await get(one, t, '/q?id=1&id=evil')).xCache).toBe('MISS');
      expect((await get(one, t, '/q?id=evil&id=1')).xCache).toBe('HIT');
      expect((await get(one, t, '/q?a=1&b=2', { 'accept-language': 'fr' })).xCache).toBe('MISS');
      expect((await get(one, t, '/q?a=1&b=2', { 'accept-language': 'fr' })).xCache).toBe('HIT');
      const pathOnly = tenant({ cache_key_pattern: 'path' });
      await warm(pathOnly);
      expect((await get(one, pathOnly, '/p?x=1')).xCache).toBe('MISS');
      expect((await get(one, pathOnly, '/p?x=2')).xCache).toBe('HIT');
    });

    it('bypasses on request no-cache, configured header/cookie/query flags and other methods', async () => {
      const t = tenant({ bypass: { headers: ['X-Debug'], cookies: ['preview'], query_params: ['fresh'] } });
      await warm(t);
      await get(one, t, '/b');
      expect((await get(one, t, '/b')).xCache).toBe('HIT');
      // Standard mode (the default): a client's no-cache makes the cache go to the origin (MISS) and
      // store the answer; override mode keeps the former behaviour (BYPASS).
      expect((await get(one, t, '/b', { 'cache-control': 'no-cache' })).xCache).toBe('MISS');
      const override = tenant({ mode: 'override' });
      await warm(override);
      await get(one, override, '/b');
      expect((await get(one, override, '/b', { 'cache-control': 'no-cache' })).xCache).toBe('BYPASS');
      expect((await get(one, t, '/b', { 'x-debug': '1' })).xCache).toBe('BYPASS');
      expect((await get(one, t, '/b', { cookie: 'a=1; preview=yes' })).xCache).toBe('BYPASS');
      expect((await get(one, t, '/b?fresh=1')).xCache).toBe('BYPASS');
      expect((await get(one, t, '/b', {}, 'POST')).xCache).toBe('BYPASS');
    });

    it('an unsafe method on a path drops its cached variants on every replica', async () => {
      const t = tenant({});
      await warm(t);
      await get(one, t, '/doc?v=1');
      await get(one, t, '/doc?v=2');
      for (const replica of replicas) expect((await get(replica, t, '/doc?v=1')).xCache).toBe('HIT');
      const pathPurgesBefore = await purgesApplied('path');
      await get(replicas.at(-1)!, t, '/doc', {}, 'PUT');
      await untilEveryReplicaApplied('path', pathPurgesBefore);
      for (const [i, replica] of replicas.entries())
        expect((await get(replica, t, `/doc?v=${(i % 2) + 1}`)).xCache).toBe(i < 2 ? 'MISS' : 'HIT');
    });

    it('honours origin Cache-Control, Set-Cookie, statuses and the body size limit', async () => {
      const t = tenant({ max_body_bytes: 1024, ttl_seconds: 60 });
      await warm(t);
      for (const path of ['/no-store', '/private', '/cookie', '/error', '/big']) {
        await get(one, t, path);
        expect((await get(one, t, path)).xCache, path).toBe('MISS');
      }
      await get(one, t, '/missing');
      expect((await get(one, t, '/missing')).xCache).toBe('HIT');
      await get(one, t, '/max-age-1');
      expect((await get(one, t, '/max-age-1')).xCache).toBe('HIT');
      skewMs = 1_100;
      try {
        expect((await get(one, t, '/max-age-1')).xCache).toBe('MISS');
      } finally {
        skewMs = 0;
      }
      const withCookies = tenant({ cache_set_cookie: true });
      await warm(withCookies);
      await get(one, withCookies, '/cookie');
      const cached = await get(one, withCookies, '/cookie');
      expect(cached.xCache).toBe('HIT');
      expect(cached.headers.get('set-cookie')).toContain('session=abc');
    });

    it('never serves one user’s or tenant’s response to another (unless the route is shareable)', async () => {
      const routeId = randomUUID();
      const t1 = tenant({}, { auth: 'jwt_required', routeId });
      const t2 = tenant({}, { auth: 'jwt_required', routeId });
      await warm(t1);
      await warm(t2);
      const alice = await get(one, t1, '/me', { 'x-test-user': 'alice' });
      const bob = await get(one, t1, '/me', { 'x-test-user': 'bob' });
      const otherTenant = await get(one, t2, '/me', { 'x-test-user': 'alice' });
      expect([alice.xCache, bob.xCache, otherTenant.xCache]).toEqual(['MISS', 'MISS', 'MISS']);
      const aliceAgain = await get(replicas.at(-1)!, t1, '/me', { 'x-test-user': 'alice' });
      expect(aliceAgain.xCache).toBe('HIT');
      expect(aliceAgain.json().user).toBe('alice');
      expect((await get(one, t1, '/me', { 'x-test-user': 'bob' })).json().user).toBe('bob');
      expect((await get(one, t2, '/me', { 'x-test-user': 'alice' })).json().tenant).toBe(t2);
      expect((await get(one, t1, '/me')).xCache).toBe('BYPASS');

      const shared = tenant({ shared: true }, { auth: 'jwt_required' });
      await warm(shared);
      await get(one, shared, '/catalog', { 'x-test-user': 'alice' });
      expect((await get(one, shared, '/catalog', { 'x-test-user': 'bob' })).xCache).toBe('HIT');
    });

    it('100 concurrent misses for one key make one origin request', async () => {
      const t = tenant({});
      await warm(t);
      const responses = await Promise.all(Array.from({ length: 100 }, () => get(one, t, '/slow/report')));
      expect(origin.hits('/slow/report')).toBe(1);
      expect(responses.every((r) => r.status === 200 && r.json().n === 1)).toBe(true);
      expect(responses.filter((r) => r.xCache === 'MISS').length).toBe(1);
    });

    it('serves stale while revalidating, and stale if the origin fails', async () => {
      const t = tenant({ ttl_seconds: 1, stale_while_revalidate_seconds: 5, stale_if_error_seconds: 30 });
      await warm(t);
      await get(one, t, '/swr');
      skewMs = 2_000;
      try {
        const stale = await get(one, t, '/swr');
        expect(stale.xCache).toBe('STALE');
        expect(stale.json().n).toBe(1);
        await sleep(100);
        expect(origin.hits('/swr')).toBe(2);
        const refreshed = await get(one, t, '/swr');
        expect(refreshed.xCache).toBe('HIT');
        expect(refreshed.json().n).toBe(2);
        skewMs = 10_000;
        origin.failing = true;
        const onError = await get(one, t, '/swr');
        expect(onError.status).toBe(200);
        expect(onError.xCache).toBe('STALE');
      } finally {
        origin.failing = false;
        skewMs = 0;
      }
    });

    it('purge of a route or a tenant reaches every replica', async () => {
      const t = tenant({});
      await warm(t);
      await get(one, t, '/purge-me');
      for (const replica of replicas) expect((await get(replica, t, '/purge-me')).xCache).toBe('HIT');
      const routePurgesBefore = await purgesApplied('route');
      await replicas.at(-1)!.cache.purgeRoute(t, routes.get(t)!.cache!.routeId);
      await untilEveryReplicaApplied('route', routePurgesBefore);
      // Every replica sees the purge: none serves the old response (n = 1) from its L1 any more.
      for (const replica of replicas) expect((await get(replica, t, '/purge-me')).json().n).toBe(2);
      expect(origin.hits('/purge-me')).toBe(2);
      const tenantPurgesBefore = await purgesApplied('tenant');
      await one.cache.purgeTenant(t);
      await untilEveryReplicaApplied('tenant', tenantPurgesBefore);
      for (const replica of [...replicas].reverse())
        expect((await get(replica, t, '/purge-me')).json().n).toBe(3);
      expect(origin.hits('/purge-me')).toBe(3);
    });

    it('rate limits through the same proxy: 429 with Retry-After and RateLimit headers', async () => {
      const t = tenant({}, { limit: true });
      await warm(t);
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++)
        statuses.push(
          (
            await get(replicas[i % replicas.length]!, t, '/limited', {
              'cache-control': 'no-cache',
              'x-test-user': 'carol',
            })
          ).status,
        );
      expect(statuses).toEqual([200, 200, 200, 429]);
      const refused = await get(one, t, '/limited', { 'x-test-user': 'carol' });
      expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(refused.headers.get('ratelimit-policy')).toBe('"route_user";q=3;w=60');
      expect(JSON.parse(refused.text)).toEqual({
        error: { code: 'rate_limited', message: expect.any(String) },
      });
    });
  });
}

describe('cache while Redis is down (private redis-server)', () => {
  it('bypasses the cache and keeps traffic flowing, then caches again when Redis returns', async () => {
    const server = await startPrivateRedisServer();
    const origin = await startTestOrigin();
    const routes = new Map<string, StageRoute>();
    const t = randomUUID();
    routes.set(t, routeFor(t, {}));
    const [replica] = (await startReplicas(1, origin, routes, server.url)) as [Replica];
    try {
      await replica.cache.prepareTenant(t);
      await server.stop();
      const outcomes: string[] = [];
      const durations: number[] = [];
      for (let i = 0; i < 200; i++) {
        const t0 = performance.now();
        const response = await get(replica, t, `/down/${i}`);
        durations.push(performance.now() - t0);
        expect(response.status).toBe(200);
        outcomes.push(response.xCache ?? '');
      }
      expect(new Set(outcomes)).toEqual(new Set(['BYPASS']));
      // What the cache stage itself adds while Redis is down: lookup() durations, logged (speed is for
      // benchmarks to judge, never a timed assertion).
      const policy = routes.get(t)!.cache!;
      const lookupMs: number[] = [];
      for (let i = 0; i < 1_000; i++) {
        const t0 = performance.now();
        const lookup = await replica.cache.lookup(
          policy,
          { method: 'GET', path: `/direct/${i}`, query: '', headers: {} },
          {},
        );
        lookupMs.push(performance.now() - t0);
        expect(lookup.outcome).toBe('BYPASS');
      }
      durations.sort((a, b) => a - b);
      lookupMs.sort((a, b) => a - b);
      console.log(
        `[cache outage] proxied request ms (round trip through proxy and origin) p50=${durations[100]!.toFixed(2)} p99=${durations[198]!.toFixed(2)}; lookup() ms p50=${lookupMs[500]!.toFixed(3)} p99=${lookupMs[990]!.toFixed(3)} max=${lookupMs[999]!.toFixed(3)}`,
      );
      await server.start();
      let cachedAgain = false;
      for (let attempt = 0; attempt < 50 && !cachedAgain; attempt++) {
        await sleep(100);
        await get(replica, t, '/back');
        cachedAgain = (await get(replica, t, '/back')).xCache === 'HIT';
      }
      expect(cachedAgain).toBe(true);
    } finally {
      await replica.gateway.close();
      await replica.cache.close();
      await origin.close();
      await server.stop();
    }
  });
});
