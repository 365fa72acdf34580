import { createHash, randomUUID } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { type Attempt, extendedConnect, openSession, refusalError } from '../testing/http2-websockets.js';
import { connectRaw, within } from '../testing/raw-connections.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { sendUpgrade } from '../testing/upgrade-request.js';

/**
 * What a hostile or broken origin's answer to an upgrade may not do through the gateway. Regression
 * tests:
 * - an origin sending `103 Early Hints` every 200 ms, or its 101 one byte at a time, held the upgrade
 *   (the client's connection and its tenant's WebSocket slot) past the origin's timeout for ever: the
 *   timeout was only the origin connection's idle time;
 * - a `101` without `Upgrade: websocket` was relayed to the client as a final answer `101`;
 * - the hop-by-hop fields of the origin's 101 (Keep-Alive, Transfer-Encoding, Proxy-Authenticate, the
 *   fields its Connection names) reached the client;
 * - an origin that dropped its connection partway through the body of its refusal of an upgrade left
 *   the client's connection open for ever, holding a WebSocket slot of its tenant;
 * - a 101 whose `Sec-WebSocket-Accept` was missing or not the one for the client's key (an origin that
 *   is no WebSocket server, or a cache between) was relayed, and its stream with it;
 * - a refusal whose body stalled was counted twice in the upgrade metrics: as the origin's status and,
 *   at the origin's timeout, as a 504 the client never got;
 * - an answer with a status outside 100–599 (`600`) was relayed to HTTP/1.1 clients as it came, and for
 *   an HTTP/2 client node's response threw out of the origin's `response` listener: an uncaught
 *   exception, on which a replica drains and exits (every tenant's connections with it);
 * - a refusal with a status that has no content (204, 205) was relayed with what the origin sent with it:
 *   a 205's body, and a 204's Content-Length, on which HTTP/2 clients reset the stream;
 * - a 101 naming a field `Constructor` or `__proto__`, switching an HTTP/2 client's stream, threw out of
 *   the origin's `upgrade` listener (the field was looked up in a plain object, which has those names):
 *   an uncaught exception, on which the replica drains and exits;
 * - a refusal relayed whole left its origin connection open, owned by nobody (node hands a kept-alive
 *   connection without an agent to no one, its timeout cleared): every refused upgrade to an origin that
 *   keeps connections open held a socket of the replica for as long as the origin did, for ever;
 * - an answer that did not switch protocols but had a 2xx status (a server that ignores Upgrade and
 *   serves its page) was relayed to an HTTP/2 client as it came: a 2xx to an extended CONNECT opens the
 *   WebSocket (RFC 8441 §5), so the client took the page for the origin's frames. (An HTTP/1.1 client
 *   tells any answer but 101 from a switch: it still gets the origin's.)
 */
const HOST = 'wsanswers.localhost';
const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';
const SWITCHED_HEAD =
  'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  `Sec-WebSocket-Accept: ${ACCEPT}\r\n`;

let gateway: TestGateway;
let origin: net.Server;
const originSockets = new Set<net.Socket>();
/** Each upgrade's origin connection by its path, resolved once the origin's socket has closed. */
const originClosed = new Map<string, Promise<void>>();

/**
 * A WebSocket server's Sec-WebSocket-Accept for the key of the request `head` (the client's, or the
 * gateway's own for an HTTP/2 client).
 */
function acceptFor(head: string): string {
  const key = /\r\nsec-websocket-key: *([^\r]*)/i.exec(head)?.[1] ?? '';
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
}

