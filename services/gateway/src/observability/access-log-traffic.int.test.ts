import { randomUUID } from 'node:crypto';
import type { ClientHttp2Session } from 'node:http2';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createTestRedis, type TestRedis } from '@vantageedge/shared/testing/redis';
import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createCacheStage } from '../cache/cache-stage.js';
import { RedisCacheStore } from '../cache/redis-cache-store.js';
import { createResponseCache, type ResponseCache } from '../cache/response-cache.js';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { type HttpOrigin, startHttpOrigin } from '../testing/http-origins.js';
import {
  CLIENT_CLOSE,
  clientTextFrame,
  extendedConnect,
  opened,
  openSession,
} from '../testing/http2-websockets.js';
import { openWebSocket, roundTrip } from '../testing/open-websockets.js';
import { connectRaw } from '../testing/raw-connections.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { sendUpgrade } from '../testing/upgrade-request.js';
import { startWebSocketOrigin, type WebSocketOrigin } from '../testing/websocket-origins.js';

/**
 * What each request moved, in its access-log line and in the tenant's bandwidth counter: `bytes_received`
 * (the request body's bytes as read), `bytes_sent` (the response body's bytes sent; Envoy's
 * %BYTES_RECEIVED% and %BYTES_SENT%) and `user_agent`, per request on a keep-alive connection, pipelined
 * or not, and per HTTP/2 stream, though the connection's counters are shared.
 */
const HOST = 'traffic.localhost';
const MAX_HEADER_BYTES = 8192;
const tenantId = randomUUID();
const routes = { open: randomUUID(), cached: randomUUID(), ws: randomUUID() };
let origin: HttpOrigin;
let wsOrigin: WebSocketOrigin;
let gateway: TestGateway;
let redis: TestRedis;
let cache: ResponseCache;
let session: ClientHttp2Session;

beforeAll(async () => {
  // Reads the whole body, answers `?n=` bytes of body; `&chunks=k` in k writes (chunked to the client).
  origin = await startHttpOrigin((req, res) => {
    req.resume();
    req.on('end', () => {
      const query = new URLSearchParams((req.url ?? '').split('?')[1] ?? '');
      const body = 'x'.repeat(Number(query.get('n') ?? '0'));
      const chunks = Number(query.get('chunks') ?? '1');
      if (chunks <= 1) {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' }).end(body);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      const size = Math.ceil(body.length / chunks);
      for (let at = 0; at < body.length; at += size) res.write(body.slice(at, at + size));
      res.end();
    });
  });
  wsOrigin = await startWebSocketOrigin();
  redis = createTestRedis('access-log-traffic');
  cache = createResponseCache({
    store: new RedisCacheStore(redis.client, { keyPrefix: redis.prefix }),
    l1MaxBytes: 1_000_000,
    registry: createMetricsRegistry('access-log-traffic', { defaultMetrics: false }),
    logger: createLogger({ service: 'test', level: 'error' }),
  });
  gateway = await startTestGateway(
    { GATEWAY_H2C: 'true', GATEWAY_MAX_HEADER_BYTES: String(MAX_HEADER_BYTES) },
    { stages: [createCacheStage(cache)] },
  );
  const originId = randomUUID();
  const wsOriginId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      tenantId,
      subdomain: 'traffic',
      origins: [
        { id: originId, targets: [origin.url] },
        { id: wsOriginId, targets: [wsOrigin.url] },
      ],
      routes: [
        {
          id: routes.cached,
          origin_id: originId,
          path_pattern: '/cached/*',
          cache_policy: { ttl_seconds: 60 },
        },
        { id: routes.ws, origin_id: wsOriginId, path_pattern: '/ws/*' },
        { id: routes.open, origin_id: originId, path_pattern: '/open/*' },
      ],
    }),
  );
  await cache.prepareTenant(tenantId);
  session = http2Connect(gateway.url);
});

afterAll(async () => {
  session?.close();
  await gateway?.close();
  await cache?.close();
  await origin?.close();
  await wsOrigin?.close();
  await redis?.cleanup();
});

function logLine(matches: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  return vi.waitFor(
    () => {
      const found = gateway.logLines.find(matches);
      if (found === undefined) throw new Error('no such log line yet');
      return found;
    },
    { timeout: 5_000 },
  );
}

const accessLine = (requestId: string) =>
  logLine((line) => line['kind'] === 'access' && line['request_id'] === requestId);

/** The tenant's bandwidth counter in /metrics (0 when absent). */
async function bandwidth(tenant: string, direction: 'ingress' | 'egress'): Promise<number> {
  const text = await gateway.registry.metrics();
  const series = `vantageedge_gateway_bandwidth_bytes_total{tenant="${tenant}",direction="${direction}"} `;
  const line = text.split('\n').find((entry) => entry.startsWith(series));
  return line === undefined ? 0 : Number(line.slice(series.length));
}

