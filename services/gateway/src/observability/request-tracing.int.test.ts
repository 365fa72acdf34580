import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { cachePolicy } from '@vantageedge/shared/domain/gateway-config';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { SPAN_ATTRIBUTE_VALUE_MAX } from '@vantageedge/shared/observability/span-limits';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createCacheStage } from '../cache/cache-stage.js';
import { MemoryCacheStore } from '../cache/memory-cache-store.js';
import { createResponseCache, type ResponseCache } from '../cache/response-cache.js';
import { accessLineOf } from '../testing/access-lines.js';
import { collectingExporter, flushSpans } from '../testing/collected-spans.js';
import {
  type GatewayResponse,
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { sendUpgrade } from '../testing/upgrade-request.js';
import { type GatewayTelemetry, startGatewayTelemetry } from './gateway-telemetry.js';

function originHeaders(response: GatewayResponse): Record<string, string | undefined> {
  return response.json()['headers'] as Record<string, string | undefined>;
}

async function startTracedGateway(
  origin: TestOrigin,
  tenantId: string,
  env: Record<string, string> = {},
): Promise<TestGateway> {
  const gateway = await startTestGateway(env, { tracingEnabled: true });
  const originId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      tenantId,
      subdomain: 'traced',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [{ origin_id: originId, path_pattern: '/orders/*' }],
    }),
  );
  return gateway;
}

/**
 * With tracing on, a request yields a SERVER span and an upstream child span. It continues the
 * caller's traceparent only when the peer is a trusted proxy; for any other client the gateway is the
 * edge and starts its own trace, linked to the client's.
 */
