import net from 'node:net';
import tls from 'node:tls';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Http2Listeners, startHttp2Listeners } from '../testing/http2-listeners.js';
import { frame, headerBlock } from '../testing/raw-http2.js';

/**
 * HTTP/2 clients that never close their side of a connection the gateway has ended (GOAWAY at the idle
 * timeout, then the gateway's end of the connection): they read nothing, so they never see the end.
 * Regression test: node waits for the client's close without limit, so each such connection held its
 * socket, its GATEWAY_MAX_CONNECTIONS slot and its address's slot for ever; a few addresses could
 * take every connection of the replica with connections that cost them one handshake each. The gateway
 * now destroys them GATEWAY_HEADERS_TIMEOUT_MS after its end.
 */
const HOST = 'unclosed.localhost';
const IDLE_TIMEOUT_MS = 1_000;
/** Connections of one kind the test opens and leaves unread. */
const CLIENTS = 5;
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const EMPTY_SETTINGS = frame(4, 0, 0);
const download = [
  [':method', 'GET'],
  [':scheme', 'http'],
  [':authority', HOST],
  [':path', '/download?bytes=100000000'],
] as const;

let listeners: Http2Listeners;
const sockets: net.Socket[] = [];

beforeAll(async () => {
  listeners = await startHttp2Listeners('unclosed', {
    GATEWAY_HTTP2_IDLE_TIMEOUT_SECONDS: String(IDLE_TIMEOUT_MS / 1000),
    GATEWAY_HEADERS_TIMEOUT_MS: '1000',
  });
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await listeners?.close();
});

/** An HTTP/2 connection that sends its preface and `frames`, then neither reads nor closes. */
async function unreadConnection(
  kind: 'h2c' | 'tls',
  frames: Buffer[] = [EMPTY_SETTINGS],
): Promise<net.Socket> {
  const socket =
    kind === 'h2c'
      ? net.connect(listeners.plainPort, '127.0.0.1')
      : tls.connect({
          host: '127.0.0.1',
          port: listeners.tlsPort,
          servername: HOST,
          rejectUnauthorized: false,
          ALPNProtocols: ['h2'],
        });
  sockets.push(socket);
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.once(kind === 'h2c' ? 'connect' : 'secureConnect', resolve));
  socket.pause();
  socket.write(Buffer.concat([PREFACE, ...frames]));
  return socket;
}

/** Connections the listener holds open (h2c: the plain port's). */
function openConnections(kind: 'h2c' | 'tls'): Promise<number> {
  const { gateway } = listeners.gateway;
  const server = kind === 'h2c' ? gateway.trafficServer : gateway.tlsServer;
  return new Promise((resolve, reject) =>
    server?.getConnections((error, count) => (error ? reject(error) : resolve(count))),
  );
}

/** The listener's open connections once they are all gone, or after ten idle timeouts. */
async function openConnectionsAfterWaiting(kind: 'h2c' | 'tls'): Promise<number> {
  let open = await openConnections(kind);
  await eventually(
    'the unread connections let go',
    () => {
      void openConnections(kind).then((count) => {
        open = count;
      });
      return open === 0;
    },
    10 * IDLE_TIMEOUT_MS,
  ).catch(() => undefined);
  return open;
}

describe('HTTP/2 clients that never close their side', () => {
  it.each(['h2c', 'tls'] as const)(
    'regression: %s connections ended at the idle timeout are let go',
    async (kind) => {
      for (let i = 0; i < CLIENTS; i++) await unreadConnection(kind);
      expect(await openConnections(kind)).toBe(CLIENTS);
      expect(await openConnectionsAfterWaiting(kind)).toBe(0);

      const other = http2Connect(
        kind === 'h2c' ? listeners.gateway.url : `https://127.0.0.1:${listeners.tlsPort}`,
      );
      try {
        expect((await http2Request(other, { path: '/after', authority: HOST })).status).toBe(200);
      } finally {
        other.destroy();
      }
    },
  );

  it.each(['h2c', 'tls'] as const)(
    'regression: %s connections whose client left a request’s header block unfinished are let go',
    async (kind) => {
      // HEADERS without END_HEADERS, and no CONTINUATION ever: no stream reaches the gateway's handler,
      // and the idle timeout's GOAWAY waited for that half-received stream for ever.
      const unfinished = frame(1, 0x1, 1, headerBlock(download.slice(0, 2)));
      for (let i = 0; i < CLIENTS; i++) await unreadConnection(kind, [EMPTY_SETTINGS, unfinished]);
      expect(await openConnections(kind)).toBe(CLIENTS);
      expect(await openConnectionsAfterWaiting(kind)).toBe(0);
    },
  );

  it('regression: a connection ended by its client’s connection error, a response queued for it, is let go', async () => {
    const queued = new Promise<net.Socket>((resolve) =>
      listeners.gateway.gateway.trafficServer.once('connection', resolve),
    );
    const maxWindow = Buffer.from([0, 4, 0x7f, 0xff, 0xff, 0xff]); // SETTINGS_INITIAL_WINDOW_SIZE
    const connectionWindow = Buffer.alloc(4);
    connectionWindow.writeUInt32BE(0x7fff_ffff - 65_535);
    const client = await unreadConnection('h2c', [
      frame(4, 0, 0, maxWindow),
      frame(8, 0, 0, connectionWindow),
      frame(1, 0x5, 1, headerBlock(download)),
    ]);
    const served = await queued;
    // The session writes through the socket's handle: its queue is what the kernel would not take.
    const handle = (served as unknown as { _handle: { writeQueueSize: number } })._handle;
    await eventually('response bytes queued for the client', () => handle.writeQueueSize > 0, 10_000);
    client.write(frame(6, 0x1, 0, Buffer.alloc(8))); // an unsolicited PING ACK: a connection error
    expect(await openConnectionsAfterWaiting('h2c')).toBe(0);
  });
});