describe('bytes and user agent of HTTP/1.1 requests', () => {
  it('are each request’s own on a keep-alive connection, pipelined or not, and add up in the tenant’s bandwidth', async () => {
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    const ingressBefore = await bandwidth(tenantId, 'ingress');
    const egressBefore = await bandwidth(tenantId, 'egress');
    const client = await connectRaw('plain', gateway.gateway.trafficPort);
    // Two requests in one write (pipelined), the second with a chunked body and a chunked answer.
    client.socket.write(
      `POST /open/a?n=3 HTTP/1.1\r\nHost: ${HOST}\r\nX-Request-Id: ${ids[0]}\r\nUser-Agent: first/1.0\r\n` +
        'Content-Length: 11\r\n\r\nhello world' +
        `POST /open/b?n=1000&chunks=4 HTTP/1.1\r\nHost: ${HOST}\r\nX-Request-Id: ${ids[1]}\r\n` +
        'User-Agent: second/2.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n0\r\n\r\n',
    );
    await vi.waitFor(() => expect(client.received().match(/HTTP\/1\.1 200/g)).toHaveLength(2), {
      timeout: 5_000,
    });
    // Then a third on the same connection once the first two are answered.
    client.socket.write(`GET /open/c?n=20 HTTP/1.1\r\nHost: ${HOST}\r\nX-Request-Id: ${ids[2]}\r\n\r\n`);
    const [first, second, third] = await Promise.all(ids.map(accessLine));
    client.socket.destroy();

    expect(first).toMatchObject({ status: 200, bytes_received: 11, bytes_sent: 3, user_agent: 'first/1.0' });
    expect(second).toMatchObject({
      status: 200,
      bytes_received: 5,
      bytes_sent: 1000,
      user_agent: 'second/2.0',
    });
    expect(third).toMatchObject({ status: 200, bytes_received: 0, bytes_sent: 20, user_agent: null });
    expect(await bandwidth(tenantId, 'ingress')).toBe(ingressBefore + 16);
    expect(await bandwidth(tenantId, 'egress')).toBe(egressBefore + 1023);
  });

  it('count a cached HIT’s body, nothing for a HEAD, and the gateway’s own 4xx answer', async () => {
    const [miss, hit, head, notFound] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    await send(gateway, HOST, '/cached/item?n=42', { headers: { 'x-request-id': miss } });
    const answer = await send(gateway, HOST, '/cached/item?n=42', { headers: { 'x-request-id': hit } });
    expect(answer.headers['x-cache']).toBe('HIT');
    await send(gateway, HOST, '/open/h?n=10', { method: 'HEAD', headers: { 'x-request-id': head } });
    const refused = await send(gateway, HOST, '/nowhere', {
      method: 'POST',
      body: 'abc',
      headers: { 'x-request-id': notFound, 'user-agent': 'probe/0.1' },
    });
    expect(refused.status).toBe(404);

    expect(await accessLine(miss)).toMatchObject({ cache: 'MISS', bytes_sent: 42 });
    expect(await accessLine(hit)).toMatchObject({ cache: 'HIT', bytes_received: 0, bytes_sent: 42 });
    expect(await accessLine(head)).toMatchObject({ status: 200, bytes_sent: 0 });
    expect(await accessLine(notFound)).toMatchObject({
      status: 404,
      error_code: 'route_not_found',
      bytes_sent: Buffer.byteLength(refused.text),
      user_agent: 'probe/0.1',
    });
  });

  it('log a crafted user agent escaped, and a long one cut', async () => {
    const crafted = 'evil/1 ","status":200,\t"x":"\\ é';
    const [craftedId, longId] = [randomUUID(), randomUUID()];
    await send(gateway, HOST, '/open/ua', { headers: { 'x-request-id': craftedId, 'user-agent': crafted } });
    const long = 'A'.repeat(4000);
    await send(gateway, HOST, '/open/ua', { headers: { 'x-request-id': longId, 'user-agent': long } });
    expect(await accessLine(craftedId)).toMatchObject({ status: 200, user_agent: crafted });
    expect(await accessLine(longId)).toMatchObject({ user_agent: `${'A'.repeat(512)}…` });
  });

  it('a request the listener refuses is logged with the bytes of its answer', async () => {
    const egressBefore = await bandwidth('unknown', 'egress');
    const client = await connectRaw('plain', gateway.gateway.trafficPort);
    client.socket.write(
      `GET /open/x HTTP/1.1\r\nHost: ${HOST}\r\nX-Big: ${'b'.repeat(MAX_HEADER_BYTES)}\r\n\r\n`,
    );
    await client.closed;
    const body = client.received().split('\r\n\r\n')[1]!;
    expect(client.received()).toMatch(/^HTTP\/1\.1 431/);
    const line = await logLine(
      (entry) => entry['kind'] === 'access' && entry['error_code'] === 'headers_too_large',
    );
    expect(line).toMatchObject({
      status: 431,
      tenant_id: null,
      bytes_received: null,
      bytes_sent: Buffer.byteLength(body),
      user_agent: null,
    });
    expect(await bandwidth('unknown', 'egress')).toBe(egressBefore + Buffer.byteLength(body));
  });

  it('a request whose body node refuses is logged with the bytes of the listener’s answer', async () => {
    const requestId = randomUUID();
    const client = await connectRaw('plain', gateway.gateway.trafficPort);
    client.socket.write(
      `POST /open/bad HTTP/1.1\r\nHost: ${HOST}\r\nX-Request-Id: ${requestId}\r\n` +
        'Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n',
    );
    await client.closed;
    expect(client.received()).toMatch(/^HTTP\/1\.1 400/);
    expect(await accessLine(requestId)).toMatchObject({
      tenant_id: tenantId,
      status: 400,
      error_code: 'malformed_request',
      bytes_received: 3,
      bytes_sent: Buffer.byteLength(client.received().split('\r\n\r\n')[1]!),
    });
  });
});

