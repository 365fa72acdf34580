import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createTestRedis, type TestRedis } from '@vantageedge/shared/testing/redis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createCacheStage } from '../cache/cache-stage.js';
import { RedisCacheStore } from '../cache/redis-cache-store.js';
import { createResponseCache, type ResponseCache } from '../cache/response-cache.js';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { type HttpOrigin, startHttpOrigin } from '../testing/http-origins.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * The request metrics and the access log against the requests a client made: one count and one line per
 * request, whoever answered it (the origin, a stage, the gateway's own checks), with the code of who did.
 * Regressions: a request refused `431 too_many_headers` was neither counted nor logged, and a route's
 * `fixed_response` of 400 or more was counted as the origin's error (`code="origin"`) though no origin
 * was asked.
 */
const HOST = 'accounting.localhost';
const MAX_HEADERS = 30;
const tenantId = randomUUID();
const routes = {
  open: randomUUID(),
  keyed: randomUUID(),
  denied: randomUUID(),
  maintenance: randomUUID(),
  retried: randomUUID(),
  cached: randomUUID(),
};
let origin: HttpOrigin;
let gateway: TestGateway;
let redis: TestRedis;
let cache: ResponseCache;
const originSaw: string[] = [];
let flakyAnswers = 0;

beforeAll(async () => {
  origin = await startHttpOrigin((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    originSaw.push(req.url ?? '');
    // Every first request of the flaky path is shed: the retry gets the answer.
    if (req.url?.startsWith('/retried/') && flakyAnswers++ % 2 === 0) {
      res.writeHead(503, { 'content-length': '0' });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' });
    res.end('hello');
  });
  redis = createTestRedis('request-accounting');
  cache = createResponseCache({
    store: new RedisCacheStore(redis.client, { keyPrefix: redis.prefix }),
    l1MaxBytes: 1_000_000,
    registry: createMetricsRegistry('request-accounting', { defaultMetrics: false }),
    logger: createLogger({ service: 'test', level: 'error' }),
  });
  gateway = await startTestGateway(
    { GATEWAY_MAX_BODY_BYTES: '100', GATEWAY_MAX_HEADERS_COUNT: String(MAX_HEADERS) },
    { stages: [createCacheStage(cache)] },
  );
  const originId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      tenantId,
      subdomain: 'accounting',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [
        { id: routes.keyed, origin_id: originId, path_pattern: '/keyed/*', auth_mode: 'apikey_required' },
        {
          id: routes.denied,
          origin_id: originId,
          path_pattern: '/denied/*',
          ip_rules: { deny: ['127.0.0.1'] },
        },
        {
          id: routes.maintenance,
          origin_id: null,
          path_pattern: '/maintenance/*',
          fixed_response: { status: 503, body: 'down for maintenance' },
        },
        {
          id: routes.retried,
          origin_id: originId,
          path_pattern: '/retried/*',
          retries: { attempts: 2, on: ['503'], methods: ['GET'], backoff: { base_ms: 0, max_ms: 0 } },
        },
        {
          id: routes.cached,
          origin_id: originId,
          path_pattern: '/cached/*',
          cache_policy: { ttl_seconds: 60 },
        },
        {
          id: routes.open,
          origin_id: originId,
          path_pattern: '/open/*',
          cors: { allow_origins: ['https://app.example'] },
        },
      ],
    }),
  );
});

afterAll(async () => {
  await gateway?.close();
  await cache?.close();
  await origin?.close();
  await redis?.cleanup();
});

/** The sum of a series' samples whose labels include every given `name="value"`. */
async function scraped(name: string, labels: string[]): Promise<number> {
  const text = await gateway.registry.metrics();
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) || !labels.every((label) => line.includes(label))) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

const requestCount = (labels: string[]) =>
  scraped('vantageedge_gateway_request_duration_seconds_count', [`tenant="${tenantId}"`, ...labels]);
const errorCount = (labels: string[]) => scraped('vantageedge_gateway_error_responses_total', labels);

async function accessLine(requestId: string): Promise<Record<string, unknown>> {
  return vi.waitFor(
    () => {
      const found = gateway.logLines.find(
        (entry) => entry['kind'] === 'access' && entry['request_id'] === requestId,
      );
      if (found === undefined) throw new Error(`no access-log line for ${requestId} yet`);
      return found;
    },
    { timeout: 5_000 },
  );
}

/** One request with its own request id: its status, and the access-log line it got. */
async function request(path: string, init: Parameters<typeof send>[3] = {}) {
  const requestId = randomUUID();
  const response = await send(gateway, HOST, path, {
    ...init,
    headers: { ...init.headers, 'x-request-id': requestId },
  });
  return { status: response.status, line: await accessLine(requestId) };
}