/** Answers each upgrade by its path, raw. */
function startRawOrigin(): Promise<net.Server> {
  const server = net.createServer((socket) => {
    originSockets.add(socket);
    socket.once('close', () => originSockets.delete(socket));
    socket.on('error', () => {});
    let received = '';
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = received.slice(0, end);
      const path = head.split(' ')[1] ?? '';
      received = '';
      originClosed.set(path, new Promise((resolve) => socket.once('close', () => resolve())));
      const every200ms = (write: () => boolean) => {
        const timer = setInterval(() => {
          if (socket.destroyed || !write()) clearInterval(timer);
        }, 200);
      };
      if (path === '/early-hints') {
        every200ms(() => socket.write('HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\n'));
      } else if (path === '/trickled-101') {
        let at = 0;
        every200ms(() => socket.write(`${SWITCHED_HEAD}X-Padding: ${'p'.repeat(100)}\r\n\r\n`.charAt(at++)));
      } else if (path === '/101-without-upgrade') {
        socket.write('HTTP/1.1 101 Switching Protocols\r\n\r\nbytes of another protocol');
      } else if (path === '/101-to-another-protocol') {
        socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n');
      } else if (path === '/101-with-wrong-accept') {
        socket.write(
          'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            'Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\nbytes of another stream',
        );
      } else if (path === '/101-without-accept') {
        socket.write(
          'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n' +
            'bytes of another stream',
        );
      } else if (path === '/refusal-cut-short') {
        socket.write('HTTP/1.1 403 Forbidden\r\nContent-Length: 100\r\n\r\nnot all of it', () =>
          socket.destroy(),
        );
      } else if (path === '/status-600') {
        socket.write('HTTP/1.1 600 Beyond\r\nContent-Length: 2\r\n\r\nno');
      } else if (path === '/refusal-204') {
        socket.write('HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n');
      } else if (path === '/refusal-205') {
        socket.write('HTTP/1.1 205 Reset Content\r\nContent-Length: 5\r\n\r\nhello');
      } else if (path === '/not-switched') {
        socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 13\r\n\r\n<html></html>');
      } else if (path === '/refused') {
        socket.write('HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno');
      } else if (path === '/refusal-that-stalls') {
        socket.write('HTTP/1.1 403 Forbidden\r\nContent-Length: 100\r\n\r\nthe rest never comes');
      } else if (path === '/101-naming-prototype-members') {
        socket.write(
          'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            `Sec-WebSocket-Accept: ${acceptFor(head)}\r\nConstructor: c\r\n__proto__: p\r\nX-Kept: yes\r\n\r\n`,
        );
      } else if (path === '/101-with-internal-fields') {
        socket.write(
          'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            `Sec-WebSocket-Accept: ${acceptFor(head)}\r\nSec-WebSocket-Protocol: chat\r\n` +
            'X-Backend-Host: db-internal-10-0-3-4\r\nServer: nginx/1.18.0\r\nX-Kept: yes\r\n' +
            'Access-Control-Allow-Origin: https://evil.example\r\nAccess-Control-Allow-Credentials: true\r\n\r\n',
        );
      } else if (path === '/101-with-hop-by-hop') {
        socket.write(
          'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade, Keep-Alive, X-Hop\r\n' +
            `Sec-WebSocket-Accept: ${ACCEPT}\r\nSec-WebSocket-Protocol: chat\r\nKeep-Alive: timeout=600\r\n` +
            'Transfer-Encoding: chunked\r\nProxy-Authenticate: Basic realm="origin"\r\n' +
            'X-Hop: for this connection only\r\nX-Kept: yes\r\n\r\n',
        );
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

beforeAll(async () => {
  origin = await startRawOrigin();
  gateway = await startTestGateway({ GATEWAY_H2C: 'true' });
  const originId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'wsanswers',
      origins: [
        {
          id: originId,
          targets: [`http://127.0.0.1:${(origin.address() as net.AddressInfo).port}`],
          timeout_seconds: 1,
          // Each case is its own origin answer: the failures of one do not keep the next from the origin.
          circuit_breaker: { enabled: false },
          health_check: { active: { enabled: false }, passive: { enabled: false } },
        },
      ],
      routes: [{ origin_id: originId, path_pattern: '/*' }],
    }),
  );
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'wsguarded',
      origins: [
        { id: originId, targets: [`http://127.0.0.1:${(origin.address() as net.AddressInfo).port}`] },
      ],
      routes: [
        {
          origin_id: originId,
          path_pattern: '/*',
          response_headers: {
            remove: ['x-backend-host', 'server', 'sec-websocket-protocol'],
            set: { 'x-frame-options': 'DENY' },
          },
          cors: { allow_origins: ['https://app.acme.example'], allow_credentials: true },
        },
      ],
    }),
  );
});

afterAll(async () => {
  for (const socket of originSockets) socket.destroy();
  await gateway?.close();
  await new Promise((resolve) => origin?.close(resolve));
});

/**
 * An HTTP/2 client's extended CONNECT to `path`, with what it got; then another on the same session,
 * which the origin still answers (the replica serves on).
 */
async function http2AnswerThenNext(path: string): Promise<Attempt> {
  const { session } = await openSession(gateway.url);
  try {
    const answer = await within(extendedConnect(session, path, { ':authority': HOST }), 5_000, 'the answer');
    const next = await within(
      extendedConnect(session, '/refused', { ':authority': HOST }),
      5_000,
      'the next answer',
    );
    expect(next).toMatchObject({ status: 403, body: 'no' });
    return answer;
  } finally {
    session.destroy();
  }
}

