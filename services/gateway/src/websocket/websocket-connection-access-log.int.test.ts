import { randomUUID } from 'node:crypto';
import type { ClientHttp2Session } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { accessLinesOfRequest } from '../testing/access-lines.js';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { CLIENT_CLOSE, extendedConnect, opened, openSession } from '../testing/http2-websockets.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { startWebSocketOrigin, type WebSocketOrigin } from '../testing/websocket-origins.js';

/**
 * Regression tests: a WebSocket's access-log line was written at the 101, so a connection open for an
 * hour read as a request of a few milliseconds and no bytes; its frames, its length and how it ended
 * were only in a separate `websocket ended` service-log line. As Envoy and Kong log an upgraded
 * connection when it ends, the one access-log line of a WebSocket is now written at its end, whoever
 * ends it: `status` 101, `latency_ms` the whole connection, `bytes_received`/`bytes_sent` its frames,
 * `close_code` and `closed_by` how it ended.
 */
const HELLO = 'hello';
/** How long the first test holds its WebSocket open before closing it. */
const HELD_MS = 300;
/**
 * Well above HELD_MS: the first test's close must reach the gateway before its idle timeout closes the
 * connection itself, however late a loaded machine runs the test's timers.
 */
const IDLE_TIMEOUT_SECONDS = 3;

