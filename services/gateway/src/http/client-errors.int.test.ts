import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { selfSignedTestCertificate } from '@vantageedge/shared/testing/test-certificates';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { catchAllTenant, connectRaw, pause, within } from '../testing/raw-connections.js';
import { readResponses } from '../testing/raw-exchange.js';

/**
 * Regression test: a request node's parser refuses (malformed, a head over GATEWAY_MAX_HEADER_BYTES),
 * pipelined behind one whose response was under way, got its 400/431 written into the middle of that
 * response: the client read the error's bytes as the end of the first response's body, a response it
 * could not tell from a whole one. Then the connection was cut instead, and the first request (maybe
 * another tenant's, on a connection reused across hosts, whose origin acted on it) lost its answer. Now
 * the answers to the requests received whole go out first, whole, then the refusal, and the connection
 * closes. Both HTTP/1.1 listeners (plain, TLS).
 */
const HOST = 'answers.localhost';
const FIRST_BODY_HALF = '0123456789';

let gateway: TestGateway;
let origin: net.Server;
let certificateDir: string;
/** Every origin connection: whether it closed, and the request lines it carried. */
const originConnections: Array<{ closed: boolean; requests: string[] }> = [];
/** Sends what the origin holds back of the answers it began or did not give. */
const heldBack: Array<() => void> = [];
const releaseHeldBack = () => {
  for (const release of heldBack.splice(0)) release();
};

