import { randomUUID } from 'node:crypto';
import type { ClientHttp2Session } from 'node:http2';
import net from 'node:net';
import { gzipSync } from 'node:zlib';
import { extendedConnect, refusalError } from '@vantageedge/gateway/testing/http2-websockets';
import { onRequestHeads } from '@vantageedge/gateway/testing/request-heads';
import { buildSnapshot } from '@vantageedge/gateway/testing/snapshots';
import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { retriedWhileBypassed, whenCacheServes } from './cache-bypass.js';
import { eventually } from './harness.js';
import { type LoneGateway, startLoneGateway } from './lone-gateway.js';

/**
 * An origin's answer framed with a transfer coding other than `chunked` alone (RFC 9112 §6.1), through a
 * real gateway process to HTTP/1.1 and HTTP/2 clients. The gateway decodes `chunked` only, and neither
 * client protocol can carry the origin's other codings on (HTTP/2 has no Transfer-Encoding; the gateway
 * frames HTTP/1.1 answers itself): such an answer is 502 upstream_error, as nginx answers it, and is never
 * stored, neither by a client's request nor by a stale-while-revalidate refresh. Regression: `gzip,
 * chunked` reached clients as the compressed bytes, labelled as the content itself, and was cached so
 * (a refresh replaced a good entry with it); `chunked, gzip` (framed by the connection's close) reached
 * them with the origin's chunk framing inside the content.
 */
const HOST = 'codings.localhost';
const CONTENT = 'the representation, transfer-coded';

const chunk = (bytes: Buffer) =>
  Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`), bytes, Buffer.from('\r\n0\r\n\r\n')]);

/** The origin's answers by the path's second segment; `closes`: framed by the connection's close. */
const ANSWERS: Record<string, { head: string; body: Buffer; closes?: true }> = {
  'gzip-chunked': {
    head: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: gzip, chunked\r\n\r\n',
    body: chunk(gzipSync(CONTENT)),
  },
  'gzip-line-then-chunked-line': {
    head: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n',
    body: chunk(gzipSync(CONTENT)),
  },
  'chunked-gzip': {
    head: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked, gzip\r\n\r\n',
    body: gzipSync(chunk(Buffer.from(CONTENT))),
    closes: true,
  },
  // An origin refusing a WebSocket upgrade answers so too.
  'forbidden-gzip-chunked': {
    head: 'HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nTransfer-Encoding: gzip, chunked\r\n\r\n',
    body: chunk(gzipSync(CONTENT)),
  },
  'identity-then-close': {
    head: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: identity\r\n\r\n',
    body: Buffer.from(CONTENT),
    closes: true,
  },
  // Controls: chunked alone, in any case, is decoded and relayed.
  'chunked-capitals': {
    head: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: Chunked\r\n\r\n',
    body: chunk(Buffer.from(CONTENT)),
  },
};
const REFUSED = Object.keys(ANSWERS).filter((name) => name !== 'chunked-capitals');

/**
 * `/r/<kind>/*`: the first request for a path is answered plainly (stored), every later one (its
 * stale-while-revalidate refreshes) as `kind` says.
 */
const STORED = 'the stored answer';
const REFRESH_ANSWERS: Record<string, string> = {
  'gzip-chunked': ANSWERS['gzip-chunked']!.head,
  'no-store': 'HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Length: 5\r\n\r\nfresh',
  'set-cookie': 'HTTP/1.1 200 OK\r\nSet-Cookie: session=1\r\nContent-Length: 5\r\n\r\nfresh',
  'server-error': 'HTTP/1.1 500 Internal Server Error\r\nContent-Length: 6\r\n\r\nbroken',
  // Past the route's max_body_bytes (1 KiB), found as the body is read: it has no Content-Length.
  'too-large': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${`400\r\n${'x'.repeat(1024)}\r\n`.repeat(4)}0\r\n\r\n`,
};
const refreshesOf = new Map<string, number>();

let gateway: LoneGateway;
let origin: net.Server;
const originSockets = new Set<net.Socket>();
let session: ClientHttp2Session;

beforeAll(async () => {
  origin = net.createServer((socket) => {
    originSockets.add(socket);
    socket.once('close', () => originSockets.delete(socket));
    onRequestHeads(socket, (_head, path) => {
      if (path.startsWith('/r/')) {
        const refreshes = refreshesOf.get(path);
        refreshesOf.set(path, (refreshes ?? -1) + 1);
        const kind = path.split('/')[2] ?? '';
        if (refreshes === undefined)
          return void socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${STORED.length}\r\n\r\n${STORED}`);
        socket.write(REFRESH_ANSWERS[kind] ?? '', 'latin1');
        if (kind === 'gzip-chunked') socket.write(ANSWERS['gzip-chunked']!.body);
        return;
      }
      const answer = ANSWERS[path.split('/')[2] ?? ''];
      if (answer === undefined)
        return void socket.write('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
      socket.write(answer.head, 'latin1');
      if (answer.closes) socket.end(answer.body);
      else socket.write(answer.body);
    });
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const target = `http://127.0.0.1:${(origin.address() as net.AddressInfo).port}`;
  const plainId = randomUUID();
  const cachedId = randomUUID();
  const refreshedId = randomUUID();
  // Each answer reaches the origin: a refused one does not take the target out for the next.
  const alwaysTried = {
    targets: [target],
    timeout_seconds: 5,
    circuit_breaker: { enabled: false },
    health_check: { active: { enabled: false }, passive: { enabled: false } },
  };
  gateway = await startLoneGateway({
    env: { GATEWAY_H2C: 'true' },
    snapshots: [
      buildSnapshot({
        subdomain: 'codings',
        origins: [
          { id: plainId, ...alwaysTried },
          { id: cachedId, ...alwaysTried },
          { id: refreshedId, ...alwaysTried },
        ],
        routes: [
          { origin_id: cachedId, path_pattern: '/c/*', cache_policy: { mode: 'override', ttl_seconds: 60 } },
          { origin_id: plainId, path_pattern: '/p/*' },
          {
            origin_id: refreshedId,
            path_pattern: '/r/*',
            cache_policy: {
              mode: 'override',
              ttl_seconds: 1,
              stale_while_revalidate_seconds: 600,
              max_body_bytes: 1024,
            },
          },
        ],
      }),
    ],
  });
  session = http2Connect(gateway.url);
  await whenCacheServes(gateway, 'codings', '/c/chunked-capitals/warm-up');
}, 120_000);

