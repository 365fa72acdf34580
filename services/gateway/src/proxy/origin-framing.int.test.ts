import { randomUUID } from 'node:crypto';
import { type ClientHttp2Session, constants } from 'node:http2';
import net from 'node:net';
import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCacheStage } from '../cache/cache-stage.js';
import { memoryResponseCache } from '../cache/testing/memory-response-cache.js';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { connectRaw, within } from '../testing/raw-connections.js';
import { onRequestHeads } from '../testing/request-heads.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * How a broken or hostile origin's answer is framed toward HTTP/1.1 and HTTP/2 clients. Regression tests:
 * - a 205 with a body reached HTTP/1.1 clients (content a 205 must not have) and reset HTTP/2 streams
 *   (node ends a 205 stream at its head), also when served from the cache;
 * - a 204 went out with the origin's Content-Length (HTTP/2 clients reset the stream), and a 204 or 304
 *   with a non-zero Content-Length (allowed on a 304) was answered 502: undici checks it against a body
 *   these statuses never have;
 * - a response the origin cut short reached HTTP/2 clients as a complete one (the stream was reset with
 *   NO_ERROR, which clients read as its end);
 * - a status above 599 (invalid: RFC 9110 §15) reached HTTP/1.1 clients, while HTTP/2 clients got 502;
 * - an origin that answered before the request's body was sent whole (an early 413, say) left the rest of
 *   that body unread on the client's connection, announced as kept alive: the client's next request on
 *   it was never read, and hung (a rest the gateway reads: at most 64 KiB of a declared length).
 */
const HOST = 'framing.localhost';

/** The origin's answers by the path's second segment (`/p/<name>/…`, `/c/<name>/…` for the cached route). */
const ANSWERS: Record<string, string> = {
  '205-body': 'HTTP/1.1 205 Reset Content\r\nContent-Length: 5\r\n\r\nhello',
  '205-chunked': 'HTTP/1.1 205 Reset Content\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  '204-length': 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n',
  '304-length': 'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 5\r\n\r\n',
  'cut-short': 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf!',
  'cut-short-chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhalf!\r\n',
  'status-600': 'HTTP/1.1 600 Unknown\r\nContent-Length: 2\r\n\r\nhi',
  'early-413': 'HTTP/1.1 413 Payload Too Large\r\nContent-Length: 5\r\n\r\nearly',
};
const CUT_SHORT = new Set(['cut-short', 'cut-short-chunked']);

let gateway: TestGateway;
let origin: net.Server;
let session: ClientHttp2Session;

beforeAll(async () => {
  origin = net.createServer((socket) =>
    onRequestHeads(socket, (_head, path) => {
      const name = path.split('/')[2] ?? '';
      socket.write(ANSWERS[name] ?? 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext');
      if (CUT_SHORT.has(name)) setTimeout(() => socket.destroy(), 20);
    }),
  );
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const cache = memoryResponseCache();
  gateway = await startTestGateway({ GATEWAY_H2C: 'true' }, { stages: [createCacheStage(cache)] });
  const target = `http://127.0.0.1:${(origin.address() as net.AddressInfo).port}`;
  const plainId = randomUUID();
  const cachedId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'framing',
      origins: [
        { id: plainId, targets: [target], timeout_seconds: 2 },
        { id: cachedId, targets: [target], timeout_seconds: 2 },
      ],
      routes: [
        {
          origin_id: cachedId,
          path_pattern: '/c/*',
          cache_policy: { mode: 'override', ttl_seconds: 60, cacheable_statuses: [200, 204, 205] },
        },
        { origin_id: plainId, path_pattern: '/p/*' },
      ],
    }),
  );
  session = http2Connect(gateway.url);
});

afterAll(async () => {
  session?.close();
  await gateway?.close();
  await new Promise<void>((resolve) => origin?.close(() => resolve()));
});

/** Two requests on one HTTP/1.1 connection (the second closes it): everything the client received. */
function twoOnOneConnection(method: string, path: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(gateway.gateway.trafficPort, '127.0.0.1');
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      received += chunk;
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve(received));
    socket.write(
      `${method} ${path} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n` +
        `GET /p/next/x HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`,
    );
  });
}

/** The first response's head (lower-cased) and what follows it up to the second response. */
function firstAnswer(received: string): { head: string; rest: string } {
  const end = received.indexOf('\r\n\r\n');
  return { head: received.slice(0, end).toLowerCase(), rest: received.slice(end + 4) };
}

const NEXT = 'HTTP/1.1 200 OK\r\n';

function h2(path: string, method = 'GET') {
  return http2Request(session, { path, authority: HOST, method, timeoutMs: 3_000 });
}

