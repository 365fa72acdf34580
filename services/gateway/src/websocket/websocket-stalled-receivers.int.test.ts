import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { ClientHttp2Session } from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { accessLinesOfRequest } from '../testing/access-lines.js';
import {
  extendedConnect,
  opened,
  openSession,
  startTlsTestGateway,
  type TlsTestGateway,
} from '../testing/http2-websockets.js';
import { openWebSocket, type WebSocketClosed } from '../testing/open-websockets.js';
import { pause, within } from '../testing/raw-connections.js';
import { onRequestHeads, switchingProtocols } from '../testing/request-heads.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { startWebSocketOrigin, type WebSocketOrigin } from '../testing/websocket-origins.js';

/**
 * GATEWAY_SEND_TIMEOUT_MS on open WebSockets. Regression tests: a side that stopped reading its
 * frames while sending some of its own kept the WebSocket open for ever — a client that never read,
 * but sent a message now and then, held the origin's frames stalled behind it (an origin's WebSocket
 * server then queues every frame it sends that client in its own memory), and the idle timeout never
 * came, for frames did flow the other way. As nginx holds an upgraded connection to send_timeout
 * toward the client and proxy_send_timeout toward the origin, a WebSocket whose client or origin takes
 * none of the bytes waiting for it for the send timeout is now closed (1001) — either side reading
 * slowly but steadily stays open. And one upgraded after a plain request on its connection was also
 * held to the HTTP/1.1 connection's send timeout, which cut it (1006, the origin told nothing) whenever
 * that check came first.
 */
const SEND_TIMEOUT_MS = 1_000;
/**
 * Ample on a loaded machine for the senders below to fill the socket buffers between the stalled side
 * and the gateway (loopback's grow to tens of MiB), then for a check within two send timeouts.
 */
const CLOSES_WITHIN_MS = 20_000;
const MESSAGE_BYTES = 64 * 1024 - 1;
/** A client's binary message of MESSAGE_BYTES (masked, with a masking key of zeros). */
const CLIENT_MESSAGE = Buffer.concat([
  Buffer.from([0x82, 0x80 | 126, MESSAGE_BYTES >> 8, MESSAGE_BYTES & 0xff, 0, 0, 0, 0]),
  Buffer.alloc(MESSAGE_BYTES, 'c'),
]);
/** An origin's binary message of MESSAGE_BYTES, its hello and its ping (unmasked). */
const ORIGIN_MESSAGE = Buffer.concat([
  Buffer.from([0x82, 126, MESSAGE_BYTES >> 8, MESSAGE_BYTES & 0xff]),
  Buffer.alloc(MESSAGE_BYTES, 'o'),
]);
const ORIGIN_HELLO = Buffer.from([0x81, 2, 0x68, 0x69]);
const ORIGIN_PING = Buffer.from([0x89, 0]);

let gateway: TlsTestGateway;
let echo: WebSocketOrigin;
let rawOrigin: net.Server;
const rawSockets = new Set<net.Socket>();
/** The raw origin's connection of each request, by the X-Request-Id the gateway sent it. */
const rawSocketOf = new Map<string, net.Socket>();
/** The echo origin's WebSocket of each request, by X-Request-Id. */
const echoWebSocketOf = new Map<string, WebSocket>();
const clients = new Set<net.Socket | WebSocket>();
const sessions: ClientHttp2Session[] = [];
const subdomain = `stalled-${randomUUID().slice(0, 8)}`;
const host = `${subdomain}.localhost`;

/**
 * After its 101, by path: `/stream` sends messages as fast as its client takes them; `/deaf` says hello,
 * then never reads again and sends a ping every 100 ms.
 */
