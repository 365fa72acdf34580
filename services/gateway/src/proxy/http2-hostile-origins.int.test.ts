import { createHash, randomUUID } from 'node:crypto';
import { type ClientHttp2Session, constants } from 'node:http2';
import net from 'node:net';
import { http2Connect, http2Request, https1Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCacheStage } from '../cache/cache-stage.js';
import { memoryResponseCache } from '../cache/testing/memory-response-cache.js';
import { send } from '../testing/gateway-harness.js';
import { extendedConnect, startTlsTestGateway, type TlsTestGateway } from '../testing/http2-websockets.js';
import { onRequestHeads } from '../testing/request-heads.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * A hostile origin's answers and a hostile client's resets, replayed over HTTP/2 (h2c, and TLS with ALPN
 * h2) against what an HTTP/1.1 client gets. node's HTTP/2 response throws on much HTTP/1.1 tolerates
 * (connection-specific fields, a repeated single-value field, a 1xx as final status, a body on a 204),
 * so each answer must reach an HTTP/2 client as it reaches an HTTP/1.1 one (same status, same body),
 * without the fields HTTP/2 forbids, and the replica keep serving the same session and new connections.
 * (Node's HTTP/2 client refuses more than 128 header fields by itself: no case sends that many.)
 */
const HOST = 'hostile.localhost';
/** Fields node's HTTP/2 response sends at most once (ERR_HTTP2_HEADER_SINGLE_VALUE on several). */
const SINGLE_VALUE_FIELDS = [
  'access-control-allow-credentials',
  'access-control-max-age',
  'age',
  'content-encoding',
  'content-language',
  'content-location',
  'content-range',
  'content-type',
  'date',
  'etag',
  'expires',
  'last-modified',
  'location',
  'retry-after',
  'x-content-type-options',
];
/**
 * Those of them node:http joins with ", " when an answer repeats them (as browsers join every field); it
 * keeps the first line of the others. Content-Encoding and Content-Language are lists (RFC 9110 §8.4,
 * §8.5): `gzip` then `br` on two lines is a body to be undone of both.
 */
const JOINED_OVER_HTTP1 = new Set([
  'access-control-allow-credentials',
  'access-control-max-age',
  'content-encoding',
  'content-language',
  'content-location',
  'content-range',
  'date',
  'x-content-type-options',
]);
/** What an HTTP/1.1 client reads of a field `twice` sent: its first value, or both joined. */
const readOverHttp1 = (name: string) => (JOINED_OVER_HTTP1.has(name) ? 'a, b' : 'a');
const CONNECTION_SPECIFIC = ['keep-alive', 'proxy-connection', 'upgrade', 'http2-settings', 'te', 'x-named'];
/** Each field twice, in two spellings: `a` first, then `b`. */
const twice = (names: readonly string[]) =>
  names.map((name) => `${name}: a\r\n${name.toUpperCase()}: b\r\n`).join('');

/** The origin's answers by the path's second segment (`/p/<name>/…`, `/c/<name>/…` for the cached route). */
const ANSWERS: Record<string, string> = {
  'connection-fields':
    'HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Named\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n' +
    'Upgrade: h2c\r\nHTTP2-Settings: AAAA\r\nTE: gzip\r\nX-Named: 1\r\nContent-Length: 2\r\n\r\nok',
  'single-values': `HTTP/1.1 200 OK\r\n${twice(SINGLE_VALUE_FIELDS)}Content-Length: 2\r\n\r\nok`,
  'list-fields':
    'HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Encoding: br\r\nContent-Language: en\r\n' +
    'Content-Language: de\r\nContent-Type: text/plain\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nok',
  'object-members':
    'HTTP/1.1 200 OK\r\nConstructor: 1\r\n__proto__: 2\r\ntoString: 3\r\nhasOwnProperty: 4\r\nContent-Length: 2\r\n\r\nok',
  trailers:
    'HTTP/1.1 200 OK\r\nTrailer: X-Sum, Content-Type\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n' +
    'X-Sum: 1\r\nContent-Type: a\r\nContent-Type: b\r\nTE: gzip\r\n\r\n',
  'hints-then-ok':
    'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nConnection: X-A\r\nContent-Type: a\r\nContent-Type: b\r\n\r\n' +
    'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  'switching-unasked':
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
  'status-199': 'HTTP/1.1 199 Odd\r\nContent-Length: 2\r\n\r\nok',
  '204-with-body': 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello',
  '304-with-body':
    'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  'obs-text':
    'HTTP/1.1 200 OK\r\nX-Latin: caf\xe9\r\nContent-Type: text/plain; charset=\xff\r\nContent-Length: 2\r\n\r\nok',
  'content-length-twice': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok',
  'framed-by-close': 'HTTP/1.1 200 OK\r\n\r\nok, until the origin closes',
  'http-1.0': 'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: max=1\r\n\r\nold',
};
const CLOSES_AFTER = new Set(['framed-by-close', 'http-1.0']);

/** An origin's 101 for the key it was sent (the gateway's own, for an HTTP/2 client), with `fields`. */
const switched = (key: string, fields: string) =>
  'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  `Sec-WebSocket-Accept: ${createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')}\r\n` +
  `${fields}\r\n`;
/** The origin's answers to a WebSocket upgrade, by the path's second segment. */
const UPGRADE_ANSWERS: Record<string, (key: string) => string> = {
  'ws-single-values': (key) => switched(key, twice(SINGLE_VALUE_FIELDS)),
  'ws-connection-fields': (key) =>
    switched(
      key,
      'HTTP2-Settings: AAAA\r\nProxy-Connection: keep-alive\r\nTE: gzip\r\nTE: trailers\r\nX-Kept: 1\r\n',
    ),
  'ws-refusal-fields': () =>
    `HTTP/1.1 403 Forbidden\r\n${twice(SINGLE_VALUE_FIELDS)}HTTP2-Settings: AAAA\r\nProxy-Connection: keep-alive\r\n` +
    'TE: gzip\r\nUpgrade: h2c\r\nContent-Length: 2\r\n\r\nno',
  'ws-refusal-after-hints': () =>
    'HTTP/1.1 103 Early Hints\r\nLink: </a>\r\nContent-Type: a\r\nContent-Type: b\r\n\r\n' +
    'HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno',
  'ws-refusal-trailers': () =>
    'HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\nContent-Type: a\r\nContent-Type: b\r\n\r\n',
};

/** `/p/slow…`: a chunked body of SLOW_PIECES pieces, one every few milliseconds. */
const SLOW_PIECE = 'y'.repeat(100);
const SLOW_PIECES = 40;

let gateway: TlsTestGateway;
let origin: net.Server;
const originSockets = new Set<net.Socket>();

function answerSlowly(socket: net.Socket): void {
  socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
  let sent = 0;
  const timer = setInterval(() => {
    if (socket.destroyed) return clearInterval(timer);
    if (++sent > SLOW_PIECES) {
      clearInterval(timer);
      socket.write('0\r\n\r\n');
      return;
    }
    socket.write(`${SLOW_PIECE.length.toString(16)}\r\n${SLOW_PIECE}\r\n`);
  }, 5);
}

beforeAll(async () => {
  origin = net.createServer((socket) => {
    originSockets.add(socket);
    socket.once('close', () => originSockets.delete(socket));
    onRequestHeads(socket, (head, path) => {
      const name = path.split('/')[2] ?? '';
      if (name.startsWith('slow')) return answerSlowly(socket);
      const key = /\r\nsec-websocket-key: *([^\r]*)/i.exec(head)?.[1];
      const upgradeAnswer = UPGRADE_ANSWERS[name];
      const answer =
        key !== undefined && upgradeAnswer !== undefined
          ? upgradeAnswer(key)
          : (ANSWERS[name] ?? 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext');
      if (CLOSES_AFTER.has(name)) socket.end(answer, 'latin1');
      else socket.write(answer, 'latin1');
    });
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const cache = memoryResponseCache();
  gateway = await startTlsTestGateway({ GATEWAY_H2C: 'true' }, { stages: [createCacheStage(cache)] });
  const target = `http://127.0.0.1:${(origin.address() as net.AddressInfo).port}`;
  const plainId = randomUUID();
  const cachedId = randomUUID();
  // Each case is its own origin answer: the failures of one do not keep the next from the origin.
  const alwaysTried = {
    timeout_seconds: 2,
    circuit_breaker: { enabled: false },
    health_check: { active: { enabled: false }, passive: { enabled: false } },
  };
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'hostile',
      origins: [
        { id: plainId, targets: [target], ...alwaysTried },
        { id: cachedId, targets: [target], ...alwaysTried },
      ],
      routes: [
        {
          origin_id: cachedId,
          path_pattern: '/c/*',
          cache_policy: { mode: 'override', ttl_seconds: 60, cacheable_statuses: [200, 204, 304] },
        },
        { origin_id: plainId, path_pattern: '/p/*' },
      ],
    }),
  );
});

