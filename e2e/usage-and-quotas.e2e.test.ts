import http from 'node:http';
import { TEST_INFRA } from '@vantageedge/shared/testing/infrastructure';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  eventually,
  type GatewayReplica,
  type HttpResponse,
  httpRequest,
  sleep,
  startOrigin,
  type TestOrigin,
  TestSystem,
} from './harness.js';

/**
 * Usage and quotas through real processes: control plane, both projectors (the read-model projector
 * runs the usage flusher) and two gateway replicas on the shared PostgreSQL, Redis and Kafka.
 *
 * Stated accuracy (README "Usage and quotas"): usage counts are exact — every answered request is
 * counted once, on whichever replica — once the replicas have flushed (every
 * GATEWAY_USAGE_FLUSH_INTERVAL_MS, and on a graceful stop). Quotas are exact across replicas: the
 * counters are shared in Redis and checked and counted by one atomic script (while Redis answers
 * within REDIS_COMMAND_TIMEOUT_MS; a check that fails is served uncounted).
 */

const SUBDOMAIN = `usage-${Date.now().toString(36)}`;

type StatusClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx';
const NO_CLASSES = (): Record<StatusClass, number> => ({ '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 });

/** What the test itself sent and got back: the numbers the usage report must show. */
class Tally {
  total = 0;
  readonly byClass = NO_CLASSES();
  readonly byRoute = new Map<string, number>();
  readonly byKey = new Map<string, number>();

  add(status: number, routeId: string | null, apiKeyId: string | null): void {
    this.total += 1;
    this.byClass[`${Math.floor(status / 100)}xx` as StatusClass] += 1;
    const route = routeId ?? 'none';
    this.byRoute.set(route, (this.byRoute.get(route) ?? 0) + 1);
    const key = apiKeyId ?? 'none';
    this.byKey.set(key, (this.byKey.get(key) ?? 0) + 1);
  }
}

interface UsageReport {
  requests: number;
  by_status_class: Record<StatusClass, number>;
  by_route: Array<{ id: string | null; requests: number }>;
  by_api_key: Array<{ id: string | null; requests: number; by_status_class: Record<StatusClass, number> }>;
}

let system: TestSystem;
let origin: TestOrigin;
let replicas: GatewayReplica[] = [];
let redis: Redis;
let tenantId = '';
let openRoute = '';
let keyedRoute = '';
const tally = new Tally();

/** One request to a replica, counted in the tally with the route and key it is for. */
async function call(
  replica: GatewayReplica,
  pathname: string,
  { routeId, apiKey }: { routeId: string | null; apiKey?: { id: string; plaintext: string } },
): Promise<HttpResponse> {
  const response = await replica.get(SUBDOMAIN, pathname, apiKey ? { 'x-api-key': apiKey.plaintext } : {});
  // Only an authenticated request is the key's (a 401 has no key).
  tally.add(response.status, routeId, apiKey && response.status !== 401 ? apiKey.id : null);
  return response;
}

async function usage(query = ''): Promise<UsageReport> {
  const response = await system.admin('GET', `/api/v1/usage?tenant_id=${tenantId}&granularity=day${query}`);
  expect(response.status, response.text).toBe(200);
  return response.body as unknown as UsageReport;
}

async function issueKey(
  name: string,
  quota: Record<string, number> | null,
): Promise<{ id: string; plaintext: string; body: Record<string, unknown> }> {
  // Held until every replica serves the key: no request is spent finding out.
  const key = await system.admin('POST', '/api/v1/api-keys?wait_for_rollout=30s', {
    body: { tenant_id: tenantId, name, quota },
  });
  expect(key.status, key.text).toBe(201);
  expect(key.headers.get('x-rollout')).toBe('complete');
  return { id: key.body['id'] as string, plaintext: key.body['key'] as string, body: key.body };
}

beforeAll(async () => {
  system = await TestSystem.create({
    // The key's GET reads its live quota from Redis: the same allowance as the gateways' checks.
    controlPlaneEnv: { REDIS_COMMAND_TIMEOUT_MS: '5000' },
    gatewayEnv: {
      GATEWAY_ACCESS_LOG_SAMPLE_RATE: '0',
      GATEWAY_USAGE_FLUSH_INTERVAL_MS: '500',
      // Quotas are exact while Redis answers; a check that times out is served uncounted (fail-open).
      // The default 50 ms is for production's dedicated Redis, not a test machine shared by many runs.
      REDIS_COMMAND_TIMEOUT_MS: '5000',
    },
  });
  origin = await startOrigin('usage-origin');
  redis = new Redis(TEST_INFRA.redisUrl, { maxRetriesPerRequest: 2 });
  await system.startControlSide();
  replicas = await system.startGateways(2);

  tenantId = (await system.create('/api/v1/tenants', { name: 'Usage', subdomain: SUBDOMAIN })).id;
  const backend = await system.create('/api/v1/origins', {
    tenant_id: tenantId,
    name: 'backend',
    url: origin.url,
  });
  const route = (pathname: string, pathPattern: string, authMode: string) =>
    system.create(pathname, {
      tenant_id: tenantId,
      origin_id: backend.id,
      path_pattern: pathPattern,
      auth_mode: authMode,
    });
  openRoute = (await route('/api/v1/routes', '/open/*', 'public')).id;
  keyedRoute = (await route('/api/v1/routes?wait_for_rollout=30s', '/keyed/*', 'apikey_required')).id;
}, 240_000);

afterAll(async () => {
  redis?.disconnect();
  await system?.close();
  await origin?.close();
});

describe('usage and quotas over two gateway replicas', () => {
  it('refuses a key over its daily quota on both replicas, exactly at the limit, and says what remains', async () => {
    const key = await issueKey('metered', { requests_per_day: 10 });
    // An issued key shows its quota untouched.
    expect(key.body['quota_usage']).toMatchObject([{ period: 'day', limit: 10, used: 0, remaining: 10 }]);

    // One request on each replica first: both count in the same counter.
    const first = await call(replicas[0]!, '/keyed/1', { routeId: keyedRoute, apiKey: key });
    const second = await call(replicas[1]!, '/keyed/2', { routeId: keyedRoute, apiKey: key });
    expect([first.status, second.status]).toEqual([200, 200]);
    expect([first.headers['x-quota-remaining'], second.headers['x-quota-remaining']]).toEqual(['9', '8']);
    expect(first.headers['x-quota-limit']).toBe('10');

    // Then 20 at once, alternating replicas: exactly the 8 that remain are served.
    const burst = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        call(replicas[i % 2]!, `/keyed/burst-${i}`, { routeId: keyedRoute, apiKey: key }),
      ),
    );
    const served = burst.filter((response) => response.status === 200);
    const refused = burst.filter((response) => response.status === 429);
    expect(served.length, system.tails()).toBe(8);
    expect(refused.length).toBe(12);
    expect(
      served.map((response) => Number(response.headers['x-quota-remaining'])).sort((a, b) => a - b),
    ).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);

    // Each replica refuses from now on, with the error shape, Retry-After and the remaining count.
    for (const replica of replicas) {
      const response = await call(replica, '/keyed/after', { routeId: keyedRoute, apiKey: key });
      expect(response.status).toBe(429);
      expect(JSON.parse(response.body)).toMatchObject({ error: { code: 'quota_exceeded' } });
      expect(JSON.parse(response.body).error.message).toContain("API key's daily quota of 10");
      expect(response.headers['x-quota-remaining']).toBe('0');
      expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
      expect(Number(response.headers['retry-after'])).toBeLessThanOrEqual(86_400);
    }

    // The key's GET shows the quota used up.
    const read = await system.admin('GET', `/api/v1/api-keys/${key.id}`);
    expect(read.status, read.text).toBe(200);
    expect(read.body['quota_usage']).toMatchObject([{ period: 'day', limit: 10, used: 10, remaining: 0 }]);

    // Another key of the tenant, without a quota, is not affected; nor is a public route.
    const free = await issueKey('unmetered', null);
    for (const replica of replicas) {
      const response = await call(replica, '/keyed/free', { routeId: keyedRoute, apiKey: free });
      expect(response.status).toBe(200);
      expect(response.headers['x-quota-remaining']).toBeUndefined();
    }

    // Raising the quota lets the key through again on both replicas (the counter is kept).
    const raised = await system.admin('PATCH', `/api/v1/api-keys/${key.id}?wait_for_rollout=30s`, {
      body: { quota: { requests_per_day: 12 } },
    });
    expect(raised.status, raised.text).toBe(200);
    const again = [
      await call(replicas[0]!, '/keyed/raised', { routeId: keyedRoute, apiKey: key }),
      await call(replicas[1]!, '/keyed/raised', { routeId: keyedRoute, apiKey: key }),
      await call(replicas[0]!, '/keyed/raised', { routeId: keyedRoute, apiKey: key }),
    ];
    expect(again.map((response) => response.status)).toEqual([200, 200, 429]);
  }, 120_000);

  it("refuses every caller of a tenant over the tenant's quota, on both replicas", async () => {
    // A second tenant, so this quota does not touch the first one's counts.
    const subdomain = `${SUBDOMAIN}-t`;
    const tenant = await system.admin('POST', '/api/v1/tenants', {
      body: { name: 'Quota', subdomain, settings: { quota: { requests_per_day: 5 } } },
    });
    expect(tenant.status, tenant.text).toBe(201);
    const id = tenant.body['id'] as string;
    const backend = await system.admin('POST', '/api/v1/origins', {
      body: { tenant_id: id, name: 'backend', url: origin.url },
    });
    const route = await system.admin('POST', '/api/v1/routes?wait_for_rollout=30s', {
      body: { tenant_id: id, origin_id: backend.body['id'], path_pattern: '/*', auth_mode: 'public' },
    });
    expect(route.status, route.text).toBe(201);
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) => replicas[i % 2]!.get(subdomain, `/page-${i}`)),
    );
    expect(answers.filter((answer) => answer.status === 200).length, system.tails()).toBe(5);
    const refusals = answers.filter((answer) => answer.status === 429);
    expect(refusals.length).toBe(7);
    for (const refusal of refusals) expect(refusal.body).toContain("the tenant's daily quota of 5");
  }, 120_000);

  it("counts the gateway's own answers as documented, and a key's usage agrees with its quota", async () => {
    // A tenant of its own: its counts are only this test's requests.
    const subdomain = `${SUBDOMAIN}-own`;
    const tenant = await system.admin('POST', '/api/v1/tenants', { body: { name: 'Own', subdomain } });
    expect(tenant.status, tenant.text).toBe(201);
    const id = tenant.body['id'] as string;
    // /stream/held: the head goes out, the body never ends; /stream/silent: no answer at all.
    const streaming = await startOrigin('usage-stream', (req, res) => {
      if (req.url?.startsWith('/stream/held')) {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('first part');
        return true;
      }
      return req.url?.startsWith('/stream/silent') === true;
    });
    try {
      const backend = await system.admin('POST', '/api/v1/origins', {
        body: { tenant_id: id, name: 'backend', url: streaming.url },
      });
      expect(backend.status, backend.text).toBe(201);
      const route = async (body: Record<string, unknown>) => {
        const created = await system.admin('POST', '/api/v1/routes', {
          body: { tenant_id: id, origin_id: backend.body['id'], auth_mode: 'public', ...body },
        });
        expect(created.status, created.text).toBe(201);
        return created.body['id'] as string;
      };
      const metered = await route({
        path_pattern: '/metered/*',
        auth_mode: 'apikey_required',
        cache_policy: { enabled: true, ttl_seconds: 300, cache_key_pattern: 'path+query' },
        cors: { allow_origins: ['https://app.example.com'], allow_headers: ['x-api-key'] },
      });
      await route({ path_pattern: '/closed/*', fixed_response: { status: 503, body: 'maintenance' } });
      await route({ path_pattern: '/stream/*' });
      const issued = await system.admin('POST', '/api/v1/api-keys?wait_for_rollout=30s', {
        body: { tenant_id: id, name: 'metered', quota: { requests_per_day: 6 } },
      });
      expect(issued.status, issued.text).toBe(201);
      const key = { 'x-api-key': issued.body['key'] as string };
      const keyId = issued.body['id'] as string;
      const send = (replica: GatewayReplica, pathname: string, method = 'GET', headers = {}) =>
        httpRequest(`${replica.url}${pathname}`, {
          method,
          headers: { host: `${subdomain}.localhost`, ...headers },
          agent: replica.agent,
        });
      const [a, b] = [replicas[0]!, replicas[1]!];
      const answered: Array<[string, number]> = [];
      const expectStatus = async (what: string, response: Promise<HttpResponse>, status: number) => {
        const got = await response;
        expect(got.status, `${what}: ${got.body}`).toBe(status);
        answered.push([what, got.status]);
        return got;
      };

      // Under the key's quota (6 a day): a miss, a cache HIT on the other replica, a HEAD, three more.
      const miss = await expectStatus('miss', send(a, '/metered/page', 'GET', key), 200);
      expect(miss.headers['x-cache']).toBe('MISS');
      const hit = await expectStatus('hit', send(b, '/metered/page', 'GET', key), 200);
      expect(hit.headers['x-cache']).toBe('HIT');
      await expectStatus('head', send(a, '/metered/head', 'HEAD', key), 200);
      for (const replica of [b, a, b])
        await expectStatus('more', send(replica, '/metered/more', 'GET', key), 200);
      // Past it: refused on either replica, counted in usage (4xx), not against the quota.
      await expectStatus('over', send(a, '/metered/over', 'GET', key), 429);
      await expectStatus('over', send(b, '/metered/over', 'GET', key), 429);
      // Answered by the gateway itself, without a key: a CORS preflight, a missing key, a fixed response.
      const preflight = { origin: 'https://app.example.com', 'access-control-request-method': 'GET' };
      await expectStatus('preflight', send(a, '/metered/page', 'OPTIONS', preflight), 204);
      await expectStatus('no key', send(b, '/metered/page'), 401);
      await expectStatus('fixed', send(a, '/closed/now'), 503);

      // A client that leaves mid-response is counted as the status it got; one that leaves before
      // any answer is not counted.
      const leave = (pathname: string, afterHead: boolean) =>
        new Promise<void>((resolve, reject) => {
          const request = http.request(`${b.url}${pathname}`, {
            headers: { host: `${subdomain}.localhost` },
          });
          request.on('response', (response) => {
            response.once('data', () => {
              if (afterHead) request.destroy();
            });
          });
          request.on('close', () => resolve());
          request.on('error', () => {});
          request.end();
          if (!afterHead) {
            const poll = setInterval(() => {
              if ((streaming.hits.get(pathname) ?? 0) > 0) {
                clearInterval(poll);
                request.destroy();
              }
            }, 20);
            request.on('close', () => clearInterval(poll));
          }
          setTimeout(() => reject(new Error(`${pathname}: never left`)), 15_000).unref();
        });
      await leave('/stream/held', true);
      answered.push(['left mid-response', 200]);
      await leave('/stream/silent', false);

      const expected = NO_CLASSES();
      for (const [, status] of answered) expected[`${Math.floor(status / 100)}xx` as StatusClass] += 1;
      const read = async (query: string) => {
        const response = await system.admin('GET', `/api/v1/usage?${query}&granularity=day`);
        expect(response.status, response.text).toBe(200);
        return response.body as unknown as UsageReport;
      };
      await eventually(
        `usage shows the tenant's ${answered.length} answered requests`,
        async () => (await read(`tenant_id=${id}`)).requests >= answered.length,
        { system, timeoutMs: 30_000, intervalMs: 250 },
      );
      // Both replicas flushed again and every batch is applied: nothing more shows up.
      await sleep(1_500);
      await eventually('every usage batch is applied', async () => {
        return (await redis.scard(`${system.redisKeyPrefix}u:{usage}:batches`)) === 0;
      });
      const report = await read(`tenant_id=${id}`);
      expect(report.by_status_class, JSON.stringify(answered)).toEqual(expected);
      const byRoute = new Map(report.by_route.map((entry) => [entry.id, entry.requests]));
      expect(byRoute.get(metered)).toBe(10);

      // The key: six served (its quota's count), two refused by the quota.
      const keyReport = await read(`api_key_id=${keyId}`);
      expect(keyReport.by_status_class).toEqual({ ...NO_CLASSES(), '2xx': 6, '4xx': 2 });
      const keyRead = await system.admin('GET', `/api/v1/api-keys/${keyId}`);
      expect(keyRead.body['quota_usage']).toMatchObject([{ period: 'day', limit: 6, used: 6, remaining: 0 }]);
    } finally {
      await streaming.close();
    }
  }, 120_000);

  it('counts every request of the tenant exactly, by status class, route and key, across both replicas', async () => {
    const key = await issueKey('counted', null);
    // Requests on both replicas: served (2xx), refused for want of a key (401), on no route (404).
    for (let i = 0; i < 30; i++) await call(replicas[i % 2]!, `/open/${i}`, { routeId: openRoute });
    for (let i = 0; i < 14; i++) {
      await call(replicas[i % 3 === 0 ? 0 : 1]!, `/keyed/${i}`, { routeId: keyedRoute, apiKey: key });
    }
    for (let i = 0; i < 6; i++) await call(replicas[i % 2]!, `/keyed/${i}`, { routeId: keyedRoute });
    for (let i = 0; i < 4; i++) await call(replicas[i % 2]!, `/nowhere/${i}`, { routeId: null });
    expect(tally.byClass['2xx']).toBeGreaterThan(0);
    expect(tally.byClass['4xx']).toBeGreaterThan(0);

    // A graceful stop writes the replica's last batch: nothing it counted is lost.
    await replicas[1]!.service.stop();

    await eventually(
      `usage shows all ${tally.total} requests`,
      async () => (await usage()).requests === tally.total,
      { system, timeoutMs: 60_000, intervalMs: 250 },
    );
    // Nothing is pending any more, and reading again (the flusher ran again) counts nothing twice.
    await eventually('every usage batch is applied', async () => {
      return (await redis.scard(`${system.redisKeyPrefix}u:{usage}:batches`)) === 0;
    });
    const report = await usage();
    expect(report.requests).toBe(tally.total);
    expect(report.by_status_class).toEqual(tally.byClass);
    const byRoute = new Map(report.by_route.map((entry) => [entry.id ?? 'none', entry.requests]));
    expect(byRoute).toEqual(tally.byRoute);
    const byKey = new Map(report.by_api_key.map((entry) => [entry.id ?? 'none', entry.requests]));
    expect(byKey).toEqual(tally.byKey);

    // One key's usage alone, as its owner would ask for it.
    const keyReport = await system.admin('GET', `/api/v1/usage?api_key_id=${key.id}&granularity=hour`);
    expect(keyReport.status, keyReport.text).toBe(200);
    expect(keyReport.body['requests']).toBe(14);
    expect((keyReport.body['by_status_class'] as Record<string, number>)['2xx']).toBe(14);
  }, 180_000);
});
