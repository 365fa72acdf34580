import { randomUUID } from 'node:crypto';
import { asOriginsReadIt } from '@vantageedge/shared/http/cgi-spellings';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { connectRaw, pause, within } from '../testing/raw-connections.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * Requests whose body a proxy in front of the gateway may end elsewhere than the gateway does (request
 * smuggling through that proxy). Regression tests:
 * - `Transfer-Encoding: identity, chunked` (or an `identity` line and a `chunked` line) was read as
 *   chunked and forwarded, and so was an HTTP/1.0 request with `Transfer-Encoding` (RFC 9112 §6.1: its
 *   framing is faulty), its connection kept open: what followed the chunked body was served as the
 *   next request. Both are now refused 400 `invalid_transfer_encoding` and the connection closes.
 * - `Transfer-Encoding: gzip` (or any coding but chunked last) was refused 400 by the gateway, but node's
 *   parser then failed the body and the connection was cut before that answer went out: the client got
 *   no answer at all.
 * - A request line naming `HTTP/2.0` or `HTTP/0.9` (node's parser takes both) skipped every check made
 *   by version: `Transfer-Encoding: identity, chunked` was forwarded, a GET answered 500 (read as an
 *   HTTP/2 stream), a CONNECT or WebSocket upgrade got no answer or a 500. Now 400 `invalid_http_version`.
 * - A request refused because its connection could no longer be trusted (two Host lines) answered
 *   `Connection: close`, yet a request pipelined behind it in the same bytes was still forwarded to the
 *   origin. Nothing sent after such a request is handled now.
 * - `Content_Length` was forwarded to the origin as it came. Unicorn (and Puma before 6.4.3), which read
 *   `_` in a field name as `-`, frame the request by it: a GET with `Content_Length: 40` had such an
 *   origin take the next request the gateway sent on that pooled connection (another client's) as its
 *   body, and a POST whose `Content_Length: 0` followed the gateway's `Content-Length` had its body read
 *   as a request of its own, one no route, key or rate limit of the gateway had seen.
 */
const HOST = 'framing.localhost';
const PIPELINED = `GET /api/pipelined HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;

let origin: TestOrigin;
let gateway: TestGateway;

beforeAll(async () => {
  origin = await startTestOrigin('framing-origin');
  gateway = await startTestGateway();
  const originId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'framing',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [{ origin_id: originId, path_pattern: '/api/*' }],
    }),
  );
});

afterAll(async () => {
  await gateway?.close();
  await origin?.close();
});

/**
 * Writes `bytes` on one connection and reads until the gateway closes it or the pipelined request has
 * been answered; then, so that anything the gateway forwarded from it has reached the origin, one more
 * request on a connection of its own.
 */
async function exchange(bytes: string): Promise<{ received: string; closed: boolean }> {
  const client = await connectRaw('plain', gateway.gateway.trafficPort);
  let closed = false;
  void client.closed.then(() => {
    closed = true;
  });
  client.socket.write(bytes);
  await within(
    (async () => {
      while (!closed && !client.received().includes('"url":"/api/pipelined"')) await pause(10);
    })(),
    10_000,
    'the connection closed or the pipelined request answered',
  );
  const answer = { received: client.received(), closed };
  client.socket.destroy();
  expect((await send(gateway, HOST, '/api/after')).status).toBe(200);
  return answer;
}

function originSaw(path: string): boolean {
  return origin.seen.some((request) => request.url === path);
}

describe('a Transfer-Encoding that leaves the end of the body in doubt', () => {
  it.each([
    ['identity, chunked', `Transfer-Encoding: identity, chunked\r\n`, '/api/identity-chunked'],
    [
      'an identity line, then a chunked one',
      `Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n`,
      '/api/two-lines',
    ],
    // node's parser refuses these bodies once the gateway has answered the head: that answer goes out.
    ['gzip', `Transfer-Encoding: gzip\r\n`, '/api/gzip'],
    ['xchunked', `Transfer-Encoding: xchunked\r\n`, '/api/xchunked'],
  ])(
    '%s: refused 400 invalid_transfer_encoding, the connection closed, nothing forwarded',
    async (_what, field, path) => {
      const { received, closed } = await exchange(
        `POST ${path} HTTP/1.1\r\nHost: ${HOST}\r\n${field}\r\n3\r\nabc\r\n0\r\n\r\n${PIPELINED}`,
      );
      expect(received.startsWith('HTTP/1.1 400 Bad Request\r\n')).toBe(true);
      expect(received).toContain('"code":"invalid_transfer_encoding"');
      expect(received.toLowerCase()).toContain('\r\nconnection: close\r\n');
      expect(closed).toBe(true);
      expect(originSaw(path)).toBe(false);
      expect(originSaw('/api/pipelined')).toBe(false);
    },
  );

  it('on an HTTP/1.0 request (kept alive): refused 400, the connection closed, nothing forwarded', async () => {
    const { received, closed } = await exchange(
      `POST /api/http10 HTTP/1.0\r\nHost: ${HOST}\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n` +
        `3\r\nabc\r\n0\r\n\r\n${PIPELINED}`,
    );
    expect(received.startsWith('HTTP/1.1 400 Bad Request\r\n')).toBe(true);
    expect(received).toContain('"code":"invalid_transfer_encoding"');
    expect(closed).toBe(true);
    expect(originSaw('/api/http10')).toBe(false);
    expect(originSaw('/api/pipelined')).toBe(false);
  });

  it('chunked alone, in any case, is forwarded, and so is the request pipelined behind it', async () => {
    const { received, closed } = await exchange(
      `POST /api/chunked HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n${PIPELINED}`,
    );
    expect(received.startsWith('HTTP/1.1 200 OK\r\n')).toBe(true);
    expect(closed).toBe(false);
    expect(originSaw('/api/chunked')).toBe(true);
    expect(originSaw('/api/pipelined')).toBe(true);
  });
});

/** The fields of a request an origin reading `_` as `-` (Unicorn, older Puma) takes for Content-Length. */
function lengthFieldsAsOriginsReadThem(path: string): Array<[string, unknown]> {
  const seen = origin.seen.find((request) => request.url === path);
  expect(seen).toBeDefined();
  return Object.entries(seen!.headers).filter(([name]) => asOriginsReadIt(name) === 'content-length');
}

describe('Content-Length spelled with `_`, which origins reading `_` as `-` frame the request by', () => {
  it("is not forwarded: the origin reads the body by the gateway's Content-Length alone", async () => {
    const { received } = await exchange(
      `POST /api/underscore-length HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 3\r\nContent_Length: 0\r\n\r\n` +
        `abc${PIPELINED}`,
    );
    expect(received.startsWith('HTTP/1.1 200 OK\r\n')).toBe(true);
    expect(lengthFieldsAsOriginsReadThem('/api/underscore-length')).toEqual([['content-length', '3']]);
    expect(originSaw('/api/pipelined')).toBe(true);
  });

  it('is not forwarded with a request that has no body', async () => {
    const { received } = await exchange(
      `GET /api/underscore-length-no-body HTTP/1.1\r\nHost: ${HOST}\r\nContent_Length: 40\r\n\r\n${PIPELINED}`,
    );
    expect(received.startsWith('HTTP/1.1 200 OK\r\n')).toBe(true);
    expect(lengthFieldsAsOriginsReadThem('/api/underscore-length-no-body')).toEqual([]);
  });
});

describe('a request refused because its connection can no longer be trusted', () => {
  it('two Host lines: 400, and the request pipelined behind it never reaches the origin', async () => {
    const { received, closed } = await exchange(
      `GET /api/two-hosts HTTP/1.1\r\nHost: ${HOST}\r\nHost: other.localhost\r\n\r\n` +
        PIPELINED.replace('/api/pipelined', '/api/behind-two-hosts'),
    );
    expect(received.startsWith('HTTP/1.1 400 Bad Request\r\n')).toBe(true);
    expect(received).toContain('"code":"invalid_host"');
    expect(closed).toBe(true);
    expect(originSaw('/api/behind-two-hosts')).toBe(false);
  });
});

/**
 * After a framing error nothing that follows can be told apart from the refused request's body (RFC 9112
 * §6.3: the server answers 400 and closes the connection; §11.2), so a request pipelined behind it, a
 * CONNECT too, is never read and gets no answer of its own, as with node's and nginx's own parsers.
 */
describe('a request pipelined behind one refused for its framing', () => {
  const CONNECT = `CONNECT ${HOST}:443 HTTP/1.1\r\nHost: ${HOST}:443\r\n\r\n`;
  it.each([
    [
      'Content-Length and Transfer-Encoding',
      'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ],
    ['an invalid chunk size', 'Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'],
  ])(
    '%s: the 400 is the only answer, the connection closes, a CONNECT behind it is not read',
    async (_what, framing) => {
      const { received, closed } = await exchange(
        `POST /api/bad-framing HTTP/1.1\r\nHost: ${HOST}\r\n${framing}${CONNECT}`,
      );
      expect(received.startsWith('HTTP/1.1 400 Bad Request\r\n')).toBe(true);
      expect(received).toContain('"code":"malformed_request"');
      expect(received.match(/HTTP\/1\.1 \d{3} /g)).toHaveLength(1);
      expect(closed).toBe(true);
    },
  );
});

describe('a request line over HTTP/1.1 claiming another HTTP version', () => {
  it.each(['HTTP/2.0', 'HTTP/0.9'])(
    '%s with a doubtful Transfer-Encoding: refused 400 invalid_http_version, the connection closed, nothing forwarded',
    async (version) => {
      const path = `/api/claims-${version.slice(5)}`;
      const { received, closed } = await exchange(
        `POST ${path} ${version}\r\nHost: ${HOST}\r\nTransfer-Encoding: identity, chunked\r\n\r\n` +
          `3\r\nabc\r\n0\r\n\r\n${PIPELINED.replace('/api/pipelined', `${path}/behind`)}`,
      );
      expect(received.startsWith('HTTP/1.1 400 Bad Request\r\n')).toBe(true);
      expect(received).toContain('"code":"invalid_http_version"');
      expect(closed).toBe(true);
      expect(originSaw(path)).toBe(false);
      expect(originSaw(`${path}/behind`)).toBe(false);
    },
  );

  it('HTTP/2.0 without a body: refused 400 invalid_http_version, not a gateway error', async () => {
    const { received, closed } = await exchange(`GET /api/h2-get HTTP/2.0\r\nHost: ${HOST}\r\n\r\n`);
    expect(received.startsWith('HTTP/1.1 400 Bad Request\r\n')).toBe(true);
    expect(received).toContain('"code":"invalid_http_version"');
    expect(closed).toBe(true);
    expect(originSaw('/api/h2-get')).toBe(false);
  });

  it('CONNECT claiming HTTP/2.0 is answered 405 method_not_supported like any CONNECT', async () => {
    const { received, closed } = await exchange(`CONNECT ${HOST}:443 HTTP/2.0\r\nHost: ${HOST}:443\r\n\r\n`);
    expect(received.startsWith('HTTP/1.1 405 Method Not Allowed\r\n')).toBe(true);
    expect(received).toContain('"code":"method_not_supported"');
    expect(closed).toBe(true);
  });
});

describe('a WebSocket upgrade whose request line claims HTTP/2.0', () => {
  it('is refused 400 invalid_http_version', async () => {
    const client = await connectRaw('plain', gateway.gateway.trafficPort);
    client.socket.write(
      `GET /api/socket HTTP/2.0\r\nHost: ${HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    await within(client.closed, 10_000, 'the connection closed');
    expect(client.received().startsWith('HTTP/1.1 400 Bad Request\r\n')).toBe(true);
    expect(client.received()).toContain('"code":"invalid_http_version"');
  });
});
