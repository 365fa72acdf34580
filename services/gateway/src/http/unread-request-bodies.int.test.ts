import { constants, connect as http2Connect } from 'node:http2';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DefaultCertificateFiles,
  writeDefaultCertificateFiles,
} from '../testing/default-certificate-files.js';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { catchAllTenant, connectRaw, type RawClient, within } from '../testing/raw-connections.js';

/**
 * Requests answered before their body arrived whole: by the gateway itself (no tenant, a refusal before
 * the body is read) or by an origin that answers early (an early 413). Regression tests: over HTTP/1.1
 * the rest of the body, up to its declared Content-Length (the gateway's body limit, or anything for an
 * answer refusing it), was read and dropped to keep the connection for a next request, so any client,
 * without a credential, could make the replica read that much for nothing on every request; a chunked
 * rest was read up to the route's body limit, and an HTTP/2 declared rest whole. Now HTTP/1.1 reads only
 * a declared rest of at most 64 KiB; past it the answer says `Connection: close`, goes out whole, and
 * the connection is closed after a lingering close, what the client sends meanwhile read and dropped
 * (Envoy closes a connection whose response completed before its request; nginx reads during its
 * lingering close): a client that keeps sending is cut, and one that sends its body whole before reading
 * the answer gets it. HTTP/2 reads at most 64 KiB more, then resets the stream NO_ERROR once answered.
 */
const HOST = 'unread.localhost';
const LARGE_BODY_BYTES = 64 * 1024 * 1024;
/**
 * A body sent whole before its answer is read: far more than what loopback's socket buffers hold while
 * nobody reads (≈ 4 MiB), so it gets through only if the gateway reads it during its lingering close,
 * and little enough to get through well within that close's 2 s on a loaded machine (64 MiB took 0.4–2 s).
 */
const WHOLE_BODY_BYTES = 16 * 1024 * 1024;
const EARLY = 'HTTP/1.1 413 Payload Too Large\r\nContent-Length: 5\r\n\r\nearly';
const NEXT = 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnext';

let certificates: DefaultCertificateFiles;
let origin: net.Server;
let gateway: TestGateway;
const clients: RawClient[] = [];