function startRawOrigin(): Promise<net.Server> {
  const server = net.createServer((socket) => {
    rawSockets.add(socket);
    socket.once('close', () => rawSockets.delete(socket));
    socket.on('error', () => {});
    onRequestHeads(socket, (head, path) => {
      rawSocketOf.set(/\r\nx-request-id: *([^\r]*)/i.exec(head)?.[1] ?? '', socket);
      socket.write(switchingProtocols(head));
      if (path === '/stream') {
        const more = () => {
          while (!socket.destroyed) if (!socket.write(ORIGIN_MESSAGE)) return void socket.once('drain', more);
        };
        more();
        return;
      }
      socket.write(ORIGIN_HELLO);
      socket.pause();
      const pings = setInterval(
        () => (socket.destroyed ? clearInterval(pings) : socket.write(ORIGIN_PING)),
        100,
      );
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/**
 * A raw client's switched WebSocket to `path` (the 101 read, nothing after it), ws:// or wss://;
 * `keptAlive`: upgraded on a connection that first had a plain request answered.
 */
async function switchRaw(
  path: string,
  requestId: string,
  listener: 'plain' | 'tls' = 'plain',
  keptAlive = false,
): Promise<net.Socket> {
  const socket =
    listener === 'tls'
      ? tls.connect({
          host: '127.0.0.1',
          port: gateway.gateway.tlsPort!,
          servername: host,
          rejectUnauthorized: false,
          ALPNProtocols: ['http/1.1'],
        })
      : net.connect(gateway.gateway.trafficPort, '127.0.0.1');
  clients.add(socket);
  socket.on('error', () => {});
  if (keptAlive) {
    let answer = '';
    const readAnswer = (chunk: Buffer) => {
      answer += chunk.toString('latin1');
    };
    socket.on('data', readAnswer);
    socket.write(`GET /echo HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    // The echo origin's plain answer, `plain`, with a length or chunked.
    await eventually(
      'the plain answer',
      () => /\r\n\r\n(plain|5\r\nplain\r\n0\r\n\r\n)$/.test(answer),
      5_000,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    socket.off('data', readAnswer);
  }
  let head = '';
  const readHead = (chunk: Buffer) => {
    head += chunk.toString('latin1');
    if (head.includes('\r\n\r\n')) socket.off('data', readHead).pause();
  };
  socket.on('data', readHead);
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
      `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Request-Id: ${requestId}\r\n\r\n`,
  );
  await eventually('the 101', () => head.includes('\r\n\r\n'), 5_000);
  expect(head).toMatch(/^HTTP\/1\.1 101 /);
  return socket;
}

/** How the echo origin's WebSocket of a request (switched already) is closed. */
function echoWebSocketClosed(requestId: string): Promise<WebSocketClosed> {
  const originSide = echoWebSocketOf.get(requestId);
  if (originSide === undefined) throw new Error(`the echo origin has no WebSocket of ${requestId}`);
  return new Promise((resolve) =>
    originSide.once('close', (code, reason) => resolve({ code, reason: String(reason) })),
  );
}

/** The raw origin's connection of a request (switched already), and when it closes. */
function rawOriginSide(requestId: string): { socket: net.Socket; closed: Promise<void> } {
  const socket = rawSocketOf.get(requestId);
  if (socket === undefined) throw new Error(`the raw origin has no connection of ${requestId}`);
  return { socket, closed: new Promise((resolve) => socket.once('close', () => resolve())) };
}

/** Calls `send` every `everyMs` until `socket` closes. */
function keepSending(socket: net.Socket | WebSocket, everyMs: number, send: () => void): void {
  const timer = setInterval(send, everyMs);
  socket.once('close', () => clearInterval(timer));
}

beforeAll(async () => {
  echo = await startWebSocketOrigin();
  echo.wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
    echoWebSocketOf.set(String(req.headers['x-request-id']), ws);
  });
  rawOrigin = await startRawOrigin();
  gateway = await startTlsTestGateway({
    GATEWAY_H2C: 'true',
    GATEWAY_SEND_TIMEOUT_MS: String(SEND_TIMEOUT_MS),
    // Never idle: only the send timeout may close these connections.
    GATEWAY_WEBSOCKET_IDLE_TIMEOUT_SECONDS: '0',
  });
  const echoId = randomUUID();
  const rawId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain,
      origins: [
        { id: echoId, targets: [echo.url] },
        { id: rawId, targets: [`http://127.0.0.1:${(rawOrigin.address() as net.AddressInfo).port}`] },
      ],
      routes: [
        { origin_id: echoId, path_pattern: '/echo' },
        { origin_id: rawId, path_pattern: '/*' },
      ],
    }),
  );
});

afterAll(async () => {
  for (const client of clients) 'terminate' in client ? client.terminate() : client.destroy();
  for (const socket of rawSockets) socket.destroy();
  for (const session of sessions) session.destroy();
  await gateway?.close();
  await echo?.close();
  await new Promise((resolve) => rawOrigin?.close(resolve));
});

// The tests wait for send timeouts, each on its own connections: they wait at the same time.
describe.concurrent('an open WebSocket one side stops reading', () => {
  it.for(['plain', 'tls'] as const)(
    'a client that sends but never reads (%s): closed 1001 at the send timeout, the origin told why',
    async (listener, { expect }) => {
      const requestId = randomUUID();
      const client = await switchRaw('/echo', requestId, listener);
      const originClosed = echoWebSocketClosed(requestId);
      // Each message comes back; none is read.
      keepSending(client, 10, () => client.write(CLIENT_MESSAGE));

      expect(await within(originClosed, CLOSES_WITHIN_MS, 'the origin’s WebSocket closes')).toEqual({
        code: 1001,
        reason: 'client not reading',
      });
      await eventually('the access-log line', () => accessLinesOfRequest(gateway, requestId).length === 1);
      expect(accessLinesOfRequest(gateway, requestId)[0]).toMatchObject({
        status: 101,
        close_code: 1001,
        closed_by: 'gateway',
      });
    },
  );

  it.for(['plain', 'tls'] as const)(
    'a client upgraded on a kept-alive connection that never reads (%s): closed 1001 by the gateway, not cut',
    async (listener, { expect }) => {
      // Each time, the WebSocket's send timeout and the HTTP/1.1 connection's stand at another moment.
      for (let attempt = 0; attempt < 3; attempt++) {
        const requestId = randomUUID();
        await switchRaw('/stream', requestId, listener, true);
        const { closed: originClosed } = rawOriginSide(requestId);
        await within(originClosed, CLOSES_WITHIN_MS, 'the origin’s connection closes');
        await eventually('the access-log line', () => accessLinesOfRequest(gateway, requestId).length === 1);
        expect(accessLinesOfRequest(gateway, requestId)[0]).toMatchObject({
          status: 101,
          close_code: 1001,
          closed_by: 'gateway',
        });
      }
    },
  );

  it('an origin that sends but never reads: closed 1001 at the send timeout, the client told why', async ({
    expect,
  }) => {
    const { socket, closed } = await openWebSocket(gateway, '/deaf', { host });
    clients.add(socket);
    const message = Buffer.alloc(MESSAGE_BYTES, 'm');
    // The origin's pings come through (and are answered); the messages stall.
    keepSending(socket, 10, () => socket.send(message));

    expect(await within(closed, CLOSES_WITHIN_MS, 'the client’s WebSocket closes')).toEqual({
      code: 1001,
      reason: 'origin not reading',
    });
  });

  it('an HTTP/2 client that sends on its stream but never reads it: closed 1001 at the send timeout', async ({
    expect,
  }) => {
    const { session } = await openSession(gateway.url);
    sessions.push(session);
    const requestId = randomUUID();
    const { stream } = opened(
      await extendedConnect(session, '/echo', { ':authority': host, 'x-request-id': requestId }),
    );
    const originClosed = echoWebSocketClosed(requestId);
    stream.pause();
    const timer = setInterval(() => stream.write(CLIENT_MESSAGE), 10);
    stream.once('close', () => clearInterval(timer));
    try {
      expect(await within(originClosed, CLOSES_WITHIN_MS, 'the origin’s WebSocket closes')).toEqual({
        code: 1001,
        reason: 'client not reading',
      });
    } finally {
      clearInterval(timer);
    }
  });

  it.for(['plain', 'tls'] as const)(
    'a client reading slowly but steadily (%s) stays open past several send timeouts',
    async (listener, { expect }) => {
      const requestId = randomUUID();
      const client = await switchRaw('/stream', requestId, listener);
      let originClosed = false;
      void rawOriginSide(requestId).closed.then(() => {
        originClosed = true;
      });
      let received = 0;
      client.on('data', (chunk: Buffer) => {
        received += chunk.length;
      });
      // Reads a little every 100 ms: slower than the origin sends (frames always wait for it at the
      // gateway), never a whole send timeout without taking some.
      const reading = setInterval(() => {
        client.resume();
        setTimeout(() => client.pause(), 5);
      }, 100);
      client.once('close', () => clearInterval(reading));
      await pause(4 * SEND_TIMEOUT_MS);
      const before = received;
      await pause(SEND_TIMEOUT_MS);
      clearInterval(reading);
      expect(originClosed).toBe(false);
      expect(client.destroyed).toBe(false);
      expect(received).toBeGreaterThan(before);
    },
  );
});