afterAll(async () => {
  session?.close();
  for (const socket of originSockets) socket.destroy();
  await gateway?.close();
  await new Promise<void>((resolve) => origin?.close(() => resolve()));
});

const errorCode = (body: string): unknown => (JSON.parse(body) as { error?: { code?: unknown } }).error?.code;

describe('an origin answer framed with a transfer coding the gateway does not decode', () => {
  it.each(REFUSED.flatMap((name) => [`/p/${name}/x`, `/c/${name}/x`]))(
    '%s: answered 502 upstream_error over HTTP/1.1 and HTTP/2, never stored',
    async (path) => {
      // Twice each: a cached route would serve the second from its store.
      for (const attempt of ['first', 'second']) {
        const overHttp1 = await gateway.request('codings', path);
        expect(overHttp1.status, `HTTP/1.1, ${attempt}: ${JSON.stringify(overHttp1.body)}`).toBe(502);
        expect(errorCode(overHttp1.body), attempt).toBe('upstream_error');
        expect(overHttp1.headers['x-cache'], attempt).not.toBe('HIT');
        const overHttp2 = await http2Request(session, { path, authority: HOST, timeoutMs: 8_000 });
        expect(overHttp2.status, `HTTP/2, ${attempt}: ${JSON.stringify(overHttp2.body)}`).toBe(502);
        expect(errorCode(overHttp2.body), attempt).toBe('upstream_error');
        expect(overHttp2.headers['x-cache'], attempt).not.toBe('HIT');
      }
    },
    30_000,
  );

  it('an upgrade the origin refuses so: answered 502 upstream_error over HTTP/1.1 and HTTP/2', async () => {
    const path = '/p/forbidden-gzip-chunked/x';
    const overHttp1 = await gateway.request('codings', path, {
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
      },
    });
    expect(overHttp1.status, `HTTP/1.1: ${JSON.stringify(overHttp1.body)}`).toBe(502);
    expect(errorCode(overHttp1.body)).toBe('upstream_error');
    const overHttp2 = await extendedConnect(session, path, { ':authority': HOST });
    expect(
      overHttp2.status,
      `HTTP/2: ${'body' in overHttp2 ? JSON.stringify(overHttp2.body) : 'switched'}`,
    ).toBe(502);
    expect(refusalError(overHttp2).code).toBe('upstream_error');
  });

  it.each(['/p/chunked-capitals/x', '/c/chunked-capitals/x'])(
    '%s: chunked alone, in capitals, is decoded and relayed to both protocols',
    async (path) => {
      const overHttp1 = await gateway.request('codings', path);
      expect(overHttp1.status).toBe(200);
      expect(overHttp1.body).toBe(CONTENT);
      const overHttp2 = await http2Request(session, { path, authority: HOST, timeoutMs: 8_000 });
      expect(overHttp2.status).toBe(200);
      expect(overHttp2.body).toBe(CONTENT);
    },
  );
});

/** The first request for `path`, a MISS that stores the plain answer (the origin's count afresh if bypassed). */
async function storedFirst(path: string): Promise<void> {
  const first = await retriedWhileBypassed(
    () => gateway.request('codings', path),
    () => refreshesOf.delete(path),
  );
  expect(first.body).toBe(STORED);
  expect(first.headers['x-cache']).toBe('MISS');
}

/**
 * A stale-while-revalidate refresh whose answer is not stored: the entry stays as it was and every client
 * keeps getting it. Regression: a refresh answered with an answer the rules refuse (a 500, `no-store`) or
 * with Set-Cookie stopped reading it by destroying undici's body, whose abort error nobody listened for:
 * the replica exited on the uncaught exception, every tenant's traffic with it.
 */
describe('a stale-while-revalidate refresh whose answer is not stored', () => {
  it.each(Object.keys(REFRESH_ANSWERS))(
    '%s: leaves the stored answer as it was, the replica serving on',
    async (kind) => {
      const path = `/r/${kind}/${randomUUID()}`;
      await storedFirst(path);
      // Once the entry is stale, each answer from it starts a refresh; two refreshes answered mean the first
      // one was over (stored or given up) before the second began.
      const others: string[] = [];
      await eventually(
        'two refreshes answered by the origin, or an answer other than the stored one',
        async () => {
          const seen = await gateway.request('codings', path).then(
            (answer) =>
              answer.status === 200 && answer.body === STORED
                ? undefined
                : `${answer.status} ${answer.headers['x-cache']}: ${JSON.stringify(answer.body)}`,
            (error: unknown) => String(error),
          );
          if (seen !== undefined) others.push(seen);
          return others.length > 0 || (refreshesOf.get(path) ?? 0) >= 2;
        },
        { intervalMs: 100 },
      );
      expect(others).toEqual([]);
      expect(gateway.service.exited()).toBe(false);
      expect((await gateway.request('codings', path)).body).toBe(STORED);
    },
    30_000,
  );
});