beforeAll(async () => {
  // Answers `/early/…` as soon as its head arrives, reading and dropping whatever body follows; any other
  // path with `next`.
  origin = net.createServer((socket) => {
    socket.on('error', () => {});
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      socket.resume();
      const early = (head.split(' ')[1] ?? '').startsWith('/early');
      socket.write(early ? EARLY : NEXT);
      if (!early) socket.end();
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  certificates = await writeDefaultCertificateFiles('unread');
  gateway = await startTestGateway({
    GATEWAY_H2C: 'true',
    ...certificates.tlsListenerEnv,
    GATEWAY_MAX_BODY_BYTES: String(2 * LARGE_BODY_BYTES),
  });
  gateway.store.apply(
    catchAllTenant('unread', `http://127.0.0.1:${(origin.address() as net.AddressInfo).port}`),
  );
});

afterAll(async () => {
  for (const client of clients) client.socket.destroy();
  await gateway?.close();
  await new Promise<void>((resolve) => origin?.close(() => resolve()));
  await certificates?.remove();
});

/** A raw HTTP/1.1 connection (plain, or TLS), and the gateway's end of it (what the replica read of it). */
async function connect(kind: 'plain' | 'tls' = 'plain'): Promise<{ client: RawClient; served: net.Socket }> {
  const accepted = new Promise<net.Socket>((resolve) =>
    kind === 'plain'
      ? gateway.gateway.trafficServer.once('connection', resolve)
      : gateway.gateway.tlsServer?.once('secureConnection', resolve),
  );
  const port = kind === 'plain' ? gateway.gateway.trafficPort : (gateway.gateway.tlsPort as number);
  const client = await connectRaw(kind, port, 'unread.localhost');
  clients.push(client);
  return { client, served: await accepted };
}

/** Resolves once the client has an answer whose body (of its Content-Length) arrived whole. */
function wholeAnswer(client: RawClient): Promise<{ head: string; body: string }> {
  return within(
    new Promise((resolve) => {
      const check = () => {
        const received = client.received();
        const end = received.indexOf('\r\n\r\n');
        const length = /\r\ncontent-length: (\d+)/i.exec(received.slice(0, end));
        if (end >= 0 && length !== null && received.length >= end + 4 + Number(length[1])) {
          resolve({
            head: received.slice(0, end).toLowerCase(),
            body: received.slice(end + 4, end + 4 + Number(length[1])),
          });
        } else client.socket.once('data', check);
      };
      check();
    }),
    10_000,
    'the whole answer',
  );
}

/** The client's whole answer: `status`, with Connection: close, and then its connection closed. */
async function closingAnswer(client: RawClient, status: number): Promise<{ head: string; body: string }> {
  const answer = await wholeAnswer(client);
  expect(answer.head.startsWith(`http/1.1 ${status} `)).toBe(true);
  expect(answer.head).toContain('\r\nconnection: close');
  await within(client.closed, 10_000, 'the connection closed');
  return answer;
}

const postHead = (host: string, path: string, contentLength: number) =>
  `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${contentLength}\r\n\r\n`;
const bodyOf = (bytes: number) => Buffer.alloc(bytes, 'x');
const chunkOf = (bytes: number) =>
  Buffer.concat([Buffer.from(`${bytes.toString(16)}\r\n`), bodyOf(bytes), Buffer.from('\r\n')]);

/**
 * A client that goes on sending `piece` every few milliseconds until its connection is cut: far slower
 * than LARGE_BODY_BYTES in the time the test waits, so that it is the gateway that ends the connection.
 */
function keepSending(client: RawClient, piece: Buffer): void {
  // Not stopped by the gateway's FIN, as a hostile client is not.
  client.socket.allowHalfOpen = true;
  const next = setInterval(() => {
    if (client.socket.destroyed || !client.socket.writable) clearInterval(next);
    else client.socket.write(piece);
  }, 5);
  void client.closed.then(() => clearInterval(next));
}

describe('request bodies left unread by an early answer', () => {
  it.each([
    ['the gateway’s own answer (no tenant)', 'plain', 'nobody.localhost', '/x', 404],
    ['an origin’s early answer', 'plain', HOST, '/early/x', 413],
    ['HTTPS, the gateway’s own answer (no tenant)', 'tls', 'nobody.localhost', '/x', 404],
  ] as const)(
    'regression: %s to a large declared body: the whole answer with Connection: close, then the close while the client still sends, the rest not read',
    async (_name, kind, host, path, status) => {
      const { client, served } = await connect(kind);
      client.socket.write(postHead(host, path, LARGE_BODY_BYTES));
      keepSending(client, bodyOf(16 * 1024));
      await closingAnswer(client, status);
      expect(served.bytesRead).toBeLessThan(LARGE_BODY_BYTES / 2);
    },
  );

  // Many clients (HTTP libraries that send a request whole, then read its answer) read nothing until
  // their last byte is out: the answer reaches them only if what they still send is read meanwhile.
  it.each([
    ['the gateway’s own answer (no tenant)', 'nobody.localhost', '/x', 404],
    ['an origin’s early answer', HOST, '/early/x', 413],
  ] as const)(
    'regression: %s to a large body, a client that sends it whole before reading gets the answer',
    async (_name, host, path, status) => {
      const { client } = await connect();
      client.socket.write(postHead(host, path, WHOLE_BODY_BYTES));
      const sent = await within(
        new Promise<Error | null | undefined>((resolve) =>
          client.socket.write(bodyOf(WHOLE_BODY_BYTES), resolve),
        ),
        10_000,
        'the body sent',
      );
      expect(sent ?? null).toBeNull();
      await closingAnswer(client, status);
    },
  );

  it('regression: a chunked body an origin answered early: the answer with Connection: close, then the close while the client still sends', async () => {
    const { client, served } = await connect();
    client.socket.write(`POST /early/x HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\n\r\n`);
    keepSending(client, chunkOf(16 * 1024));
    const { body } = await closingAnswer(client, 413);
    expect(body).toBe('early');
    expect(served.bytesRead).toBeLessThan(LARGE_BODY_BYTES / 2);
  });

  it.each([
    ['the gateway’s own answer (no tenant)', 'nobody.localhost', '/x', 404],
    ['an origin’s early answer', HOST, '/early/x', 413],
  ] as const)(
    '%s to a body whose rest is small: the connection is kept, the rest read, the next request on it answered',
    async (_name, host, path, status) => {
      const { client } = await connect();
      client.socket.write(postHead(host, path, 48 * 1024));
      client.socket.write(bodyOf(1024));
      const { head } = await wholeAnswer(client);
      expect(head.startsWith(`http/1.1 ${status} `)).toBe(true);
      expect(head).not.toContain('\r\nconnection: close');
      client.socket.write(bodyOf(47 * 1024));
      client.socket.write(`GET /next HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`);
      await within(client.closed, 10_000, 'the connection closed after the next answer');
      expect(client.received()).toContain('HTTP/1.1 200 OK\r\n');
      expect(client.received().endsWith('next')).toBe(true);
    },
  );

  it('regression: HTTP/2, an origin’s early answer to a large declared body: the whole answer, then RST_STREAM NO_ERROR, the rest not read', async () => {
    const accepted = new Promise<net.Socket>((resolve) =>
      gateway.gateway.trafficServer.once('connection', resolve),
    );
    // node's client counts what it has not sent of a stream against its session memory (10 MB by default).
    const session = http2Connect(gateway.url, { maxSessionMemory: 200 });
    session.on('error', () => {});
    try {
      const served = await accepted;
      const stream = session.request({
        ':method': 'POST',
        ':path': '/early/x',
        ':authority': HOST,
        'content-length': String(LARGE_BODY_BYTES),
      });
      stream.on('error', () => {});
      let status = 0;
      let body = '';
      stream.on('response', (headers) => {
        status = Number(headers[':status']);
      });
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        body += chunk;
      });
      stream.end(bodyOf(LARGE_BODY_BYTES));
      await within(new Promise((resolve) => stream.once('close', resolve)), 10_000, 'the stream closed');
      expect({ status, body, rstCode: stream.rstCode }).toEqual({
        status: 413,
        body: 'early',
        rstCode: constants.NGHTTP2_NO_ERROR,
      });
      expect(served.bytesRead).toBeLessThan(LARGE_BODY_BYTES / 4);
    } finally {
      session.destroy();
    }
  });
});