beforeAll(async () => {
  // Sends the head and the first half of a 20-byte body, then holds the rest back.
  origin = net.createServer((socket) => {
    const connection = { closed: false, requests: [] as string[] };
    originConnections.push(connection);
    socket.on('close', () => {
      connection.closed = true;
    });
    socket.on('error', () => {});
    socket.on('data', (request: Buffer) => {
      connection.requests.push(request.toString('latin1').split('\r\n')[0]!);
    });
    // Each request (an origin connection is reused once its answer went out whole).
    socket.on('data', (request: Buffer) => {
      if (!request.toString('latin1').startsWith('GET /')) return;
      if (request.toString('latin1').startsWith('GET /unanswered')) {
        heldBack.push(() => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nanswered'));
        return;
      }
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n${FIRST_BODY_HALF}`);
      heldBack.push(() => socket.write(FIRST_BODY_HALF));
    });
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const certificate = await selfSignedTestCertificate({ dnsNames: ['*.localhost', 'localhost'] });
  certificateDir = await mkdtemp(path.join(tmpdir(), 'gateway-client-errors-'));
  await writeFile(path.join(certificateDir, 'cert.pem'), certificate.chainPem);
  await writeFile(path.join(certificateDir, 'key.pem'), certificate.privateKeyPem);
  gateway = await startTestGateway({
    GATEWAY_TLS_PORT: '0',
    GATEWAY_TLS_CERT_FILE: path.join(certificateDir, 'cert.pem'),
    GATEWAY_TLS_KEY_FILE: path.join(certificateDir, 'key.pem'),
  });
  gateway.store.apply(
    catchAllTenant('answers', `http://127.0.0.1:${(origin.address() as net.AddressInfo).port}`),
  );
});

afterAll(async () => {
  await gateway?.close();
  await new Promise<void>((resolve) => origin.close(() => resolve()));
  if (certificateDir) await rm(certificateDir, { recursive: true, force: true });
});

const port = (kind: 'tls' | 'plain') =>
  kind === 'tls' ? gateway.gateway.tlsPort! : gateway.gateway.trafficPort;

async function until(condition: () => boolean, what: string): Promise<void> {
  await within(
    (async () => {
      while (!condition()) await pause(10);
    })(),
    10_000,
    what,
  );
}

describe('a request the parser refuses, pipelined behind a response under way', () => {
  const malformed = 'NOT HTTP AT ALL\r\n\r\n';
  const oversized = `GET /next HTTP/1.1\r\nHost: ${HOST}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`;
  it.each([
    ['plain', 'a malformed request', malformed],
    ['plain', 'a request head over GATEWAY_MAX_HEADER_BYTES', oversized],
    ['tls', 'a malformed request', malformed],
    ['tls', 'a request head over GATEWAY_MAX_HEADER_BYTES', oversized],
  ] as const)(
    '%s listener, %s: no error bytes go into the first response; it goes out whole, then the refusal',
    async (kind, _what, second) => {
      const client = await connectRaw(kind, port(kind), HOST);
      client.socket.write(`GET /download HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
      await until(() => client.received().endsWith(FIRST_BODY_HALF), 'the first half of the body');
      client.socket.write(second);
      // Time for an answer written at once to arrive: none is, while the first response is under way.
      await pause(200);
      expect(client.received().split('\r\n\r\n')[1]).toBe(FIRST_BODY_HALF);
      releaseHeldBack();
      await within(client.closed, 10_000, 'the connection closed');

      const { responses, unread } = readResponses(client.received(), ['GET', 'GET']);
      expect(unread).toBe('');
      expect(responses.map((response) => response.status)).toEqual([200, second === malformed ? 400 : 431]);
      expect(responses[0]?.body).toBe(FIRST_BODY_HALF + FIRST_BODY_HALF);
    },
  );

  it.each(['plain', 'tls'] as const)(
    '%s listener, behind a request the origin has not answered yet: that answer first, then the 400',
    async (kind) => {
      const requestLine = `GET /unanswered-${kind} HTTP/1.1`;
      const carrying = () => originConnections.find((c) => c.requests.includes(requestLine));
      const client = await connectRaw(kind, port(kind), HOST);
      client.socket.write(`${requestLine}\r\nHost: ${HOST}\r\n\r\n`);
      await until(() => carrying() !== undefined, 'the first request at the origin');
      client.socket.write('NOT HTTP AT ALL\r\n\r\n');
      // Time for an answer written at once to arrive: none is, before the first request's own.
      await pause(200);
      expect(client.received()).toBe('');
      releaseHeldBack();
      await within(client.closed, 10_000, 'the connection closed');

      const { responses, unread } = readResponses(client.received(), ['GET', 'GET']);
      expect(unread).toBe('');
      expect(responses.map((response) => response.status)).toEqual([200, 400]);
      expect(responses[0]?.body).toBe('answered');
      expect(responses[1]?.body).toContain('"code":"malformed_request"');
    },
  );

  it.each(['plain', 'tls'] as const)(
    '%s listener, with no response under way: the refused request is still answered 400 before the close',
    async (kind) => {
      const client = await connectRaw(kind, port(kind), HOST);
      client.socket.write('NOT HTTP AT ALL\r\n\r\n');
      await within(client.closed, 10_000, 'the connection closed');
      expect(client.received().startsWith('HTTP/1.1 400 Bad Request\r\n')).toBe(true);
    },
  );
});

describe('a request the parser refuses, with nothing under way', () => {
  it.each([
    ['not HTTP at all', 'NOT HTTP AT ALL\r\n\r\n'],
    [
      'conflicting Content-Length lines',
      `POST /x HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd`,
    ],
    ['a folded header line', `GET /x HTTP/1.1\r\nHost: ${HOST}\r\nX-Folded: first\r\n second\r\n\r\n`],
    ['a byte outside ASCII in the target', `GET /\u00e9 HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`],
    ['an unknown HTTP version', `GET /x HTTP/1.9\r\nHost: ${HOST}\r\n\r\n`],
  ])('%s: answered 400 with the error code malformed_request', async (_what, request) => {
    const client = await connectRaw('plain', port('plain'), HOST);
    client.socket.write(Buffer.from(request, 'latin1'));
    await within(client.closed, 10_000, 'the connection closed');
    const [head = '', body = ''] = client.received().split('\r\n\r\n');
    expect(head.startsWith('HTTP/1.1 400 Bad Request\r\n')).toBe(true);
    expect(JSON.parse(body)).toMatchObject({ error: { code: 'malformed_request' } });
  });
});

describe('an HTTP/1.1 request without a Host line', () => {
  it.each(['plain', 'tls'] as const)(
    '%s listener: answered 400 with the error code invalid_host',
    async (kind) => {
      const client = await connectRaw(kind, port(kind), HOST);
      client.socket.write('GET /no-host HTTP/1.1\r\nConnection: close\r\n\r\n');
      await within(client.closed, 10_000, 'the connection closed');
      const [head = '', body = ''] = client.received().split('\r\n\r\n');
      expect(head.startsWith('HTTP/1.1 400 Bad Request\r\n')).toBe(true);
      expect(JSON.parse(body)).toMatchObject({ error: { code: 'invalid_host' } });
    },
  );
});
