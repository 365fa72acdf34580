import { randomUUID } from 'node:crypto';
import type { ClientHttp2Session } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { CLIENT_CLOSE, extendedConnect, opened, openSession } from '../testing/http2-websockets.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { startWebSocketOrigin, type WebSocketOrigin } from '../testing/websocket-origins.js';

/**
 * Regression tests: a proxied WebSocket left no record of its end — how long it was open, how many
 * bytes went each way, which close code ended it and who sent it — where nginx, Envoy and Kong log a
 * WebSocket when it ends. The upgrade's access-log line (written at the 101) stays as it is; each
 * WebSocket now gets a `websocket ended` line, linked to it by its `request_id`, once both of its
 * connections are closed.
 */
const HELLO = 'hello';

describe('the line a WebSocket leaves when it ends', () => {
  let echo: WebSocketOrigin;
  let gateway: TestGateway;
  const tenantId = randomUUID();
  const routeId = randomUUID();
  const sessions: ClientHttp2Session[] = [];

  beforeAll(async () => {
    echo = await startWebSocketOrigin({ hello: () => HELLO });
    gateway = await startTestGateway({ GATEWAY_H2C: 'true', GATEWAY_WEBSOCKET_IDLE_TIMEOUT_SECONDS: '1' });
    const originId = randomUUID();
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

  /** A WebSocket through the gateway once the origin's hello arrived, with its upgrade's request id. */
  function open(path: string): Promise<{ socket: WebSocket; requestId: string }> {
    const requestId = randomUUID();
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}${path}`, {
        headers: { host: 'ended.localhost', 'x-request-id': requestId },
      });
      socket.once('error', reject);
      socket.once('message', () => resolve({ socket, requestId }));
    });
  }

  /** The `websocket ended` line of the upgrade `requestId`, once written. */
  async function endedLine(requestId: string): Promise<Record<string, unknown>> {
    const find = () =>
      gateway.logLines.filter(
        (line) => line['message'] === 'websocket ended' && line['request_id'] === requestId,
      );
    await vi.waitFor(() => expect(find()).toHaveLength(1), { timeout: 5_000 });
    return find()[0]!;
  }

  it('logs the close code the client sent, the bytes each way and how long it was open', async () => {
    const { socket, requestId } = await open('/ws/client-closes');
    const echoed = new Promise((resolve) => socket.once('message', resolve));
    socket.send('hello');
    await echoed;
    socket.close(4000, 'done');
    await new Promise((resolve) => socket.once('close', resolve));

    const line = await endedLine(requestId);
    expect(line).toMatchObject({
      tenant_id: tenantId,
      route_id: routeId,
      close_code: 4000,
      closed_by: 'client',
    });
    // Masked frames from the client: "hello" (2 + 4 + 5 bytes), its close frame (2 + 4 + 2 + 4).
    expect(line['bytes_from_client']).toBe(11 + 12);
    // The origin's hello and echo (2 + 5 bytes each) and its answering close frame (2 + 2 + 4).
    expect(line['bytes_to_client']).toBe(7 + 7 + 8);
    expect(line['duration_ms']).toBeTypeOf('number');
    // Linked to the upgrade's access-log line.
    expect(
      gateway.logLines.some((entry) => entry['kind'] === 'access' && entry['request_id'] === requestId),
    ).toBe(true);
  });

  it('logs the close code the origin sent', async () => {
    const { socket, requestId } = await open('/ws/origin-closes');
    [...echo.wss.clients].at(-1)!.close(1008, 'policy');
    await new Promise((resolve) => socket.once('close', resolve));
    expect(await endedLine(requestId)).toMatchObject({ close_code: 1008, closed_by: 'origin' });
  });

  it('logs an origin that drops the connection without a close frame as 1006', async () => {
    const { socket, requestId } = await open('/ws/origin-drops');
    [...echo.wss.clients].at(-1)!.terminate();
    await new Promise((resolve) => socket.once('close', resolve));
    expect(await endedLine(requestId)).toMatchObject({ close_code: 1006, closed_by: 'origin' });
  });

  it('logs the gateway’s own close at the idle timeout as 1001', async () => {
    const { socket, requestId } = await open('/ws/idle');
    const code = await new Promise((resolve) => socket.once('close', resolve));
    expect(code).toBe(1001);
    expect(await endedLine(requestId)).toMatchObject({ close_code: 1001, closed_by: 'gateway' });
  });

  it('logs an HTTP/2 WebSocket’s end as an HTTP/1.1 one’s', async () => {
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
    expect(await endedLine(requestId)).toMatchObject({
      route_id: routeId,
      close_code: 1000,
      closed_by: 'client',
      bytes_from_client: CLIENT_CLOSE.length,
    });
  });
});
