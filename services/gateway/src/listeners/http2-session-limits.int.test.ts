import { randomUUID } from 'node:crypto';
import type { ClientHttp2Session } from 'node:http2';
import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { connectRaw, within } from '../testing/raw-connections.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * An HTTP/2 session is held to the limits of an HTTP/1.1 connection (here over h2c; the TLS listener's
 * sessions share the code): GATEWAY_REQUEST_TIMEOUT_MS per stream and GATEWAY_MAX_REQUESTS_PER_CONNECTION
 * per session. Regression tests: before, 50 streams whose bodies never came stayed open for as long as
 * the client sent PINGs (which keep a session from going idle), and a session served any number of
 * requests.
 */
const HOST = 'h2limits.localhost';
const REQUEST_TIMEOUT_MS = 1_000;
const MAX_REQUESTS = 3;

let origin: TestOrigin;
let gateway: TestGateway;
const sessions: ClientHttp2Session[] = [];

function connect(): ClientHttp2Session {
  const session = http2Connect(gateway.url);
  sessions.push(session);
  return session;
}

beforeAll(async () => {
  origin = await startTestOrigin('h2-limits-origin');
  gateway = await startTestGateway({
    GATEWAY_H2C: 'true',
    GATEWAY_HEADERS_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    GATEWAY_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    GATEWAY_MAX_REQUESTS_PER_CONNECTION: String(MAX_REQUESTS),
  });
  const originId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'h2limits',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [{ origin_id: originId, path_pattern: '/*' }],
    }),
  );
});

afterAll(async () => {
  for (const session of sessions) session.destroy();
  await gateway?.close();
  await origin?.close();
});

describe('HTTP/2 session limits', () => {
  it('regression: a stream whose body does not all arrive in GATEWAY_REQUEST_TIMEOUT_MS is answered 408 and reset, PINGs or not', async () => {
    const session = connect();
    const ping = setInterval(() => {
      if (!session.destroyed) session.ping(() => {});
    }, 200);
    try {
      const started = Date.now();
      const stream = session.request(
        { ':method': 'POST', ':path': '/upload', ':authority': HOST, 'content-type': 'text/plain' },
        { endStream: false },
      );
      stream.on('error', () => {});
      stream.write('the first part of a body that never ends');
      let body = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        body += chunk;
      });
      const status = await new Promise<number>((resolve) =>
        stream.once('response', (headers) => resolve(Number(headers[':status']))),
      );
      await new Promise<void>((resolve) => stream.once('close', () => resolve()));
      expect(status).toBe(408);
      expect(JSON.parse(body)).toEqual({
        error: { code: 'request_timeout', message: 'the request was not received in time' },
      });
      expect(Date.now() - started).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
      // The session goes on: the next request on it is served.
      expect((await http2Request(session, { path: '/after', authority: HOST })).status).toBe(200);
    } finally {
      clearInterval(ping);
    }
  });

  it('regression: the access-log line of a stream answered 408 has that answer, and its body in bytes_sent', async () => {
    const session = connect();
    const requestId = randomUUID();
    const part = 'a body that stops here';
    const stream = session.request(
      {
        ':method': 'POST',
        ':path': '/slow-upload',
        ':authority': HOST,
        'content-type': 'text/plain',
        'x-request-id': requestId,
      },
      { endStream: false },
    );
    stream.on('error', () => {});
    stream.write(part);
    let body = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      body += chunk;
    });
    await new Promise<void>((resolve) => stream.once('close', () => resolve()));
    const line = await vi.waitFor(
      () => {
        const found = gateway.logLines.find(
          (entry) => entry['kind'] === 'access' && entry['request_id'] === requestId,
        );
        if (found === undefined) throw new Error('no access-log line yet');
        return found;
      },
      { timeout: 5_000 },
    );
    expect(JSON.parse(body)).toMatchObject({ error: { code: 'request_timeout' } });
    expect(line).toMatchObject({
      status: 408,
      error_code: 'request_timeout',
      bytes_received: Buffer.byteLength(part),
      bytes_sent: Buffer.byteLength(body),
    });
  });

  it('regression: a session is sent GOAWAY after GATEWAY_MAX_REQUESTS_PER_CONNECTION streams; those are served', async () => {
    const session = connect();
    const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()));
    for (let i = 0; i < MAX_REQUESTS; i++)
      expect((await http2Request(session, { path: `/budget/${i}`, authority: HOST })).status).toBe(200);
    await goaway;
    await expect(http2Request(session, { path: '/budget/over', authority: HOST })).rejects.toThrow();
    // A new session is served as usual.
    expect((await http2Request(connect(), { path: '/budget/next', authority: HOST })).status).toBe(200);
  });

  // Regression test: with h2c on, the plain port waited 30 s (and each trickled byte of the preface
  // started the wait again) for the bytes that choose the protocol, whatever the headers timeout.
  it('regression: a cleartext connection that sends nothing, or trickles the preface, is cut at the headers timeout', async () => {
    const port = Number(new URL(gateway.url).port);
    const silent = await connectRaw('plain', port);
    const trickler = await connectRaw('plain', port);
    const preface = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
    let sent = 0;
    const drip = setInterval(() => {
      if (sent < preface.length && !trickler.socket.destroyed) trickler.socket.write(preface[sent++]!);
    }, REQUEST_TIMEOUT_MS / 4);
    try {
      await within(Promise.all([silent.closed, trickler.closed]), 4 * REQUEST_TIMEOUT_MS, 'both cut');
    } finally {
      clearInterval(drip);
      silent.socket.destroy();
      trickler.socket.destroy();
    }
  });
});
