// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} is the route policies' own value-template syntax
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type StalledConnectTarget,
  startStalledConnectTarget,
} from '@vantageedge/shared/testing/stalled-connect-target';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type GatewayReplica,
  type HttpResponse,
  httpRequest,
  startOrigin,
  stopAllServices,
  type TestOrigin,
  TestSystem,
} from './harness.js';
import { eventPosition, whenServedEverywhere } from './served-version.js';

/**
 * Route policies through real processes: admin API → event store → snapshot projector → Kafka → two
 * gateway replicas → local origins. CORS preflight before auth, IP rules on both replicas, transforms
 * seen by the origin, retries on another target (GET yes, POST no), a 95/5 traffic split over 4,000
 * requests, a header-matched route winning over a path-only one, and maintenance mode.
 */
const SUBDOMAIN = 'policies';
const CALLER = 'user_policies_caller';

let system: TestSystem;
let stable: TestOrigin;
let canary: TestOrigin;
let healthyTarget: TestOrigin;
let resettingTarget: http.Server;
let stalledTarget: StalledConnectTarget;
const resetHits: Array<{ method: string; url: string }> = [];
let replicas: GatewayReplica[] = [];
let tenantId = '';
let token = '';

/** How long the origin takes to answer `/slow/…` (far above the route's response_headers_ms). */
const SLOW_ORIGIN_MS = 2_000;

/** What the origin saw for the transform route (it echoes method, url and headers); `/slow/…` stalls. */
function echo(req: http.IncomingMessage, res: http.ServerResponse): boolean {
  if (req.url?.startsWith('/slow/')) {
    const timer = setTimeout(() => res.end('late'), SLOW_ORIGIN_MS);
    res.on('close', () => clearTimeout(timer));
    return true;
  }
  if (!req.url?.startsWith('/internal/')) return false;
  res.writeHead(200, { 'content-type': 'application/json', 'x-origin': 'stable' });
  res.end(JSON.stringify({ url: req.url, headers: req.headers }));
  return true;
}

async function admin(method: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await system.admin(method, path, { body });
  expect(response.status, `${method} ${path}: ${response.text}`).toBeLessThan(300);
  return response.body;
}