describe('answers the gateway gives itself', () => {
  it('are each counted once under their route, with their code, and logged', async () => {
    const cases: Array<{
      path: string;
      init?: Parameters<typeof send>[3];
      status: number;
      code: string | null;
    }> = [
      { path: '/keyed/a', status: 401, code: 'missing_credentials' },
      { path: '/denied/a', status: 403, code: 'ip_denied' },
      { path: '/nowhere', status: 404, code: 'route_not_found' },
      {
        path: '/open/a',
        init: { method: 'POST', body: 'x'.repeat(101) },
        status: 413,
        code: 'payload_too_large',
      },
      {
        path: '/open/a',
        init: {
          method: 'OPTIONS',
          headers: { origin: 'https://app.example', 'access-control-request-method': 'GET' },
        },
        status: 204,
        code: null,
      },
    ];
    for (const { path, init, status, code } of cases) {
      const requestsBefore = await requestCount([`status_class="${String(status)[0]}xx"`]);
      const errorsBefore = code === null ? 0 : await errorCount([`status="${status}"`, `code="${code}"`]);
      const answer = await request(path, init);
      expect(answer.status, path).toBe(status);
      expect(answer.line).toMatchObject({ tenant_id: tenantId, status, error_code: code, upstream_ms: null });
      expect(await requestCount([`status_class="${String(status)[0]}xx"`]), path).toBe(requestsBefore + 1);
      if (code !== null) {
        expect(await errorCount([`status="${status}"`, `code="${code}"`]), path).toBe(errorsBefore + 1);
      }
    }
    expect(originSaw).toEqual([]);
  });

  it('a request refused 431 too_many_headers is counted and logged like any other refusal', async () => {
    const headers: Record<string, string> = {};
    for (let i = 0; i < MAX_HEADERS + 5; i++) headers[`x-extra-${i}`] = 'v';
    const before = await errorCount(['status="431"', 'code="too_many_headers"']);
    const requestsBefore = await scraped('vantageedge_gateway_request_duration_seconds_count', [
      'status_class="4xx"',
    ]);
    const answer = await request('/open/many-headers', { headers });
    expect(answer.status).toBe(431);
    expect(answer.line).toMatchObject({
      status: 431,
      error_code: 'too_many_headers',
      path: '/open/many-headers',
    });
    expect(await errorCount(['status="431"', 'code="too_many_headers"'])).toBe(before + 1);
    expect(await scraped('vantageedge_gateway_request_duration_seconds_count', ['status_class="4xx"'])).toBe(
      requestsBefore + 1,
    );
  });

  it("a fixed_response's error status is counted as the route's own answer, not the origin's", async () => {
    const before = await errorCount([`tenant="${tenantId}"`, 'status="503"']);
    const answer = await request('/maintenance/a');
    expect(answer.status).toBe(503);
    expect(answer.line).toMatchObject({
      route_id: routes.maintenance,
      status: 503,
      error_code: 'fixed_response',
    });
    expect(await errorCount([`tenant="${tenantId}"`, 'status="503"', 'code="fixed_response"'])).toBe(1);
    expect(await errorCount([`tenant="${tenantId}"`, 'status="503"', 'code="origin"'])).toBe(0);
    expect(await errorCount([`tenant="${tenantId}"`, 'status="503"'])).toBe(before + 1);
  });
});

describe('answers of the origin', () => {
  it('a retried request is one request in the metrics and the log, with its retry counted once', async () => {
    const route = `route="${routes.retried}"`;
    const before = await requestCount([route]);
    const answer = await request('/retried/a');
    expect(answer.status).toBe(200);
    expect(originSaw.filter((url) => url === '/retried/a')).toHaveLength(2);
    expect(answer.line).toMatchObject({ status: 200, retries: 1, error_code: null });
    expect(await requestCount([route])).toBe(before + 1);
    expect(await requestCount([route, 'status_class="5xx"'])).toBe(0);
    expect(
      await scraped('vantageedge_gateway_upstream_retries_total', [
        route,
        'outcome="retried"',
        'reason="503"',
      ]),
    ).toBe(1);
    expect(await scraped('vantageedge_gateway_upstream_duration_seconds_count', [route])).toBe(1);
  });

  it('a cache HIT is a request with no upstream time', async () => {
    const route = `route="${routes.cached}"`;
    const miss = await request('/cached/a');
    expect(miss.line).toMatchObject({ status: 200, cache: 'MISS' });
    expect(miss.line['upstream_ms']).toEqual(expect.any(Number));
    const hit = await request('/cached/a');
    expect(hit.line).toMatchObject({ status: 200, cache: 'HIT', upstream_ms: null, upstream_target: null });
    expect(originSaw.filter((url) => url === '/cached/a')).toHaveLength(1);
    expect(await requestCount([route, 'status_class="2xx"'])).toBe(2);
    expect(await scraped('vantageedge_gateway_upstream_duration_seconds_count', [route])).toBe(1);
  });
});