describe('an origin answer that has no content (204, 205, 304)', () => {
  it.each(['/p/205-body/x', '/p/205-chunked/x'])(
    '%s: a 205 reaches HTTP/1.1 clients with Content-Length 0 and without the body',
    async (path) => {
      const { head, rest } = firstAnswer(await twoOnOneConnection('GET', path));
      expect(head.startsWith('http/1.1 205 ')).toBe(true);
      expect(head).toContain('content-length: 0');
      expect(head).not.toContain('transfer-encoding');
      expect(rest.startsWith(NEXT)).toBe(true);
      expect(rest.endsWith('next')).toBe(true);
    },
  );

  it.each(['/p/205-body/x', '/p/205-chunked/x'])(
    '%s: a 205 reaches HTTP/2 clients without the body (never a reset stream)',
    async (path) => {
      const answer = await h2(path);
      expect(answer.status).toBe(205);
      expect(answer.body).toBe('');
      expect(answer.headers['content-length'] ?? '0').toBe('0');
    },
  );

  it('a cached 205 is stored and served without its body, to both protocols', async () => {
    expect((await h2('/c/205-body/x')).status).toBe(205); // MISS, stored
    const hit = await h2('/c/205-body/x');
    expect(hit.headers['x-cache']).toBe('HIT');
    expect(hit.status).toBe(205);
    expect(hit.body).toBe('');
    const { head, rest } = firstAnswer(await twoOnOneConnection('GET', '/c/205-body/x'));
    expect(head).toContain('x-cache: hit');
    expect(head).toContain('content-length: 0');
    expect(rest.startsWith(NEXT)).toBe(true);
  });

  it("a 204 goes out without the origin's Content-Length (HTTP/2 clients reset the stream on one)", async () => {
    for (const method of ['GET', 'HEAD']) {
      const answer = await h2('/p/204-length/x', method);
      expect(answer.status, method).toBe(204);
      expect(answer.headers['content-length'], method).toBeUndefined();
      const { head, rest } = firstAnswer(await twoOnOneConnection(method, '/p/204-length/x'));
      expect(head.startsWith('http/1.1 204 '), method).toBe(true);
      expect(head, method).not.toContain('content-length');
      expect(rest.startsWith(NEXT), method).toBe(true);
    }
  });

  it('a 304 with a Content-Length (the representation’s) is relayed, not answered 502', async () => {
    const answer = await h2('/p/304-length/x');
    expect(answer.status).toBe(304);
    expect(answer.headers['etag']).toBe('"v1"');
    const { head, rest } = firstAnswer(await twoOnOneConnection('GET', '/p/304-length/x'));
    expect(head.startsWith('http/1.1 304 ')).toBe(true);
    expect(rest.startsWith(NEXT)).toBe(true);
  });
});

describe('an origin answer cut short', () => {
  it.each(['/p/cut-short/x', '/p/cut-short-chunked/x'])(
    '%s: HTTP/2 clients see the stream reset with an error, never a complete response',
    async (path) => {
      const ending = await new Promise<{ body: string; ended: boolean; rstCode: number | undefined }>(
        (resolve) => {
          const stream = session.request({ ':path': path, ':authority': HOST });
          let body = '';
          let ended = false;
          stream.on('data', (chunk: Buffer) => {
            body += chunk.toString();
          });
          stream.on('end', () => {
            ended = true;
          });
          stream.on('error', () => {});
          stream.on('close', () => resolve({ body, ended, rstCode: stream.rstCode }));
        },
      );
      expect(ending.body).toBe('half!');
      expect(ending.rstCode).toBe(constants.NGHTTP2_INTERNAL_ERROR);
    },
  );
});

describe('an origin status outside 100–599', () => {
  it('is answered 502 upstream_error to HTTP/1.1 clients, as to HTTP/2 ones', async () => {
    const { head, rest } = firstAnswer(await twoOnOneConnection('GET', '/p/status-600/x'));
    expect(head.startsWith('http/1.1 502 ')).toBe(true);
    expect(rest).toContain('"upstream_error"');
    expect((await h2('/p/status-600/x')).status).toBe(502);
  });
});

/** A request body with a Content-Length, in two parts. */
function bodyParts(first: number, rest: number) {
  return { field: `Content-Length: ${first + rest}`, first: 'x'.repeat(first), rest: 'x'.repeat(rest) };
}

describe('an origin that answers before the request body was sent whole', () => {
  // A rest of at most 64 KiB; a larger one, or one of unknown length, is not read: the connection closes
  // after the answer (unread-request-bodies.int.test.ts).
  it('content-length: the rest of the body is read off the client connection, and its next request is answered', async () => {
    const client = await connectRaw('plain', gateway.gateway.trafficPort);
    const body = bodyParts(1024, 32 * 1024);
    client.socket.write(
      `POST /p/early-413/x HTTP/1.1\r\nHost: ${HOST}\r\n${body.field}\r\n\r\n${body.first}`,
    );
    // The origin's answer is whole at the client before the client sends the rest of its body.
    await within(
      new Promise<void>((resolve) => {
        const check = () =>
          client.received().endsWith('early') ? resolve() : client.socket.once('data', check);
        check();
      }),
      5_000,
      'the early answer',
    );
    client.socket.write(`${body.rest}GET /p/next/x HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`);
    await within(client.closed, 10_000, 'the connection closing after the next answer');
    const { head, rest } = firstAnswer(client.received());
    expect(head.startsWith('http/1.1 413 ')).toBe(true);
    expect(rest).toContain(NEXT);
    expect(rest.endsWith('next')).toBe(true);
  });
});
