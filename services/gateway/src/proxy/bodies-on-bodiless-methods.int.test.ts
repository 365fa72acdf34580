import { randomUUID } from 'node:crypto';
import type { ClientHttp2Session } from 'node:http2';
import net from 'node:net';
import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * A body on a request whose method defines none (GET, HEAD, OPTIONS, DELETE, TRACE) is forwarded, and the
 * origin connection it went down is not used again. Many origins never read a body on such a method:
 * the unread bytes are then taken for the next request on that keep-alive connection ("CL.0" request
 * smuggling), and whoever's request goes down that connection next gets the answer to a request an
 * attacker wrote. The origin here is such a server (it reads request heads only, every one it finds),
 * the pool has one connection per target: client 2's request can only go down client 1's connection or
 * a new one.
 */
const HOST = 'bodiless.localhost';

/**
 * The attacker's body, to an origin that reads none of it as a body: the start of a request of its own,
 * its last header field left open, so that the head of the next request on that connection completes it.
 */
const smuggled = (name: string) => `GET /${name}/secret HTTP/1.1\r\nHost: origin\r\nX-Ignore: `;

type Framing = 'content-length' | 'chunked';
/** A retried route reads a short body whole first and sends each attempt a copy of it. */
const RETRIED = {
  retries: { on: ['503'], backoff: { base_ms: 0, max_ms: 0 }, budget: { percent: 100, min_retries: 1000 } },
};
const CASES: ReadonlyArray<{
  name: string;
  method: string;
  framing: Framing;
  route?: Record<string, unknown>;
}> = [
  { name: 'get-length', method: 'GET', framing: 'content-length' },
  { name: 'get-chunked', method: 'GET', framing: 'chunked' },
  { name: 'get-retried', method: 'GET', framing: 'content-length', route: RETRIED },
  { name: 'head-length', method: 'HEAD', framing: 'content-length' },
  { name: 'options-length', method: 'OPTIONS', framing: 'content-length' },
  { name: 'delete-length', method: 'DELETE', framing: 'content-length' },
  { name: 'delete-chunked', method: 'DELETE', framing: 'chunked' },
  { name: 'trace-length', method: 'TRACE', framing: 'content-length', route: { methods: ['GET', 'TRACE'] } },
];
const HTTP2_CASES = ['GET', 'OPTIONS', 'DELETE'].map((method) => `h2-${method.toLowerCase()}`);

let gateway: TestGateway;
let origin: net.Server;
let session: ClientHttp2Session;
/** The paths the origin read, in order. */
const received: string[] = [];

/** Answers every request head it finds, never reading a body: `answer to <path>`. */
function answerHeadsOnly(socket: net.Socket): void {
  socket.on('error', () => {});
  let buffered = '';
  socket.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('latin1');
    for (let end = buffered.indexOf('\r\n\r\n'); end >= 0; end = buffered.indexOf('\r\n\r\n')) {
      const [method = '', path = ''] = buffered.slice(0, end).split(' ');
      buffered = buffered.slice(end + 4);
      received.push(path);
      const body = `answer to ${path}`;
      socket.write(
        `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${method === 'HEAD' ? '' : body}`,
      );
    }
  });
}

beforeAll(async () => {
  origin = net.createServer(answerHeadsOnly);
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  gateway = await startTestGateway({ GATEWAY_H2C: 'true' }, { upstreams: { connectionsPerTarget: 1 } });
  const target = `http://127.0.0.1:${(origin.address() as net.AddressInfo).port}`;
  // An origin (a pool of one connection) per case.
  const origins = [...CASES, ...HTTP2_CASES.map((name) => ({ name, route: undefined }))].map(
    ({ name, route }) => ({ name, route, id: randomUUID() }),
  );
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'bodiless',
      origins: origins.map(({ id }) => ({ id, targets: [target], timeout_seconds: 10 })),
      routes: origins.map(({ name, id, route }) => ({ origin_id: id, path_pattern: `/${name}/*`, ...route })),
    }),
  );
  session = http2Connect(gateway.url);
});

afterAll(async () => {
  session?.close();
  await gateway?.close();
  await new Promise<void>((resolve) => origin?.close(() => resolve()));
});

/** Client 1's request over a connection of its own, as written; its answer's status line. */
function sendRaw(request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(gateway.gateway.trafficPort, '127.0.0.1');
    let answer = '';
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      if (answer.includes('\r\n\r\n')) {
        socket.destroy();
        resolve(answer.slice(0, answer.indexOf('\r\n')));
      }
    });
    socket.on('error', reject);
    socket.write(request);
  });
}

function withBody(method: string, path: string, framing: Framing, body: string): string {
  const head = `${method} ${path} HTTP/1.1\r\nHost: ${HOST}\r\n`;
  if (framing === 'content-length') return `${head}Content-Length: ${body.length}\r\n\r\n${body}`;
  return `${head}Transfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
}

describe('a body on a method that defines none cannot become part of another client’s exchange', () => {
  it.each(CASES)(
    '$method with a body ($framing) from an HTTP/1.1 client',
    async ({ name, method, framing }) => {
      const first = await sendRaw(withBody(method, `/${name}/a`, framing, smuggled(name)));
      expect(first).toBe('HTTP/1.1 200 OK');

      const next = await send(gateway, HOST, `/${name}/b`);
      expect(next.status).toBe(200);
      expect(next.text).toBe(`answer to /${name}/b`);
      // The body was forwarded (as Envoy and nginx do): the origin made of it what it does.
      expect(received).toContain(`/${name}/a`);
    },
  );

  it.each(HTTP2_CASES)('%s: a body from an HTTP/2 client', async (name) => {
    const method = name.slice(3).toUpperCase();
    const request = (path: string, init: { method: string; body?: string }) =>
      http2Request(session, { path, authority: HOST, timeoutMs: 12_000, ...init });
    const first = await request(`/${name}/a`, { method, body: smuggled(name) });
    expect(first.status).toBe(200);

    const next = await request(`/${name}/b`, { method: 'GET' });
    expect(next.status).toBe(200);
    expect(next.body).toBe(`answer to /${name}/b`);
  });
});
