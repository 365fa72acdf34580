import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { ClientHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { extendedConnect, openSession } from '../testing/http2-websockets.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * What the client and the origin negotiate passes the gateway as they negotiated it: the subprotocol
 * the origin picks among those offered, `permessage-deflate` (its compressed frames, RSV1 set, relayed
 * as they are), over HTTP/1.1 and HTTP/2.
 */
describe('WebSocket subprotocols and extensions through the gateway', () => {
  let server: Server;
  let wss: WebSocketServer;
  let gateway: TestGateway;
  const sessions: ClientHttp2Session[] = [];

  beforeAll(async () => {
    server = createServer((_req, res) => res.end('plain'));
    wss = new WebSocketServer({
      server,
      perMessageDeflate: { threshold: 0 },
      // The last one offered: not simply the first, which a proxy that kept only one would also pass.
      handleProtocols: (protocols) => [...protocols].at(-1) ?? false,
    });
    wss.on('connection', (socket) => socket.on('message', (data, binary) => socket.send(data, { binary })));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    gateway = await startTestGateway({ GATEWAY_H2C: 'true' });
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'negotiated',
        origins: [{ id: originId, targets: [`http://127.0.0.1:${(server.address() as AddressInfo).port}`] }],
        routes: [{ origin_id: originId, path_pattern: '/ws/*' }],
      }),
    );
  });

  afterAll(async () => {
    for (const session of sessions) session.destroy();
    await gateway?.close();
    for (const client of wss?.clients ?? []) client.terminate();
    wss?.close();
    await new Promise((resolve) => server?.close(resolve));
  });

  function open(path: string, protocols: string[], requestId: string): Promise<WebSocket> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}${path}`, protocols, {
        headers: { host: 'negotiated.localhost', 'x-request-id': requestId },
      });
      socket.once('open', () => resolve(socket));
      socket.once('error', reject);
    });
  }

  it('gives an HTTP/1.1 client the subprotocol the origin picked and relays permessage-deflate frames compressed', async () => {
    const requestId = randomUUID();
    const socket = await open('/ws/deflate', ['v1.chat', 'v2.chat'], requestId);
    expect(socket.protocol).toBe('v2.chat');
    expect(socket.extensions).toContain('permessage-deflate');
    const message = 'compressible '.repeat(20_000);
    const echoed = new Promise<string>((resolve) => socket.once('message', (data) => resolve(String(data))));
    socket.send(message);
    expect(await echoed).toBe(message);
    socket.close(1000);
    await new Promise((resolve) => socket.once('close', resolve));
    // The frames crossed the gateway compressed: far fewer bytes each way than the message.
    const line = () =>
      gateway.logLines.find((entry) => entry['kind'] === 'access' && entry['request_id'] === requestId);
    await vi.waitFor(() => expect(line()).toBeDefined(), { timeout: 5_000 });
    expect(line()!['bytes_sent']).toBeLessThan(message.length / 10);
    expect(line()!['bytes_received']).toBeLessThan(message.length / 10);
  });

  it('gives an HTTP/2 client the subprotocol and extension the origin picked', async () => {
    const { session } = await openSession(gateway.url);
    sessions.push(session);
    const attempt = await extendedConnect(session, '/ws/h2', {
      ':authority': 'negotiated.localhost',
      'sec-websocket-protocol': 'v1.chat, v2.chat',
      'sec-websocket-extensions': 'permessage-deflate; client_max_window_bits',
    });
    expect(attempt.status).toBe(200);
    expect(attempt.headers['sec-websocket-protocol']).toBe('v2.chat');
    expect(attempt.headers['sec-websocket-extensions']).toMatch(/^permessage-deflate/);
  });
});