describe('request tracing', () => {
  const finished: ReadableSpan[] = [];
  let telemetry: GatewayTelemetry;
  let origin: TestOrigin;
  let edge: TestGateway;
  let behindProxy: TestGateway;
  let upgradeOrigin: Server;
  let upgrades: TestGateway;
  const seenByUpgradeOrigin: IncomingHttpHeaders[] = [];
  const tenantId = randomUUID();
  let cachingOrigin: Server;
  const seenByCachingOrigin: IncomingHttpHeaders[] = [];
  let cache: ResponseCache;
  let cacheSkewMs = 0;
  let caching: TestGateway;
  const retryTargets: Server[] = [];
  const seenByRetryTargets: IncomingHttpHeaders[] = [];
  let retrying: TestGateway;
  /** Answers `/orders/<status>` with that status, and never answers `/orders/silent`. */
  let scriptedOrigin: Server;
  const seenByScriptedOrigin: string[] = [];
  let scripted: TestGateway;

  beforeAll(async () => {
    telemetry = startGatewayTelemetry({
      enabled: true,
      serviceName: 'gateway-test',
      exporter: collectingExporter(finished),
    });
    origin = await startTestOrigin('traced');
    edge = await startTracedGateway(origin, tenantId);
    // The test client connects from 127.0.0.1: here it stands for a load balancer in front.
    behindProxy = await startTracedGateway(origin, tenantId, { GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32' });
    upgradeOrigin = createServer((_req, res) => res.end('plain'));
    upgradeOrigin.on('upgrade', (req, socket: Socket) => {
      seenByUpgradeOrigin.push(req.headers);
      socket.end(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n',
      );
    });
    await new Promise<void>((resolve) => upgradeOrigin.listen(0, '127.0.0.1', resolve));
    const upgradeOriginUrl = `http://127.0.0.1:${(upgradeOrigin.address() as AddressInfo).port}`;
    upgrades = await startTracedGateway({ url: upgradeOriginUrl } as TestOrigin, randomUUID());
    cachingOrigin = createServer((req, res) => {
      seenByCachingOrigin.push(req.headers);
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=1' });
      res.end('{"from":"origin"}');
    });
    await new Promise<void>((resolve) => cachingOrigin.listen(0, '127.0.0.1', resolve));
    cache = createResponseCache({
      store: new MemoryCacheStore({ maxBytes: 10_000_000, now: () => Date.now() + cacheSkewMs }),
      l1MaxBytes: 1_000_000,
      registry: new Registry(),
      logger: createLogger({ service: 'test', level: 'error' }),
      now: () => Date.now() + cacheSkewMs,
    });
    caching = await startTestGateway({}, { tracingEnabled: true, stages: [createCacheStage(cache)] });
    const cachingTenantId = randomUUID();
    const cachingOriginId = randomUUID();
    const cached = buildSnapshot({
      tenantId: cachingTenantId,
      subdomain: 'traced-cache',
      origins: [
        {
          id: cachingOriginId,
          targets: [`http://127.0.0.1:${(cachingOrigin.address() as AddressInfo).port}`],
        },
      ],
      routes: [{ origin_id: cachingOriginId, path_pattern: '/*' }],
    });
    cached.routes[0]!.cache_policy = cachePolicy.parse({
      ttl_seconds: 1,
      stale_while_revalidate_seconds: 60,
    });
    await cache.prepareTenant(cachingTenantId);
    caching.store.apply(cached);
    // Two targets of one origin: whichever gets the first request answers 503, every later one 200.
    for (let i = 0; i < 2; i++) {
      const target = createServer((req, res) => {
        seenByRetryTargets.push(req.headers);
        req.resume();
        res.writeHead(seenByRetryTargets.length === 1 ? 503 : 200, { 'content-type': 'text/plain' });
        res.end('answer');
      });
      await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
      retryTargets.push(target);
    }
    scriptedOrigin = createServer((req, res) => {
      seenByScriptedOrigin.push(req.url ?? '');
      req.resume();
      const status = Number(req.url?.slice('/orders/'.length));
      if (Number.isInteger(status)) res.writeHead(status).end();
    });
    await new Promise<void>((resolve) => scriptedOrigin.listen(0, '127.0.0.1', resolve));
    scripted = await startTracedGateway(
      { url: `http://127.0.0.1:${(scriptedOrigin.address() as AddressInfo).port}` } as TestOrigin,
      randomUUID(),
    );
    retrying = await startTestGateway({}, { tracingEnabled: true });
    const retryingOriginId = randomUUID();
    retrying.store.apply(
      buildSnapshot({
        subdomain: 'traced-retry',
        origins: [
          {
            id: retryingOriginId,
            targets: retryTargets.map(
              (target) => `http://127.0.0.1:${(target.address() as AddressInfo).port}`,
            ),
            health_check: { active: { enabled: false }, passive: { enabled: false } },
            circuit_breaker: { enabled: false },
          },
        ],
        routes: [
          {
            origin_id: retryingOriginId,
            path_pattern: '/*',
            retries: { on: ['503'], backoff: { base_ms: 0, max_ms: 0 } },
          },
        ],
      }),
    );
  });

  afterAll(async () => {
    await edge?.close();
    await behindProxy?.close();
    await upgrades?.close();
    await origin?.close();
    upgradeOrigin?.closeAllConnections();
    await new Promise((resolve) => upgradeOrigin?.close(resolve));
    await caching?.close();
    await cache?.close();
    cachingOrigin?.closeAllConnections();
    await new Promise((resolve) => cachingOrigin?.close(resolve));
    await retrying?.close();
    await scripted?.close();
    scriptedOrigin?.closeAllConnections();
    await new Promise((resolve) => scriptedOrigin?.close(resolve));
    for (const target of retryTargets) {
      target.closeAllConnections();
      await new Promise((resolve) => target.close(resolve));
    }
    await telemetry?.shutdown();
  });

  it('continues the traceparent of a trusted proxy and propagates the upstream span to the origin', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const response = await send(behindProxy, 'traced.localhost', '/orders/42?expand=items', {
      headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01`, tracestate: 'lb=7' },
    });
    expect(response.status).toBe(200);
    // The server span ends when the response closes, together with the access-log line.
    expect((await accessLineOf(behindProxy, '/orders/42'))['trace_id']).toBe(traceId);
    await flushSpans();
    const spans = finished.filter((span) => span.spanContext().traceId === traceId);
    const server = spans.find((span) => span.kind === SpanKind.SERVER);
    const upstream = spans.find((span) => span.kind === SpanKind.CLIENT);
    expect(server?.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    expect(server?.attributes['vantageedge.tenant.id']).toBe(tenantId);
    expect(server?.attributes['http.response.status_code']).toBe(200);
    expect(upstream?.parentSpanContext?.spanId).toBe(server?.spanContext().spanId);
    // Regression: the server span was named "GET gateway" with only the status attribute, and the
    // upstream CLIENT span had no attributes; both follow the OTel HTTP semantic conventions now.
    expect(server?.name).toBe('GET /orders/*');
    expect(server?.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.path': '/orders/42',
      'http.route': '/orders/*',
      'server.address': 'traced.localhost',
      'http.response.status_code': 200,
    });
    const originUrl = new URL(origin.url);
    expect(upstream?.name).toBe('GET');
    expect(upstream?.attributes).toMatchObject({
      'http.request.method': 'GET',
      'server.address': originUrl.hostname,
      'server.port': Number(originUrl.port),
      'http.response.status_code': 200,
    });
    expect(spans.some((span) => span.name === 'auth')).toBe(true);
    const sent = originHeaders(response);
    expect(sent['traceparent']).toBe(`00-${traceId}-${upstream?.spanContext().spanId}-01`);
    expect(sent['tracestate']).toBe('lb=7');
  });

  // Regression: the client's traceparent was always the parent, so a client sending `-00` had none of
  // its requests traced (not the SERVER span, not the stages, not the upstream call).
  it("starts its own trace for an untrusted client, linked to the client's, whatever the client's sampled flag", async () => {
    const clientTraceId = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
    const response = await send(edge, 'traced.localhost', '/orders/hidden', {
      headers: { traceparent: `00-${clientTraceId}-bbbbbbbbbbbbbbbb-00`, tracestate: 'client=1' },
    });
    expect(response.status).toBe(200);
    const traceId = (await accessLineOf(edge, '/orders/hidden'))['trace_id'];
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(traceId).not.toBe(clientTraceId);
    await flushSpans();
    const spans = finished.filter((span) => span.spanContext().traceId === traceId);
    const server = spans.find((span) => span.kind === SpanKind.SERVER);
    const upstream = spans.find((span) => span.kind === SpanKind.CLIENT);
    expect(server?.attributes['url.path']).toBe('/orders/hidden');
    expect(server?.parentSpanContext).toBeUndefined();
    expect(server?.links.map((link) => link.context)).toMatchObject([
      { traceId: clientTraceId, spanId: 'bbbbbbbbbbbbbbbb' },
    ]);
    expect(spans.some((span) => span.name === 'auth')).toBe(true);
    expect(upstream?.parentSpanContext?.spanId).toBe(server?.spanContext().spanId);
    expect(finished.some((span) => span.spanContext().traceId === clientTraceId)).toBe(false);
    // The origin joins the gateway's trace, with the gateway's sampling decision.
    const sent = originHeaders(response);
    expect(sent['traceparent']).toBe(`00-${traceId}-${upstream?.spanContext().spanId}-01`);
    expect(sent['tracestate']).toBeUndefined();
  });

  // Regression: a WebSocket upgrade got no span, and the client's traceparent and tracestate reached
  // the origin untouched: an untrusted client chose the trace (and sampled flag) its origin continued.
  it("starts its own trace for an untrusted client's WebSocket upgrade and sends the origin its context", async () => {
    const clientTraceId = 'cccccccccccccccccccccccccccccccc';
    const answer = await sendUpgrade(upgrades, 'traced.localhost', '/orders/socket', {
      traceparent: `00-${clientTraceId}-dddddddddddddddd-01`,
      tracestate: 'client=forced',
    });
    expect(answer.status).toBe(101);
    const sent = seenByUpgradeOrigin.at(-1)!;
    expect(sent['traceparent']).not.toContain(clientTraceId);
    const traceId = (await accessLineOf(upgrades, '/orders/socket'))['trace_id'];
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(sent['traceparent']).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    expect(sent['tracestate']).toBeUndefined();
    await flushSpans();
    const server = finished.find(
      (span) => span.spanContext().traceId === traceId && span.kind === SpanKind.SERVER,
    );
    expect(server?.name).toBe('GET /orders/*');
    expect(server?.attributes['http.response.status_code']).toBe(101);
    expect(server?.links.map((link) => link.context)).toMatchObject([
      { traceId: clientTraceId, spanId: 'dddddddddddddddd' },
    ]);
  });

  // Regression: the origin request that refreshes a stale cache entry in the background carried the
  // client's traceparent and tracestate untouched, so an untrusted client chose the trace (and sampled
  // flag) the origin continued, and the tracestate it read.
  it("sends the origin the gateway's trace context, never the client's, when refreshing a stale entry", async () => {
    expect((await send(caching, 'traced-cache.localhost', '/catalog')).status).toBe(200);
    const clientTraceId = 'eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee';
    cacheSkewMs = 2_000;
    try {
      const stale = await send(caching, 'traced-cache.localhost', '/catalog', {
        headers: { traceparent: `00-${clientTraceId}-ffffffffffffffff-01`, tracestate: 'client=forced' },
      });
      expect(stale.headers['x-cache']).toBe('STALE');
      await vi.waitFor(() => expect(seenByCachingOrigin).toHaveLength(2), { timeout: 10_000 });
    } finally {
      cacheSkewMs = 0;
    }
    const refresh = seenByCachingOrigin[1]!;
    await vi.waitFor(
      () => expect(caching.logLines.filter((line) => line['path'] === '/catalog')).toHaveLength(2),
      { timeout: 10_000 },
    );
    const traceId = caching.logLines.filter((line) => line['path'] === '/catalog')[1]!['trace_id'];
    expect(refresh['traceparent']).not.toContain(clientTraceId);
    expect(refresh['traceparent']).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    expect(refresh['tracestate']).toBeUndefined();
  });

  // Regression: the attempt whose 503 the gateway dropped to retry ended as if the origin had never
  // answered (error.type no_response, no status code), and the retry did not say it was one.
  it('gives each attempt of a retried request its own CLIENT span, with the status its origin answered', async () => {
    const response = await send(retrying, 'traced-retry.localhost', '/retried');
    expect(response.status).toBe(200);
    const traceId = (await accessLineOf(retrying, '/retried'))['trace_id'];
    await flushSpans();
    const spans = finished.filter((span) => span.spanContext().traceId === traceId);
    const server = spans.find((span) => span.kind === SpanKind.SERVER);
    const attempts = spans
      .filter((span) => span.kind === SpanKind.CLIENT)
      .sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]);
    expect(attempts).toHaveLength(2);
    for (const attempt of attempts) {
      expect(attempt.parentSpanContext?.spanId).toBe(server?.spanContext().spanId);
    }
    const [dropped, answered] = attempts;
    expect(dropped?.attributes['http.response.status_code']).toBe(503);
    expect(dropped?.attributes['error.type']).toBe('503');
    expect(dropped?.attributes['http.request.resend_count']).toBeUndefined();
    expect(answered?.attributes['http.response.status_code']).toBe(200);
    expect(answered?.attributes['error.type']).toBeUndefined();
    expect(answered?.attributes['http.request.resend_count']).toBe(1);
    // Each attempt carries its own span as the origin's parent.
    expect(seenByRetryTargets.map((headers) => headers['traceparent'])).toEqual(
      attempts.map((attempt) => `00-${traceId}-${attempt.spanContext().spanId}-01`),
    );
    expect(server?.attributes['http.response.status_code']).toBe(200);
  });

  // Regression: an origin's 4xx left the CLIENT span's status unset. The HTTP conventions mark a 4xx
  // an error on the client side (the request failed) and not on the server side (the client's doing).
  it("marks the CLIENT span of an origin's 404 an error, and not the SERVER span", async () => {
    expect((await send(scripted, 'traced.localhost', '/orders/404')).status).toBe(404);
    const traceId = (await accessLineOf(scripted, '/orders/404'))['trace_id'];
    await flushSpans();
    const spans = finished.filter((span) => span.spanContext().traceId === traceId);
    const server = spans.find((span) => span.kind === SpanKind.SERVER);
    const upstream = spans.find((span) => span.kind === SpanKind.CLIENT);
    expect(upstream?.attributes).toMatchObject({ 'http.response.status_code': 404, 'error.type': '404' });
    expect(upstream?.status.code).toBe(SpanStatusCode.ERROR);
    expect(server?.attributes['http.response.status_code']).toBe(404);
    expect(server?.attributes['error.type']).toBeUndefined();
    expect(server?.status.code).toBe(SpanStatusCode.UNSET);
  });

  // Regression: a client that left while the origin had not answered yet left a CLIENT span with
  // http.response.status_code 200 (the unsent response's default) and no error.
  it('ends the CLIENT span without a status when the client leaves before the answer', async () => {
    const socket = connect(scripted.gateway.trafficPort, '127.0.0.1');
    socket.write('GET /orders/silent HTTP/1.1\r\nHost: traced.localhost\r\n\r\n');
    await vi.waitFor(() => expect(seenByScriptedOrigin).toContain('/orders/silent'), { timeout: 10_000 });
    socket.destroy();
    const line = await accessLineOf(scripted, '/orders/silent');
    expect(line['status']).toBe(499);
    let upstream: ReadableSpan | undefined;
    await vi.waitFor(
      async () => {
        await flushSpans();
        upstream = finished.find(
          (span) => span.spanContext().traceId === line['trace_id'] && span.kind === SpanKind.CLIENT,
        );
        expect(upstream).toBeDefined();
      },
      { timeout: 10_000 },
    );
    expect(upstream?.attributes['http.response.status_code']).toBeUndefined();
    expect(upstream?.attributes['error.type']).toBe('client_closed_request');
  });

  // W3C Trace Context: a traceparent that does not parse starts a new trace, and its tracestate is not
  // read; even a trusted proxy's (it may pass on what its own client sent).
  const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
  const VALID = `00-${TRACE_ID}-00f067aa0ba902b7-01`;
  it.each([
    ['upper-case hex', VALID.toUpperCase()],
    ['version ff', `ff-${TRACE_ID}-00f067aa0ba902b7-01`],
    ['an all-zero trace id', `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`],
    ['an all-zero parent id', `00-${TRACE_ID}-${'0'.repeat(16)}-01`],
    ['version 00 with another field', `${VALID}-${'x'.repeat(4_000)}`],
    ['two traceparent headers', [VALID, VALID]],
  ])("starts a new trace for a trusted proxy's traceparent with %s", async (_case, traceparent) => {
    const response = await send(behindProxy, 'traced.localhost', '/orders/malformed', {
      // node sends an array as one header line per value.
      headers: { traceparent, tracestate: 'lb=7' } as unknown as Record<string, string>,
    });
    expect(response.status).toBe(200);
    const sent = originHeaders(response);
    expect(sent['traceparent']).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(sent['traceparent']).not.toContain(TRACE_ID);
    expect(sent['tracestate']).toBeUndefined();
  });

  it("continues a trusted proxy's later-version traceparent as version 00, with at most 32 tracestate members", async () => {
    const members = Array.from({ length: 100 }, (_, i) => `k${i}=v${i}`);
    const response = await send(behindProxy, 'traced.localhost', '/orders/future', {
      headers: {
        traceparent: `cc-${TRACE_ID}-00f067aa0ba902b7-09-fields-of-a-later-version`,
        tracestate: members.join(','),
      },
    });
    expect(response.status).toBe(200);
    const sent = originHeaders(response);
    expect(sent['traceparent']).toMatch(new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-01$`));
    expect(sent['tracestate']).toBe(members.slice(0, 32).join(','));
  });

  // Regression: the span's url.path was the raw target, so an absolute-form request's password
  // (`GET http://user:password@host/…`) went to the collector.
  it('sends the collector no user information of an absolute-form target', async () => {
    const socket = connect(edge.gateway.trafficPort, '127.0.0.1');
    socket.write(
      'GET http://alice:hunter2@traced.localhost/orders/absolute HTTP/1.1\r\n' +
        'Host: traced.localhost\r\nConnection: close\r\n\r\n',
    );
    const answer = await new Promise<string>((resolve) => {
      let text = '';
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString('latin1');
      });
      socket.on('close', () => resolve(text));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 \d{3}/);
    await flushSpans();
    const server = finished.find(
      (span) =>
        span.kind === SpanKind.SERVER && String(span.attributes['url.path']).includes('/orders/absolute'),
    );
    expect(server?.attributes['url.path']).toBe('http://traced.localhost/orders/absolute');
  });

  // Every tenant's spans share the exporter's queue (2048 spans) and its batches: a client sending
  // request heads of the header limit's size made each span as large as the head.
  it("cuts a client's long path and host to a bounded length in the span sent to the collector", async () => {
    const longPath = `/orders/${'p'.repeat(12_000)}`;
    const longHost = `${'h'.repeat(3_000)}.traced.localhost`;
    expect((await send(edge, 'traced.localhost', longPath)).status).toBe(200);
    expect((await send(edge, longHost, '/orders/long-host')).status).toBeGreaterThanOrEqual(400);
    await flushSpans();
    const servers = finished.filter((span) => span.kind === SpanKind.SERVER);
    const byPath = servers.find((span) => String(span.attributes['url.path']).startsWith('/orders/ppp'));
    const byHost = servers.find((span) => String(span.attributes['server.address']).startsWith('hhh'));
    expect(byPath?.attributes['url.path']).toBe(longPath.slice(0, SPAN_ATTRIBUTE_VALUE_MAX));
    expect(byHost?.attributes['server.address']).toBe(longHost.slice(0, SPAN_ATTRIBUTE_VALUE_MAX));
  });

  it('starts its own trace for an untrusted client without a traceparent, with no link', async () => {
    const response = await send(edge, 'traced.localhost', '/orders/plain');
    expect(response.status).toBe(200);
    const traceId = (await accessLineOf(edge, '/orders/plain'))['trace_id'];
    await flushSpans();
    const server = finished.find(
      (span) => span.spanContext().traceId === traceId && span.kind === SpanKind.SERVER,
    );
    expect(server?.links).toEqual([]);
    expect(originHeaders(response)['traceparent']).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
  });
});