describe('an origin’s answer to a WebSocket upgrade', () => {
  it.each([
    ['sends 103 Early Hints every 200 ms', '/early-hints'],
    ['sends its 101 one byte every 200 ms', '/trickled-101'],
  ])('that %s: 504 upstream_timeout at the origin’s timeout', async (_case, path) => {
    const answer = await within(sendUpgrade(gateway, HOST, path), 5_000, 'the answer');
    expect(answer.status).toBe(504);
    expect(JSON.parse(answer.text)).toMatchObject({ error: { code: 'upstream_timeout' } });
  });

  it.each([
    ['without Upgrade', '/101-without-upgrade'],
    ['to a protocol the client did not ask for', '/101-to-another-protocol'],
  ])('a 101 %s: 502 upstream_error, nothing of it relayed', async (_case, path) => {
    const client = await connectRaw('plain', gateway.gateway.trafficPort);
    client.socket.write(
      `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    await within(client.closed, 5_000, 'the gateway closes the connection');
    const [statusLine, ...rest] = client.received().split('\r\n');
    expect(statusLine).toBe('HTTP/1.1 502 Bad Gateway');
    expect(JSON.parse(rest.join('\r\n').split('\r\n\r\n')[1] ?? '{}')).toMatchObject({
      error: { code: 'upstream_error' },
    });
    expect(client.received()).not.toContain('another protocol');
    expect(client.received().toLowerCase()).not.toContain('h2c');
  });

  it.each([
    ['whose Sec-WebSocket-Accept is not the one for the client’s key', '/101-with-wrong-accept'],
    ['without Sec-WebSocket-Accept', '/101-without-accept'],
  ])(
    'a 101 %s: 502 upstream_error, nothing of it relayed, the origin connection closed',
    async (_case, path) => {
      const client = await connectRaw('plain', gateway.gateway.trafficPort);
      client.socket.write(
        `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      );
      await within(client.closed, 5_000, 'the gateway closes the connection');
      const [statusLine, ...rest] = client.received().split('\r\n');
      expect(statusLine).toBe('HTTP/1.1 502 Bad Gateway');
      expect(JSON.parse(rest.join('\r\n').split('\r\n\r\n')[1] ?? '{}')).toMatchObject({
        error: { code: 'upstream_error', message: expect.stringContaining('Sec-WebSocket-Accept') },
      });
      expect(client.received()).not.toContain('another stream');
      await within(
        originClosed.get(path) ?? Promise.reject(new Error('no upgrade reached the origin')),
        5_000,
        'the origin connection closes',
      );
    },
  );

  it('a refusal relayed whole closes the origin connection, which the origin would keep open', async () => {
    const answer = await sendUpgrade(gateway, HOST, '/refused');
    expect(answer).toMatchObject({ status: 403, text: 'no' });
    await within(
      originClosed.get('/refused') ?? Promise.reject(new Error('no upgrade reached the origin')),
      5_000,
      'the origin connection closes',
    );
  });

  it('a 101 reaches the client without the fields of the origin’s connection', async () => {
    const answer = await sendUpgrade(gateway, HOST, '/101-with-hop-by-hop');
    expect(answer.status).toBe(101);
    expect(answer.headers).toMatchObject({
      upgrade: 'websocket',
      connection: 'Upgrade',
      'sec-websocket-accept': ACCEPT,
      'sec-websocket-protocol': 'chat',
      'x-kept': 'yes',
    });
    for (const name of ['keep-alive', 'transfer-encoding', 'proxy-authenticate', 'x-hop'])
      expect(answer.headers).not.toHaveProperty(name);
  });

  // Regression: the switch was relayed with every field the origin gave it, past the route's
  // response_headers (an origin's internal host, its Server) and a CORS route's own CORS answer.
  it('a 101, and an HTTP/2 client’s 200, get the route’s response headers and none of the origin’s CORS fields', async () => {
    const http1 = await sendUpgrade(gateway, 'wsguarded.localhost', '/101-with-internal-fields');
    expect(http1.status).toBe(101);
    const { session } = await openSession(gateway.url);
    const http2 = await within(
      extendedConnect(session, '/101-with-internal-fields', { ':authority': 'wsguarded.localhost' }),
      5_000,
      'the answer',
    );
    session.destroy();
    expect(http2.status).toBe(200);
    for (const headers of [http1.headers, http2.headers]) {
      expect(headers).toMatchObject({ 'x-frame-options': 'DENY', 'x-kept': 'yes' });
      for (const name of [
        'x-backend-host',
        'server',
        'access-control-allow-origin',
        'access-control-allow-credentials',
      ])
        expect(headers).not.toHaveProperty(name);
      // The handshake is the origin's: a transform does not take its subprotocol away.
      expect(headers['sec-websocket-protocol']).toBe('chat');
    }
  });

  it('an answer with a status outside 100–599: 502 upstream_error, as the proxy answers one', async () => {
    const answer = await within(sendUpgrade(gateway, HOST, '/status-600'), 5_000, 'the answer');
    expect(answer.status).toBe(502);
    expect(JSON.parse(answer.text)).toMatchObject({ error: { code: 'upstream_error' } });
  });

  it('an answer with a status outside 100–599 to an HTTP/2 client: 502 upstream_error, the replica serving on', async () => {
    const refused = await http2AnswerThenNext('/status-600');
    expect(refused.status).toBe(502);
    expect(refusalError(refused).code).toBe('upstream_error');
  });

  it.each(['/not-switched', '/refusal-204'])(
    '%s: an answer with a 2xx status but no switch: 502 upstream_error to an HTTP/2 client, never a WebSocket it opened',
    async (path) => {
      const refused = await http2AnswerThenNext(path);
      expect(refused.status).toBe(502);
      expect(refusalError(refused)).toMatchObject({
        code: 'upstream_error',
        message: expect.stringContaining('without switching to WebSocket'),
      });
      // An HTTP/1.1 client tells the answer from a 101: it gets the origin's own (a 204 without the
      // Content-Length the origin gave it).
      const answer = await within(sendUpgrade(gateway, HOST, path), 5_000, 'the HTTP/1.1 answer');
      expect(answer.status).toBe(path === '/not-switched' ? 200 : 204);
      if (path === '/refusal-204') expect(answer.headers).not.toHaveProperty('content-length');
    },
  );

  it('a 101 naming fields Constructor and __proto__ switches an HTTP/2 client’s stream, the replica serving on', async () => {
    const switched = await http2AnswerThenNext('/101-naming-prototype-members');
    expect(switched.status).toBe(200);
    expect(switched.headers).toMatchObject({ constructor: 'c', 'x-kept': 'yes' });
    expect(Object.hasOwn(switched.headers, '__proto__')).toBe(false);
  });

  it('a refusal with a 205 goes out without the content the origin sent with it', async () => {
    const answer = await within(sendUpgrade(gateway, HOST, '/refusal-205'), 5_000, 'the answer');
    expect(answer).toMatchObject({ status: 205, text: '' });
    expect(answer.headers['content-length']).toBe('0');
  });

  it('a refusal the origin cuts short: the client’s connection is closed', async () => {
    const client = await connectRaw('plain', gateway.gateway.trafficPort);
    client.socket.write(
      `GET /refusal-cut-short HTTP/1.1\r\nHost: ${HOST}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    await within(client.closed, 5_000, 'the gateway closes the connection');
    expect(client.received()).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
  });

  it('a refusal whose body stalls is counted once, as the origin’s status', async () => {
    // A tenant of its own: its series count this upgrade only.
    const tenantId = randomUUID();
    const originId = randomUUID();
    const subdomain = `wsstall-${tenantId.slice(0, 8)}`;
    gateway.store.apply(
      buildSnapshot({
        tenantId,
        subdomain,
        origins: [
          {
            id: originId,
            targets: [`http://127.0.0.1:${(origin.address() as net.AddressInfo).port}`],
            timeout_seconds: 1,
          },
        ],
        routes: [{ origin_id: originId, path_pattern: '/*' }],
      }),
    );
    const client = await connectRaw('plain', gateway.gateway.trafficPort);
    client.socket.write(
      `GET /refusal-that-stalls HTTP/1.1\r\nHost: ${subdomain}.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    // At the origin's timeout the gateway gives up on the body: the client's connection is cut.
    await within(client.closed, 5_000, 'the gateway closes the connection');
    expect(client.received()).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
    const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
    const upgrades = metrics
      .split('\n')
      .filter((line) => line.startsWith(`vantageedge_gateway_websocket_upgrades_total{tenant="${tenantId}"`));
    expect(upgrades).toEqual([
      `vantageedge_gateway_websocket_upgrades_total{tenant="${tenantId}",status="403"} 1`,
    ]);
  });
});