afterAll(async () => {
  for (const socket of originSockets) socket.destroy();
  await gateway?.close();
  await new Promise<void>((resolve) => origin?.close(() => resolve()));
});

const CONNECTIONS = {
  h2c: () => http2Connect(gateway.url),
  'TLS h2': () => http2Connect(gateway.tlsUrl, { servername: 'localhost' }),
};
type Connection = keyof typeof CONNECTIONS;
const KINDS = Object.keys(CONNECTIONS) as Connection[];

/** The answer on `session`, or how its stream ended without one (rstCode 0: ended whole). */
function ask(session: ClientHttp2Session, path: string) {
  return new Promise<{
    status: number | undefined;
    headers: Record<string, unknown>;
    body: string;
    rstCode: number;
  }>((resolve) => {
    const stream = session.request({ ':path': path, ':authority': HOST });
    let headers: Record<string, unknown> = {};
    let body = '';
    stream.on('response', (received) => {
      headers = received;
    });
    stream.setEncoding('latin1');
    stream.on('data', (chunk: string) => {
      body += chunk;
    });
    stream.on('error', () => {});
    stream.on('close', () =>
      resolve({
        status: headers[':status'] === undefined ? undefined : Number(headers[':status']),
        headers,
        body,
        rstCode: stream.rstCode ?? 0,
      }),
    );
    stream.end();
  });
}