/** With tracing off, the access log correlates by the client's traceparent, when it is a valid one. */
describe('access-log trace id without tracing', () => {
  let origin: TestOrigin;
  let gateway: TestGateway;

  beforeAll(async () => {
    origin = await startTestOrigin('untraced');
    gateway = await startTestGateway();
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'untraced',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [{ origin_id: originId, path_pattern: '/orders/*' }],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  it("logs a valid traceparent's trace id and forwards the header untouched", async () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const response = await send(gateway, 'untraced.localhost', '/orders/valid', { headers: { traceparent } });
    expect(response.status).toBe(200);
    expect((await accessLineOf(gateway, '/orders/valid'))['trace_id']).toBe(
      '0af7651916cd43dd8448eb211c80319c',
    );
    expect(originHeaders(response)['traceparent']).toBe(traceparent);
  });

  // Regression: any 32 characters after `00-` were logged as the trace id.
  it('logs no trace id for a traceparent that is not a W3C one', async () => {
    const forged = `00-${'tenant=other admin=yes status=200'.slice(0, 32)}-0000000000000000-01xxxx`;
    const response = await send(gateway, 'untraced.localhost', '/orders/forged', {
      headers: { traceparent: forged },
    });
    expect(response.status).toBe(200);
    expect((await accessLineOf(gateway, '/orders/forged'))['trace_id']).toBeNull();
  });
});