/** A WebSocket to `gateway` once the origin's hello arrived, with its upgrade's request id. */
function openThrough(
  gateway: TestGateway,
  host: string,
  path: string,
): Promise<{ socket: WebSocket; requestId: string }> {
  const requestId = randomUUID();
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}${path}`, {
      headers: { host, 'x-request-id': requestId },
    });
    socket.once('error', reject);
    socket.once('message', () => resolve({ socket, requestId }));
  });
}

/** The access-log line of the upgrade `requestId`, once written; there is only ever the one. */
async function accessLine(gateway: TestGateway, requestId: string): Promise<Record<string, unknown>> {
  const find = () => accessLinesOfRequest(gateway, requestId);
  await vi.waitFor(() => expect(find()).toHaveLength(1), { timeout: 5_000 });
  return find()[0]!;
}

describe('the access-log line of a WebSocket, written when it ends', () => {
  let echo: WebSocketOrigin;
  let gateway: TestGateway;
  const tenantId = randomUUID();
  const routeId = randomUUID();
  const originId = randomUUID();
  const sessions: ClientHttp2Session[] = [];
  const open = (path: string) => openThrough(gateway, 'ended.localhost', path);

  beforeAll(async () => {
    echo = await startWebSocketOrigin({ hello: () => HELLO });
    gateway = await startTestGateway({
      GATEWAY_H2C: 'true',
      GATEWAY_WEBSOCKET_IDLE_TIMEOUT_SECONDS: String(IDLE_TIMEOUT_SECONDS),
    });
    gateway.store.apply(
      buildSnapshot({
        tenantId,
        subdomain: 'ended',
        origins: [{ id: originId, targets: [echo.url] }],
        routes: [{ id: routeId, origin_id: originId, path_pattern: '/ws/*' }],
      }),
    );
  });

  afterAll(async () => {
    for (const session of sessions) session.destroy();
    await gateway?.close();
    await echo?.close();
  });

  it('has the whole connection: its duration, its frames each way, the close code the client sent', async () => {
    const { socket, requestId } = await open('/ws/client-closes');
    const echoed = new Promise((resolve) => socket.once('message', resolve));
    socket.send('hello');
    await echoed;
    await new Promise((resolve) => setTimeout(resolve, HELD_MS));
    socket.close(4000, 'done');
    await new Promise((resolve) => socket.once('close', resolve));

    const line = await accessLine(gateway, requestId);
    expect(line).toMatchObject({
      tenant_id: tenantId,
      route_id: routeId,
      status: 101,
      error_code: null,
      close_code: 4000,
      closed_by: 'client',
    });
    // Masked frames from the client: "hello" (2 + 4 + 5 bytes), its close frame (2 + 4 + 2 + 4).
    expect(line['bytes_received']).toBe(11 + 12);
    // The origin's hello and echo (2 + 5 bytes each) and its answering close frame (2 + 2 + 4).
    expect(line['bytes_sent']).toBe(7 + 7 + 8);
    // From the upgrade request to the end, not to the 101.
    expect(line['latency_ms']).toBeGreaterThanOrEqual(HELD_MS);
    expect(line['upstream_ms']).toBeTypeOf('number');
    // The line says it all: no second line about the same connection.
    expect(gateway.logLines.filter((entry) => entry['request_id'] === requestId)).toHaveLength(1);
  });

  it('has the close code the origin sent', async () => {
    const { socket, requestId } = await open('/ws/origin-closes');
    [...echo.wss.clients].at(-1)!.close(1008, 'policy');
    await new Promise((resolve) => socket.once('close', resolve));
    expect(await accessLine(gateway, requestId)).toMatchObject({
      status: 101,
      close_code: 1008,
      closed_by: 'origin',
    });
  });

  it('has 1006 for an origin that drops the connection without a close frame', async () => {
    const { socket, requestId } = await open('/ws/origin-drops');
    [...echo.wss.clients].at(-1)!.terminate();
    await new Promise((resolve) => socket.once('close', resolve));
    expect(await accessLine(gateway, requestId)).toMatchObject({ close_code: 1006, closed_by: 'origin' });
  });

  it('has the gateway’s own close at the idle timeout, 1001', async () => {
    const { socket, requestId } = await open('/ws/idle');
    const code = await new Promise((resolve) => socket.once('close', resolve));
    expect(code).toBe(1001);
    expect(await accessLine(gateway, requestId)).toMatchObject({ close_code: 1001, closed_by: 'gateway' });
  });

  it('is written for an HTTP/2 WebSocket as for an HTTP/1.1 one', async () => {
    const { session } = await openSession(gateway.url);
    sessions.push(session);
    const requestId = randomUUID();
    const socket = opened(
      await extendedConnect(session, '/ws/h2', {
        ':authority': 'ended.localhost',
        'x-request-id': requestId,
      }),
    );
    expect(await socket.nextText()).toBe(HELLO);
    socket.stream.end(CLIENT_CLOSE);
    await socket.ended;
    expect(await accessLine(gateway, requestId)).toMatchObject({
      route_id: routeId,
      status: 101,
      close_code: 1000,
      closed_by: 'client',
      bytes_received: CLIENT_CLOSE.length,
    });
  });

  it('is written when a config change closes the connection', async () => {
    const movedTenant = randomUUID();
    const movedRoute = randomUUID();
    const snapshot = (version: number, routes: Parameters<typeof buildSnapshot>[0]['routes']) =>
      buildSnapshot({
        tenantId: movedTenant,
        version,
        subdomain: 'changed',
        origins: [{ id: originId, targets: [echo.url] }],
        routes,
      });
    gateway.store.apply(snapshot(1, [{ id: movedRoute, origin_id: originId, path_pattern: '/ws/*' }]));
    const { socket, requestId } = await openThrough(gateway, 'changed.localhost', '/ws/changing');
    const closed = new Promise((resolve) => socket.once('close', resolve));
    gateway.store.apply(snapshot(2, [{ origin_id: originId, path_pattern: '/other/*' }]));
    expect(await closed).toBe(1001);
    expect(await accessLine(gateway, requestId)).toMatchObject({
      tenant_id: movedTenant,
      route_id: movedRoute,
      status: 101,
      close_code: 1001,
      closed_by: 'gateway',
    });
  });
});

describe('the access-log line of a WebSocket open when the gateway stops', () => {
  it('is written with the gateway’s 1001 before the gateway is closed', async () => {
    const echo = await startWebSocketOrigin({ hello: () => HELLO });
    const gateway = await startTestGateway();
    const stoppingOrigin = randomUUID();
    try {
      gateway.store.apply(
        buildSnapshot({
          subdomain: 'stopping',
          origins: [{ id: stoppingOrigin, targets: [echo.url] }],
          routes: [{ origin_id: stoppingOrigin, path_pattern: '/ws/*' }],
        }),
      );
      const { socket, requestId } = await openThrough(gateway, 'stopping.localhost', '/ws/stop');
      const closed = new Promise((resolve) => socket.once('close', resolve));
      await gateway.close();
      expect(await closed).toBe(1001);
      expect(accessLinesOfRequest(gateway, requestId)).toMatchObject([
        { status: 101, close_code: 1001, closed_by: 'gateway' },
      ]);
    } finally {
      await gateway.close();
      await echo.close();
    }
  });
});
