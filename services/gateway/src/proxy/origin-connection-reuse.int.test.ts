import { randomUUID } from 'node:crypto';
import type { ClientHttp2Session } from 'node:http2';
import net from 'node:net';
import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { onRequestHeads } from '../testing/request-heads.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * When an origin connection is not to carry another request. Regression test: an origin whose chunked
 * answer said `Connection: close` in its trailers kept its connection in the pool, and the next request
 * sent on it (the origin reads no more of it) was answered 502, to HTTP/1.1 and HTTP/2 clients alike.
 * The other answers after which a connection must not be reused are checked alongside: one framed by the
 * connection's close, and `Connection: close` in the head.
 *
 * The origin here behaves as a server that has closed its side: after an answer that says so, whatever
 * it reads next on that connection makes it reset the connection.
 *
 * An origin may answer HEAD with a body anyway (its head saying `Content-Length: 5` and the 5 bytes
 * after it, or the bytes coming only later): reused, its connection would have the next request sent on
 * it answered 502 (the stray bytes read as the start of its answer). undici closes the connection after
 * every HEAD answer for such servers (nodejs/undici#258); the proxy must not ask it to keep one
 * (`reset: false`). The late bytes here come just before the origin's answer to the next request on
 * that connection, where they hurt.
 */
const HOST = 'reuse.localhost';

/** The origin's answers by the path's first segment; `closes`: the origin is done with the connection. */
const ANSWERS: Record<string, { answer: string; closes: boolean; ends?: boolean }> = {
  'trailer-close': {
    answer:
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Connection\r\n\r\n' +
      '5\r\nfirst\r\n0\r\nConnection: close\r\n\r\n',
    closes: true,
  },
  'trailer-close-listed': {
    answer:
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' +
      '5\r\nfirst\r\n0\r\nX-Checksum: 1\r\nconnection: TE, Close\r\n\r\n',
    closes: true,
  },
  'head-close': {
    answer: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nfirst',
    closes: true,
  },
  // No framing: the answer ends where the origin ends the connection.
  'read-to-close': { answer: 'HTTP/1.1 200 OK\r\n\r\nfirst', closes: true, ends: true },
};

/**
 * HEAD answers followed by body bytes, by the path's first segment; `late`: what the origin writes on
 * that connection before its next answer.
 */
const HEAD_ANSWERS: Record<string, { answer: string; late?: string }> = {
  'head-with-body': { answer: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst' },
  'head-late-body': { answer: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n', late: 'first' },
  'head-chunked-body': {
    answer: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n0\r\n\r\n',
  },
};

let gateway: TestGateway;
let origin: net.Server;
let session: ClientHttp2Session;

beforeAll(async () => {
  origin = net.createServer((socket) => {
    let closed = false;
    let late = '';
    onRequestHeads(socket, (_head, path) => {
      if (closed) {
        socket.resetAndDestroy();
        return;
      }
      const name = path.split('/')[2] ?? '';
      const head = HEAD_ANSWERS[name];
      if (head !== undefined) {
        socket.write(head.answer);
        late = head.late ?? '';
        return;
      }
      const known = ANSWERS[name];
      socket.write(late + (known?.answer ?? 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext'));
      late = '';
      closed = known?.closes ?? false;
      if (known?.ends) socket.end();
    });
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  gateway = await startTestGateway({ GATEWAY_H2C: 'true' });
  const target = `http://127.0.0.1:${(origin.address() as net.AddressInfo).port}`;
  // One origin (so one pool, one connection at a time here) per case: the next request can only go
  // down the connection the first one used, or a new one.
  const cases = [...Object.keys(ANSWERS), ...Object.keys(HEAD_ANSWERS)].flatMap((name) => [
    `h1-${name}`,
    `h2-${name}`,
  ]);
  const origins = cases.map((name) => ({ name, id: randomUUID() }));
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'reuse',
      // A reused connection fails at once (reset, 502): the timeouts only leave a busy machine time to answer.
      origins: origins.map(({ id }) => ({ id, targets: [target], timeout_seconds: 10 })),
      routes: origins.map(({ name, id }) => ({ origin_id: id, path_pattern: `/${name}/*` })),
    }),
  );
  session = http2Connect(gateway.url);
});

afterAll(async () => {
  session?.close();
  await gateway?.close();
  await new Promise<void>((resolve) => origin?.close(() => resolve()));
});

describe('an origin connection the origin said it closes is not used again', () => {
  it.each(Object.keys(ANSWERS))('%s: the next request of an HTTP/1.1 client is answered', async (name) => {
    const first = await send(gateway, HOST, `/h1-${name}/${name}/a`);
    expect(first.status).toBe(200);
    expect(first.text).toBe('first');
    const next = await send(gateway, HOST, `/h1-${name}/next/b`);
    expect(next.status).toBe(200);
    expect(next.text).toBe('next');
  });

  it.each(Object.keys(ANSWERS))('%s: the next request of an HTTP/2 client is answered', async (name) => {
    const request = (path: string) =>
      http2Request(session, { path, authority: HOST, method: 'GET', timeoutMs: 12_000 });
    const first = await request(`/h2-${name}/${name}/a`);
    expect(first.status).toBe(200);
    expect(first.body).toBe('first');
    const next = await request(`/h2-${name}/next/b`);
    expect(next.status).toBe(200);
    expect(next.body).toBe('next');
  });
});

describe('an origin connection on which a HEAD answer was followed by body bytes is not used again', () => {
  it.each(Object.keys(HEAD_ANSWERS))(
    '%s: the next request of an HTTP/1.1 client is answered',
    async (name) => {
      const first = await send(gateway, HOST, `/h1-${name}/${name}/a`, { method: 'HEAD' });
      expect(first.status).toBe(200);
      expect(first.text).toBe('');
      const next = await send(gateway, HOST, `/h1-${name}/next/b`);
      expect(next.status).toBe(200);
      expect(next.text).toBe('next');
    },
  );

  it.each(Object.keys(HEAD_ANSWERS))('%s: the next request of an HTTP/2 client is answered', async (name) => {
    const request = (path: string, method: string) =>
      http2Request(session, { path, authority: HOST, method, timeoutMs: 12_000 });
    const first = await request(`/h2-${name}/${name}/a`, 'HEAD');
    expect(first.status).toBe(200);
    const next = await request(`/h2-${name}/next/b`, 'GET');
    expect(next.status).toBe(200);
    expect(next.body).toBe('next');
  });
});