beforeAll(async () => {
  system = await TestSystem.create({
    gatewayEnv: { GATEWAY_TRUST_PROXY: 'true', GATEWAY_ACCESS_LOG_SAMPLE_RATE: '0' },
  });
  [stable, canary, healthyTarget] = await Promise.all([
    startOrigin('stable', echo),
    startOrigin('canary'),
    startOrigin('healthy-target'),
  ]);
  resettingTarget = http.createServer((req) => {
    resetHits.push({ method: req.method ?? '', url: req.url ?? '' });
    req.socket.destroy();
  });
  await new Promise<void>((resolve) => resettingTarget.listen(0, '127.0.0.1', resolve));
  stalledTarget = await startStalledConnectTarget();
  await system.startControlSide();
  replicas = await system.startGateways(2);

  tenantId = (await admin('POST', '/api/v1/tenants', { name: 'Policies', subdomain: SUBDOMAIN }))[
    'id'
  ] as string;
  await admin('POST', '/api/v1/users', {
    tenant_id: tenantId,
    clerk_user_id: CALLER,
    email: 'caller@policies.example',
    role: 'viewer',
  });
  token = await system.token({ userId: CALLER });
  const originOf = async (name: string, body: Record<string, unknown>) =>
    (await admin('POST', '/api/v1/origins', { tenant_id: tenantId, name, ...body }))['id'] as string;
  const stableId = await originOf('stable', { url: stable.url });
  const canaryId = await originOf('canary', { url: canary.url });
  const pairId = await originOf('pair', {
    targets: [
      { url: `http://127.0.0.1:${(resettingTarget.address() as AddressInfo).port}` },
      { url: healthyTarget.url },
    ],
    health_check: { active: { enabled: false }, passive: { enabled: false } },
    circuit_breaker: { enabled: false },
  });
  // timeout_seconds 30: without the route's connect_ms a connect would be given 10 s (the gateways' cap).
  const stalledId = await originOf('stalled', {
    url: stalledTarget.url,
    timeout_seconds: 30,
    health_check: { active: { enabled: false }, passive: { enabled: false } },
    circuit_breaker: { enabled: false },
  });
  const route = (body: Record<string, unknown>) =>
    system.admin('POST', '/api/v1/routes', {
      body: { tenant_id: tenantId, origin_id: stableId, auth_mode: 'public', ...body },
    });
  const routes = [
    {
      path_pattern: '/api/*',
      auth_mode: 'jwt_required',
      cors: { allow_origins: ['https://app.example.com'], allow_headers: ['authorization', 'content-type'] },
    },
    { path_pattern: '/office/*', ip_rules: { deny: ['203.0.113.0/24'] } },
    {
      path_pattern: '/tx/*',
      rewrite_path: { from_prefix: '/tx', to_prefix: '/internal' },
      request_headers: {
        set: { 'x-tenant': '${tenant_id}' },
        add: { 'x-client': '${client_ip}' },
        remove: ['x-debug'],
      },
      query: { add: { source: 'gateway' }, remove: ['debug'] },
      response_headers: { set: { 'x-served-by': 'vantageedge' }, remove: ['x-origin'] },
    },
    {
      path_pattern: '/flaky/*',
      origin_id: pairId,
      retries: { backoff: { base_ms: 0, max_ms: 0 }, budget: { percent: 100, min_retries: 1000 } },
    },
    {
      path_pattern: '/canary/*',
      traffic_split: {
        origins: [
          { origin_id: stableId, weight: 95 },
          { origin_id: canaryId, weight: 5 },
        ],
      },
    },
    { path_pattern: '/items/*' },
    {
      path_pattern: '/items/*',
      origin_id: canaryId,
      match: { headers: [{ name: 'x-api-version', exact: '2' }] },
    },
    {
      path_pattern: '/shop/*',
      fixed_response: { status: 503, headers: { 'retry-after': '120' }, body: 'maintenance' },
    },
    {
      path_pattern: '/old/*',
      origin_id: null,
      redirect: { status: 308, location: 'https://new.example.com${path}${query}' },
    },
    { path_pattern: '/upload/*', max_body_bytes: 16, max_header_bytes: 1024 },
    { path_pattern: '/slow/*', timeouts: { response_headers_ms: 300 } },
    { path_pattern: '/unreachable/*', origin_id: stalledId, timeouts: { connect_ms: 200 } },
  ];
  let position = 0n;
  for (const body of routes) {
    const created = await route(body);
    expect(created.status, created.text).toBe(201);
    position = eventPosition(created);
  }
  await whenServedEverywhere(replicas, tenantId, position, system);
}, 240_000);

afterAll(async () => {
  await system?.close();
  await Promise.all([stable?.close(), canary?.close(), healthyTarget?.close(), stalledTarget?.close()]);
  await new Promise<void>((resolve) => {
    resettingTarget?.closeAllConnections();
    resettingTarget?.close(() => resolve());
  });
  await stopAllServices();
});

