import { randomUUID } from 'node:crypto';
import { type DiagLogger, DiagLogLevel, diag, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { freePort } from '@vantageedge/shared/testing/free-ports';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type GatewayTelemetry, startGatewayTelemetry } from '../observability/gateway-telemetry.js';
import { accessLineOf } from '../testing/access-lines.js';
import { collectingExporter, flushSpans } from '../testing/collected-spans.js';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { openWebSocket, roundTrip } from '../testing/open-websockets.js';
import { connectRaw } from '../testing/raw-connections.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { sendUpgrade } from '../testing/upgrade-request.js';
import { startWebSocketOrigin, type WebSocketOrigin } from '../testing/websocket-origins.js';

const HOST = 'traced-ws.localhost';
const LIMITED_HOST = 'traced-limit.localhost';
const ALLOWED_PAGE = 'https://app.example.com';

/**
 * A WebSocket upgrade traced as any request, by the HTTP conventions: a SERVER span for the upgrade
 * request and a CLIENT span for the origin's handshake, whose context the origin gets. Both end with
 * the handshake (the 101, or the refusal): an open WebSocket is no span, however long it stays open.
 */
describe('WebSocket upgrade tracing', () => {
  const finished: ReadableSpan[] = [];
  /** What the SDK complained about (a span ended twice, an operation on an ended span). */
  const sdkComplaints: string[] = [];
  let telemetry: GatewayTelemetry;
  let origin: WebSocketOrigin;
  /** The paths of the upgrades the origin received. */
  const asked: string[] = [];
  let gateway: TestGateway;
  let limited: TestGateway;

  /** The spans of a trace, once its SERVER span (which ends last) has been exported. */
  async function traceOf(traceId: unknown): Promise<{ server: ReadableSpan; clients: ReadableSpan[] }> {
    let spans: ReadableSpan[] = [];
    await vi.waitFor(
      async () => {
        await flushSpans();
        spans = finished.filter((span) => span.spanContext().traceId === traceId);
        expect(spans.some((span) => span.kind === SpanKind.SERVER)).toBe(true);
      },
      { timeout: 10_000 },
    );
    return {
      server: spans.find((span) => span.kind === SpanKind.SERVER)!,
      clients: spans.filter((span) => span.kind === SpanKind.CLIENT),
    };
  }

  beforeAll(async () => {
    telemetry = startGatewayTelemetry({
      enabled: true,
      serviceName: 'gateway-websocket-tracing-test',
      exporter: collectingExporter(finished),
    });
    const complain = (message: string) => sdkComplaints.push(message);
    const logger: DiagLogger = {
      error: complain,
      warn: complain,
      info: () => {},
      debug: () => {},
      verbose: () => {},
    };
    diag.setLogger(logger, { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
    origin = await startWebSocketOrigin({
      refuse: (path) => {
        asked.push(path);
        if (path.endsWith('/silent')) return 'hang';
        return path.endsWith('/refused') ? 403 : undefined;
      },
    });
    const unreachable = `http://127.0.0.1:${await freePort()}`;
    const originId = randomUUID();
    const unreachableId = randomUUID();
    gateway = await startTestGateway({}, { tracingEnabled: true });
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'traced-ws',
        origins: [
          { id: originId, targets: [origin.url] },
          {
            id: unreachableId,
            targets: [unreachable],
            health_check: { active: { enabled: false }, passive: { enabled: false } },
            circuit_breaker: { enabled: false },
          },
        ],
        routes: [
          { origin_id: originId, path_pattern: '/ws/*' },
          { origin_id: unreachableId, path_pattern: '/down/*' },
          { origin_id: originId, path_pattern: '/keyed/*', auth_mode: 'apikey_required' },
          { origin_id: originId, path_pattern: '/pages/*', cors: { allow_origins: [ALLOWED_PAGE] } },
        ],
      }),
    );
    limited = await startTestGateway(
      { GATEWAY_MAX_WEBSOCKETS_PER_TENANT: '1', GATEWAY_WEBSOCKET_CLIENT_SHARE: '1' },
      { tracingEnabled: true },
    );
    const limitedOriginId = randomUUID();
    limited.store.apply(
      buildSnapshot({
        subdomain: 'traced-limit',
        origins: [{ id: limitedOriginId, targets: [origin.url] }],
        routes: [{ origin_id: limitedOriginId, path_pattern: '/ws/*' }],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await limited?.close();
    await origin?.close();
    await telemetry?.shutdown();
    diag.disable();
  });

  // Regression: the upgrade had no CLIENT span, and the origin got the SERVER span's context as its parent.
  it("gives the origin's handshake a CLIENT span that ends at the 101 while the WebSocket stays open", async () => {
    const { socket, closed } = await openWebSocket(gateway, '/ws/held', { host: HOST });
    // The upgrade's access-log line is written when the WebSocket ends: its trace is the one the origin got.
    const traceId = String(origin.upgrades.at(-1)?.['traceparent']).split('-')[1]!;
    try {
      const { server, clients } = await traceOf(traceId);
      expect(server.name).toBe('GET /ws/*');
      expect(server.attributes['http.response.status_code']).toBe(101);
      expect(clients).toHaveLength(1);
      const [handshake] = clients;
      const originUrl = new URL(origin.url);
      expect(handshake?.name).toBe('GET');
      expect(handshake?.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
      expect(handshake?.attributes).toMatchObject({
        'http.request.method': 'GET',
        'server.address': originUrl.hostname,
        'server.port': Number(originUrl.port),
        'url.scheme': 'http',
        'vantageedge.upstream.target': origin.url,
        'http.response.status_code': 101,
      });
      expect(handshake?.attributes['error.type']).toBeUndefined();
      expect(handshake?.status.code).toBe(SpanStatusCode.UNSET);
      // The origin continues the handshake's span, as it does the CLIENT span of a plain request.
      expect(origin.upgrades.at(-1)?.['traceparent']).toBe(
        `00-${traceId}-${handshake?.spanContext().spanId}-01`,
      );
      // Both spans were exported while the WebSocket is still open end to end.
      expect(await roundTrip(socket, 'still open')).toBe('still open');
    } finally {
      // The client drops its connection without a close frame: the gateway sees it go first.
      socket.terminate();
      await closed;
    }
    // Its end is no second end of the handshake's span.
    const line = await accessLineOf(gateway, '/ws/held');
    expect(line).toMatchObject({ trace_id: traceId, status: 101, close_code: 1006, closed_by: 'client' });
    expect(sdkComplaints.filter((message) => message.includes(traceId))).toEqual([]);
  });

  // Regression: the origin's refusal was on no CLIENT span. As on a plain request, an origin's 4xx is
  // an error of the call to it, not of the SERVER span (the client's doing).
  it("marks the CLIENT span of the origin's refusal (403) an error, and not the SERVER span", async () => {
    const answer = await sendUpgrade(gateway, HOST, '/ws/refused');
    expect(answer.status).toBe(403);
    const { server, clients } = await traceOf((await accessLineOf(gateway, '/ws/refused'))['trace_id']);
    expect(clients).toHaveLength(1);
    expect(clients[0]?.attributes).toMatchObject({ 'http.response.status_code': 403, 'error.type': '403' });
    expect(clients[0]?.status.code).toBe(SpanStatusCode.ERROR);
    expect(server.attributes['http.response.status_code']).toBe(403);
    expect(server.attributes['error.type']).toBeUndefined();
    expect(server.status.code).toBe(SpanStatusCode.UNSET);
  });

  // Regression: an origin that could not be reached left no span of the attempt at all.
  it('ends the CLIENT span of an unreachable origin without a status, with error.type upstream_unreachable', async () => {
    const answer = await sendUpgrade(gateway, HOST, '/down/socket');
    expect(answer.status).toBe(502);
    expect(JSON.parse(answer.text).error.code).toBe('upstream_unreachable');
    const { server, clients } = await traceOf((await accessLineOf(gateway, '/down/socket'))['trace_id']);
    expect(clients).toHaveLength(1);
    expect(clients[0]?.attributes['http.response.status_code']).toBeUndefined();
    expect(clients[0]?.attributes['error.type']).toBe('upstream_unreachable');
    expect(clients[0]?.status.code).toBe(SpanStatusCode.ERROR);
    expect(server.attributes).toMatchObject({
      'http.response.status_code': 502,
      'error.type': 'upstream_unreachable',
    });
    expect(server.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('ends each span once when the client leaves while the origin has not answered the handshake', async () => {
    const client = await connectRaw('plain', gateway.gateway.trafficPort);
    client.socket.write(
      `GET /ws/silent HTTP/1.1\r\nHost: ${HOST}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    await vi.waitFor(() => expect(asked).toContain('/ws/silent'), { timeout: 10_000 });
    client.socket.destroy();
    const line = await accessLineOf(gateway, '/ws/silent');
    expect(line['status']).toBe(499);
    const traceId = line['trace_id'] as string;
    const { server, clients } = await traceOf(traceId);
    expect(clients).toHaveLength(1);
    expect(clients[0]?.attributes['http.response.status_code']).toBeUndefined();
    expect(clients[0]?.attributes['error.type']).toBe('client_closed_request');
    expect(server.attributes['http.response.status_code']).toBeUndefined();
    expect(server.attributes['error.type']).toBe('client_closed_request');
    expect(sdkComplaints.filter((message) => message.includes(traceId))).toEqual([]);
  });

  // The gateway answered these itself, before any origin was asked: a SERVER span with its answer, and
  // no CLIENT span (none started, so none left open).
  it.each([
    ['a missing API key (401)', '/keyed/socket', {}, 401],
    ["another site's page (403)", '/pages/socket', { origin: 'https://elsewhere.example' }, 403],
  ])(
    'ends the SERVER span of an upgrade refused for %s, with no CLIENT span',
    async (_case, path, headers, status) => {
      const asking = asked.length;
      const answer = await sendUpgrade(gateway, HOST, path, headers);
      expect(answer.status).toBe(status);
      const { server, clients } = await traceOf((await accessLineOf(gateway, path))['trace_id']);
      expect(server.attributes['http.response.status_code']).toBe(status);
      expect(clients).toEqual([]);
      expect(asked).toHaveLength(asking);
    },
  );

  it("ends the SERVER span of an upgrade refused at its tenant's WebSocket limit (503), with no CLIENT span", async () => {
    const holding = await openWebSocket(limited, '/ws/holding', { host: LIMITED_HOST });
    try {
      const answer = await sendUpgrade(limited, LIMITED_HOST, '/ws/over-limit');
      expect(answer.status).toBe(503);
      const { server, clients } = await traceOf((await accessLineOf(limited, '/ws/over-limit'))['trace_id']);
      expect(server.attributes).toMatchObject({
        'http.response.status_code': 503,
        'error.type': 'websocket_limit',
      });
      expect(clients).toEqual([]);
    } finally {
      holding.socket.close();
      await holding.closed;
    }
  });
});