/** The session, and a new connection, still answered. */
async function servingOn(session: ClientHttp2Session, kind: Connection): Promise<void> {
  expect((await http2Request(session, { path: '/p/next/x', authority: HOST, timeoutMs: 3_000 })).body).toBe(
    'next',
  );
  const fresh = CONNECTIONS[kind]();
  try {
    expect((await http2Request(fresh, { path: '/p/next/x', authority: HOST, timeoutMs: 3_000 })).body).toBe(
      'next',
    );
  } finally {
    fresh.close();
  }
}

describe.each(KINDS)('a hostile origin answer to an HTTP/2 client over %s', (kind) => {
  it.each(Object.keys(ANSWERS).flatMap((name) => [`/p/${name}/x`, `/c/${name}/x`]))(
    '%s: the status and body an HTTP/1.1 client gets, without fields HTTP/2 forbids',
    async (path) => {
      const session = CONNECTIONS[kind]();
      try {
        // Twice: a cached route's answer is stored by the first, served from the cache by the second.
        for (const attempt of ['first', 'second']) {
          const overHttp1 = await send(gateway, HOST, path);
          const answer = await ask(session, path);
          expect(answer.rstCode, attempt).toBe(0);
          expect(answer.status, attempt).toBe(overHttp1.status);
          expect(answer.body, attempt).toBe(Buffer.from(overHttp1.text).toString('latin1'));
          for (const name of CONNECTION_SPECIFIC) expect(answer.headers[name], name).toBeUndefined();
        }
        await servingOn(session, kind);
      } finally {
        session.close();
      }
    },
  );

  it('sends each single-value field once, as an HTTP/1.1 client reads its lines (the first, or joined)', async () => {
    const session = CONNECTIONS[kind]();
    try {
      const proxied = await ask(session, '/p/single-values/x');
      const overHttp1 = await send(gateway, HOST, '/p/single-values/x');
      for (const name of SINGLE_VALUE_FIELDS) {
        expect(overHttp1.headers[name], name).toBe(readOverHttp1(name));
        expect(proxied.headers[name], name).toBe(readOverHttp1(name));
      }
      // A cache entry filled by one protocol, served over the other (on the same scheme: it is keyed).
      const sameScheme = (path: string) =>
        kind === 'h2c' ? send(gateway, HOST, path) : https1Request(gateway.gateway.tlsPort!, HOST, path);
      const filledOverHttp2 = `/c/list-fields/${kind === 'h2c' ? 'h2c' : 'h2'}-fill`;
      await ask(session, filledOverHttp2);
      const hitOverHttp1 = await sameScheme(filledOverHttp2);
      const filledOverHttp1 = `/c/list-fields/${kind === 'h2c' ? 'h2c' : 'h2'}-hit`;
      await sameScheme(filledOverHttp1);
      const hitOverHttp2 = await ask(session, filledOverHttp1);
      for (const hit of [hitOverHttp1, hitOverHttp2]) {
        expect(hit.headers['x-cache']).toBe('HIT');
        expect(hit.headers['content-encoding']).toBe('gzip, br');
        expect(hit.headers['content-language']).toBe('en, de');
      }
      // Both lines go to an HTTP/1.1 client (node's keeps the first); HTTP/2 carries the one a browser reads.
      expect(hitOverHttp1.headers['content-type']).toBe('text/plain');
      expect(hitOverHttp2.headers['content-type']).toBe('text/html');
    } finally {
      session.close();
    }
  });
});