function send(
  replica: GatewayReplica,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<HttpResponse> {
  return httpRequest(`${replica.url}${path}`, {
    method: init.method ?? 'GET',
    headers: { host: `${SUBDOMAIN}.localhost`, ...init.headers },
    agent: replica.agent,
    ...(init.body === undefined ? {} : { body: init.body }),
  });
}

describe('route policies across processes', () => {
  it('answers a browser preflight to a jwt_required route with 204 on both replicas; the actual request still needs the token', async () => {
    for (const replica of replicas) {
      const preflight = await send(replica, '/api/orders', {
        method: 'OPTIONS',
        headers: {
          origin: 'https://app.example.com',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization, content-type',
        },
      });
      expect(preflight.status, replica.id).toBe(204);
      expect(preflight.headers['access-control-allow-origin']).toBe('https://app.example.com');
      expect(preflight.headers['access-control-allow-methods']).toContain('POST');
      expect(preflight.headers['access-control-allow-headers']).toBe('authorization, content-type');
      expect(String(preflight.headers['vary'])).toContain('Origin');

      const anonymous = await send(replica, '/api/orders', {
        headers: { origin: 'https://app.example.com' },
      });
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers['access-control-allow-origin']).toBe('https://app.example.com');
      const signedIn = await send(replica, '/api/orders', {
        headers: { origin: 'https://app.example.com', authorization: `Bearer ${token}` },
      });
      expect(signedIn.status, signedIn.body).toBe(200);
      expect(signedIn.headers['access-control-allow-origin']).toBe('https://app.example.com');
    }
  });

  it('refuses a denied address on both replicas, and lets others through', async () => {
    for (const replica of replicas) {
      const denied = await send(replica, '/office/x', { headers: { 'x-forwarded-for': '203.0.113.9' } });
      expect(denied.status, replica.id).toBe(403);
      expect(JSON.parse(denied.body)).toMatchObject({ error: { code: 'ip_denied' } });
      const allowed = await send(replica, '/office/x', { headers: { 'x-forwarded-for': '198.51.100.1' } });
      expect(allowed.status, replica.id).toBe(200);
    }
  });

  it('shows the origin the transformed request: rewritten path, query, set and added headers, removed ones', async () => {
    for (const replica of replicas) {
      const answer = await send(replica, '/tx/hello?x=1&debug=on', {
        headers: { 'x-forwarded-for': '198.51.100.7', 'x-debug': 'on', 'x-client': 'browser' },
      });
      expect(answer.status, replica.id).toBe(200);
      const seen = JSON.parse(answer.body) as { url: string; headers: Record<string, string> };
      expect(seen.url).toBe('/internal/hello?x=1&source=gateway');
      expect(seen.headers['x-tenant']).toBe(tenantId);
      expect(seen.headers['x-client']).toBe('browser, 198.51.100.7');
      expect(seen.headers['x-debug']).toBeUndefined();
      // The response transform: the client sees the gateway's header, not the origin's x-origin.
      expect(answer.headers['x-served-by']).toBe('vantageedge');
      expect(answer.headers['x-origin']).toBeUndefined();
    }
  });

  it('retries a GET on the other target after a reset, but not a POST', async () => {
    const getsBefore = resetHits.filter((hit) => hit.method === 'GET').length;
    const gets = await Promise.all(
      Array.from({ length: 8 }, (_, i) => send(replicas[i % 2]!, `/flaky/get-${i}`)),
    );
    expect(gets.map((answer) => answer.status)).toEqual(Array(8).fill(200));
    expect(gets.every((answer) => answer.headers['x-origin'] === 'healthy-target')).toBe(true);
    expect(resetHits.filter((hit) => hit.method === 'GET').length).toBeGreaterThan(getsBefore);

    const healthyPostsBefore = [...healthyTarget.hits.keys()].filter((url) =>
      url.startsWith('/flaky/post-'),
    ).length;
    const posts: HttpResponse[] = [];
    for (let i = 0; i < 8; i++) {
      posts.push(await send(replicas[i % 2]!, `/flaky/post-${i}`, { method: 'POST', body: `{"n":${i}}` }));
    }
    const failed = posts.filter((answer) => answer.status === 502).length;
    const served = posts.filter((answer) => answer.status === 200).length;
    expect(failed).toBeGreaterThan(0);
    expect(failed + served).toBe(8);
    expect(resetHits.filter((hit) => hit.method === 'POST')).toHaveLength(failed);
    const healthyPosts = [...healthyTarget.hits.keys()].filter((url) =>
      url.startsWith('/flaky/post-'),
    ).length;
    expect(healthyPosts - healthyPostsBefore).toBe(served);
  });

  it('splits 95/5 within ±2% over 4,000 requests across both replicas', async () => {
    const counts = { stable: 0, canary: 0, other: 0 };
    const total = 4_000;
    let next = 0;
    const worker = async () => {
      while (next < total) {
        const i = next++;
        const answer = await send(replicas[i % 2]!, `/canary/${i}`);
        const origin = answer.headers['x-origin'];
        if (answer.status === 200 && origin === 'stable') counts.stable++;
        else if (answer.status === 200 && origin === 'canary') counts.canary++;
        else counts.other++;
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    expect(counts.other).toBe(0);
    const canaryShare = counts.canary / total;
    expect(canaryShare).toBeGreaterThanOrEqual(0.03);
    expect(canaryShare).toBeLessThanOrEqual(0.07);
  }, 120_000);

  it('sends a request with the header to the header-matched route over the path-only one, on both replicas', async () => {
    for (const replica of replicas) {
      const matched = await send(replica, '/items/1', { headers: { 'x-api-version': '2' } });
      expect(matched.headers['x-origin'], replica.id).toBe('canary');
      const plain = await send(replica, '/items/1');
      expect(plain.headers['x-origin'], replica.id).toBe('stable');
    }
  });

  it('answers maintenance mode from the gateway without calling the origin', async () => {
    const before = stable.total();
    for (const replica of replicas) {
      const answer = await send(replica, '/shop/cart');
      expect(answer.status).toBe(503);
      expect(answer.headers['retry-after']).toBe('120');
      expect(answer.body).toBe('maintenance');
    }
    expect(stable.total()).toBe(before);
  });

  it('redirects with the location template from the gateway, never calling an origin', async () => {
    for (const replica of replicas) {
      const answer = await send(replica, '/old/docs/page?lang=en');
      expect(answer.status, replica.id).toBe(308);
      expect(answer.headers['location']).toBe('https://new.example.com/old/docs/page?lang=en');
    }
  });

  it('refuses a body and headers over the route’s limits before the origin sees them', async () => {
    const before = stable.total();
    for (const replica of replicas) {
      const big = await send(replica, '/upload/file', { method: 'POST', body: 'x'.repeat(100) });
      expect(big.status, replica.id).toBe(413);
      expect(JSON.parse(big.body)).toMatchObject({ error: { code: 'payload_too_large' } });
      const loud = await send(replica, '/upload/file', { headers: { 'x-padding': 'p'.repeat(2_000) } });
      expect(loud.status, replica.id).toBe(431);
      const small = await send(replica, '/upload/file', { method: 'POST', body: 'tiny' });
      expect(small.status, replica.id).toBe(200);
    }
    expect(stable.total()).toBe(before + replicas.length);
  });

  it('answers 504 after the route’s response_headers_ms instead of waiting for the slow origin', async () => {
    for (const replica of replicas) {
      const answer = await send(replica, '/slow/report');
      expect(answer.status, replica.id).toBe(504);
      expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'upstream_timeout' } });
    }
  });

  it('answers 504 after the route’s connect_ms when the origin never completes the TCP connect, not after the origin’s 10 s', async () => {
    for (const replica of replicas) {
      const started = performance.now();
      const answer = await send(replica, '/unreachable/report');
      const elapsedMs = performance.now() - started;
      expect(answer.status, `${replica.id}: ${answer.body}`).toBe(504);
      expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'upstream_timeout' } });
      // Generous bound: only a 200 ms connect timeout, not the origin's 10 s one, answers this soon.
      expect(elapsedMs, replica.id).toBeLessThan(5_000);
    }
  });

  it('applies the tenant-wide IP rules on both replicas; a route’s own rules replace them', async () => {
    const changed = await system.admin('PATCH', `/api/v1/tenants/${tenantId}?wait_for_rollout=30s`, {
      body: { settings: { ip_rules: { deny: ['192.0.2.0/24'] } } },
    });
    expect(changed.status, changed.text).toBe(200);
    for (const replica of replicas) {
      const denied = await send(replica, '/items/1', { headers: { 'x-forwarded-for': '192.0.2.5' } });
      expect(denied.status, replica.id).toBe(403);
      expect(JSON.parse(denied.body)).toMatchObject({ error: { code: 'ip_denied' } });
      expect(
        (await send(replica, '/items/1', { headers: { 'x-forwarded-for': '198.51.100.1' } })).status,
      ).toBe(200);
      // /office/* has its own ip_rules (deny 203.0.113.0/24 only): the tenant-wide list does not apply.
      expect((await send(replica, '/office/x', { headers: { 'x-forwarded-for': '192.0.2.5' } })).status).toBe(
        200,
      );
    }
  });
});
