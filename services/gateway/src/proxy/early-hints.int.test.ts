import { randomUUID } from 'node:crypto';
import { type ClientHttp2Session, connect as connectHttp2, type IncomingHttpHeaders } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { catchAllTenant } from '../testing/raw-connections.js';
import { receivedUntilClosed } from '../testing/raw-exchange.js';
import { type RawOrigin, startRawOrigin } from '../testing/raw-origins.js';
import { onRequestHeads } from '../testing/request-heads.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * An origin's 103 (Early Hints, RFC 8297) reaches the client before the final answer (RFC 9110 §15.2: a
 * proxy forwards the 1xx answers it did not ask for), with its Link lines only (what a browser reads of
 * it), once per request, and never to an HTTP/1.0 client, which cannot read a 1xx answer. Regression
 * test: no 103 ever reached a client, so a browser behind the gateway never preloaded what the origin
 * hinted.
 */
const HINTS =
  'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload; as=style\r\nConnection: X-Named\r\nX-Named: 1\r\n' +
  'Set-Cookie: hinted=1\r\n\r\n';
const ANSWERS: Record<string, string> = {
  '/hints': `${HINTS}HTTP/1.1 103 Early Hints\r\nLink: </b.js>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok`,
  '/unreadable-link':
    'HTTP/1.1 103 Early Hints\r\nLink: no brackets\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  '/processing': 'HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  '/listed-links':
    'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload; as=style, </b.js>; rel=preload\r\n\r\n' +
    'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  // node's own check of a Link backtracks through 2^40 splits of this one before refusing it.
  '/backtracking-link': `HTTP/1.1 103 Early Hints\r\nLink: </a.css>${'; x=x'.repeat(40)}; "\r\nLink: </b.js>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok`,
};

let gateway: TestGateway;
let origin: RawOrigin;
let session: ClientHttp2Session;

beforeAll(async () => {
  origin = await startRawOrigin((socket) =>
    onRequestHeads(socket, (_head, path) => socket.write(ANSWERS[path] ?? 'HTTP/1.1 404 Not Found\r\n\r\n')),
  );
  gateway = await startTestGateway({ GATEWAY_H2C: 'true' });
  gateway.store.apply(catchAllTenant('hints', origin.url));
  const originId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'unlinked',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [{ origin_id: originId, path_pattern: '/*', response_headers: { remove: ['Link'] } }],
    }),
  );
  session = connectHttp2(gateway.url);
});

afterAll(async () => {
  session.close();
  await gateway.close();
  await origin.close();
});

/** What the client reads on a connection of its own for `request`, until the gateway closes it. */
const received = (request: string) => receivedUntilClosed(gateway.gateway.trafficPort, request);

function interimStatuses(text: string): string[] {
  return [...text.matchAll(/HTTP\/1\.1 (1\d\d)[^\r]*\r\n/g)].map((match) => match[1]!);
}

describe("an origin's 103 Early Hints", () => {
  it('reaches an HTTP/1.1 client before the final answer, its Link lines only, once', async () => {
    const text = await received('GET /hints HTTP/1.1\r\nHost: hints.localhost\r\nConnection: close\r\n\r\n');
    expect(
      text.startsWith(
        'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload; as=style\r\n\r\nHTTP/1.1 200 OK\r\n',
      ),
    ).toBe(true);
    expect(interimStatuses(text)).toEqual(['103']);
    expect(text).not.toContain('hinted=1');
    expect(text).not.toContain('X-Named');
    expect(text.endsWith('\r\n\r\nok')).toBe(true);
  });

  it('never reaches an HTTP/1.0 client (RFC 9110 §15.2), which gets the final answer alone', async () => {
    const text = await received('GET /hints HTTP/1.0\r\nHost: hints.localhost\r\n\r\n');
    expect(interimStatuses(text)).toEqual([]);
    expect(text.startsWith('HTTP/1.1 200 OK\r\n')).toBe(true);
    expect(text.endsWith('\r\n\r\nok')).toBe(true);
  });

  it('reaches an HTTP/2 client as an informational head before the final one', async () => {
    const interim: IncomingHttpHeaders[] = [];
    const final = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const stream = session.request({ ':path': '/hints', ':authority': 'hints.localhost' });
      stream.on('headers', (headers) => interim.push(headers));
      let status = 0;
      let body = '';
      stream.on('response', (headers) => {
        status = Number(headers[':status']);
      });
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        body += chunk;
      });
      stream.on('end', () => resolve({ status, body }));
      stream.on('error', reject);
    });
    expect(final).toEqual({ status: 200, body: 'ok' });
    expect(interim.map((headers) => [headers[':status'], headers.link, headers['set-cookie']])).toEqual([
      [103, '</a.css>; rel=preload; as=style', undefined],
    ]);
  });

  it("is not relayed on a route whose response_headers remove the origin's Link", async () => {
    const text = await received(
      'GET /hints HTTP/1.1\r\nHost: unlinked.localhost\r\nConnection: close\r\n\r\n',
    );
    expect(interimStatuses(text)).toEqual([]);
    expect(text.startsWith('HTTP/1.1 200 OK\r\n')).toBe(true);
  });

  it('relays the links an origin lists on one line', async () => {
    const text = await received(
      'GET /listed-links HTTP/1.1\r\nHost: hints.localhost\r\nConnection: close\r\n\r\n',
    );
    expect(
      text.startsWith(
        'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload; as=style, </b.js>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\n',
      ),
    ).toBe(true);
  });

  it("leaves the replica serving when a Link would hold node's check for days: the readable lines go", async () => {
    const text = await received(
      'GET /backtracking-link HTTP/1.1\r\nHost: hints.localhost\r\nConnection: close\r\n\r\n',
    );
    expect(
      text.startsWith('HTTP/1.1 103 Early Hints\r\nLink: </b.js>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\n'),
    ).toBe(true);
    expect(text.endsWith('\r\n\r\nok')).toBe(true);
  });

  it('with a Link no client could read, and other 1xx answers, is not relayed: the final answer is', async () => {
    for (const path of ['/unreadable-link', '/processing']) {
      const text = await received(
        `GET ${path} HTTP/1.1\r\nHost: hints.localhost\r\nConnection: close\r\n\r\n`,
      );
      expect(interimStatuses(text), path).toEqual([]);
      expect(text.startsWith('HTTP/1.1 200 OK\r\n'), path).toBe(true);
    }
  });
});