describe.each(KINDS)('a hostile origin answer to an HTTP/2 WebSocket over %s', (kind) => {
  it.each([
    ['ws-single-values', 200, ''],
    ['ws-connection-fields', 200, ''],
    ['ws-refusal-fields', 403, 'no'],
    ['ws-refusal-after-hints', 403, 'no'],
    ['ws-refusal-trailers', 403, 'no'],
  ] as const)(
    '%s: answered %d, without fields HTTP/2 forbids, the session serving on',
    async (name, status, body) => {
      const session = CONNECTIONS[kind]();
      try {
        const answer = await extendedConnect(session, `/p/${name}/x`, { ':authority': HOST });
        expect(answer.status).toBe(status);
        if ('body' in answer) expect(answer.body).toBe(body);
        else answer.socket.stream.close();
        for (const field of CONNECTION_SPECIFIC) expect(answer.headers[field], field).toBeUndefined();
        if (name === 'ws-single-values')
          for (const field of SINGLE_VALUE_FIELDS)
            expect(answer.headers[field], field).toBe(readOverHttp1(field));
        await servingOn(session, kind);
      } finally {
        session.close();
      }
    },
  );
});

/** A request on `session` whose stream the client resets at its first body byte or at its head. */
function resetAt(session: ClientHttp2Session, path: string, at: 'head' | 'first-byte'): Promise<void> {
  return new Promise((resolve) => {
    const stream = session.request({ ':path': path, ':authority': HOST });
    stream.on('error', () => {});
    if (at === 'head') stream.once('response', () => stream.close(constants.NGHTTP2_CANCEL));
    else stream.once('data', () => stream.close(constants.NGHTTP2_CANCEL));
    stream.on('close', () => resolve());
    stream.end();
  });
}

describe.each(KINDS)('an HTTP/2 client that leaves over %s', (kind) => {
  it.each([
    ['at the head', '/p/slow/head', 'head'],
    ['mid-body', '/p/slow/body', 'first-byte'],
  ] as const)('resetting its stream %s: the session and the replica serve on', async (_when, path, at) => {
    const session = CONNECTIONS[kind]();
    try {
      await resetAt(session, path, at);
      await servingOn(session, kind);
    } finally {
      session.close();
    }
  });

  it('resetting its stream mid-cache-fill: the next client gets the whole body, never the part', async () => {
    const session = CONNECTIONS[kind]();
    try {
      const path = `/c/slow-fill/${kind === 'h2c' ? 'h2c' : 'h2'}`;
      await resetAt(session, path, 'first-byte');
      const whole = await http2Request(session, { path, authority: HOST, timeoutMs: 5_000 });
      expect(whole.body).toBe(SLOW_PIECE.repeat(SLOW_PIECES));
      await servingOn(session, kind);
    } finally {
      session.close();
    }
  });

  it('destroying its session while the origin streams: the replica serves on', async () => {
    const session = CONNECTIONS[kind]();
    await new Promise<void>((resolve) => {
      const stream = session.request({ ':path': '/p/slow-gone/x', ':authority': HOST });
      stream.on('error', () => {});
      stream.once('data', () => {
        session.destroy();
        resolve();
      });
      stream.end();
    });
    const fresh = CONNECTIONS[kind]();
    try {
      await servingOn(fresh, kind);
    } finally {
      fresh.close();
    }
  });
});