describe('bytes of HTTP/2 streams', () => {
  it('are each stream’s own, though they share one connection', async () => {
    const ids = [randomUUID(), randomUUID()];
    const [small, large] = await Promise.all([
      http2Request(session, {
        path: '/open/s?n=50',
        authority: HOST,
        method: 'POST',
        headers: { 'x-request-id': ids[0]!, 'user-agent': 'h2-client/1' },
        body: 'x'.repeat(7),
      }),
      http2Request(session, {
        path: '/open/l?n=4',
        authority: HOST,
        method: 'POST',
        headers: { 'x-request-id': ids[1]! },
        body: 'y'.repeat(70_000),
      }),
    ]);
    expect([small.status, large.status]).toEqual([200, 200]);
    expect(await accessLine(ids[0]!)).toMatchObject({
      bytes_received: 7,
      bytes_sent: 50,
      user_agent: 'h2-client/1',
    });
    expect(await accessLine(ids[1]!)).toMatchObject({ bytes_received: 70_000, bytes_sent: 4 });
  });
});

describe('bytes of a WebSocket', () => {
  it('an upgrade the gateway refuses is logged with the bytes of its answer', async () => {
    const requestId = randomUUID();
    const refused = await sendUpgrade(gateway, HOST, '/ws/x', {
      'x-request-id': requestId,
      'sec-websocket-key': 'not a key',
    });
    expect(refused.status).toBe(400);
    expect(await accessLine(requestId)).toMatchObject({
      status: 400,
      bytes_received: 0,
      bytes_sent: Buffer.byteLength(refused.text),
    });
  });

  it('its frames each way are its line’s bytes and count once in the tenant’s bandwidth, when it ended', async () => {
    const ingressBefore = await bandwidth(tenantId, 'ingress');
    const egressBefore = await bandwidth(tenantId, 'egress');
    const requestId = randomUUID();
    const { socket, closed } = await openWebSocket(gateway, '/ws/echo', {
      host: HOST,
      'x-request-id': requestId,
      'user-agent': 'ws-client/3',
    });
    expect(await roundTrip(socket, 'ping')).toBe('ping');
    socket.close(1000);
    await closed;
    // The client's masked text frame (2 + 4 + 4) and close frame (2 + 4 + 2); the origin's hello (2 + 5),
    // echo (2 + 4) and close (2 + 2).
    expect(await accessLine(requestId)).toMatchObject({
      status: 101,
      bytes_received: 18,
      bytes_sent: 17,
      close_code: 1000,
      user_agent: 'ws-client/3',
    });
    expect(await bandwidth(tenantId, 'ingress')).toBe(ingressBefore + 18);
    expect(await bandwidth(tenantId, 'egress')).toBe(egressBefore + 17);
  });

  it('an HTTP/2 WebSocket’s frames are its line’s bytes and count once in the tenant’s bandwidth', async () => {
    const ingressBefore = await bandwidth(tenantId, 'ingress');
    const egressBefore = await bandwidth(tenantId, 'egress');
    const { session: h2 } = await openSession(gateway.url);
    try {
      const requestId = randomUUID();
      const socket = opened(
        await extendedConnect(h2, '/ws/h2', { ':authority': HOST, 'x-request-id': requestId }),
      );
      expect(await socket.nextText()).toBe('hello');
      const ping = clientTextFrame('ping');
      socket.stream.write(ping);
      expect(await socket.nextText()).toBe('ping');
      socket.stream.end(CLIENT_CLOSE);
      await socket.ended;
      const line = await accessLine(requestId);
      expect(line).toMatchObject({
        status: 101,
        bytes_received: ping.length + CLIENT_CLOSE.length,
        close_code: 1000,
        closed_by: 'client',
      });
      // At least the origin's hello (2 + 5) and echo (2 + 4); its close frame if it came before the end.
      expect(line['bytes_sent']).toBeGreaterThanOrEqual(13);
      expect(await bandwidth(tenantId, 'ingress')).toBe(ingressBefore + ping.length + CLIENT_CLOSE.length);
      expect(await bandwidth(tenantId, 'egress')).toBe(egressBefore + (line['bytes_sent'] as number));
    } finally {
      h2.destroy();
    }
  });
});
