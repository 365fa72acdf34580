import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { type ClientHttp2Session, type ClientHttp2Stream, constants } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { selfSignedTestCertificate } from '@vantageedge/shared/testing/test-certificates';
import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { catchAllTenant, within } from '../testing/raw-connections.js';
import {
  connectRawHttp2,
  dataFrame,
  type HeaderFields,
  headersFrame,
  pingAckFrame,
  type RawHttp2Client,
} from '../testing/raw-http2.js';

/**
 * One stream's malformed request over HTTP/2 (RFC 9113 §8.1.1), on the TLS listener (ALPN h2) and on
 * h2c, is a stream error: that stream is reset with PROTOCOL_ERROR, a slow request in flight on the same
 * session is answered, and the session takes new streams. Connections in front of a gateway (a CDN, a
 * load balancer, a mesh) carry many users' requests: one user's bad request must not cut the others.
 * Regression: a request whose DATA went past its content-length ended the whole session (GOAWAY
 * INTERNAL_ERROR) and every stream in flight with it. Connection errors still end the session.
 */
const HOST = 'h2malformed.localhost';
/** How long the origin takes to answer /slow/*: the malformed streams are sent while it waits. */
const SLOW_MS = 400;
const PROTOCOL_ERROR = constants.NGHTTP2_PROTOCOL_ERROR;

interface SlowOrigin {
  url: string;
  /** Resolves once the origin has received a request for `url`. */
  received(url: string): Promise<void>;
  /** Every request whose body the origin received whole: url and bytes. */
  completed: Array<{ url: string; bytes: number }>;
  close(): Promise<void>;
}

async function startSlowOrigin(): Promise<SlowOrigin> {
  const completed: SlowOrigin['completed'] = [];
  const waiting = new Map<string, () => void>();
  const arrived = new Set<string>();
  const server: Server = createServer((req: IncomingMessage, res) => {
    const url = req.url ?? '';
    arrived.add(url);
    waiting.get(url)?.();
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    req.on('end', () => {
      completed.push({ url, bytes });
      const answer = () => res.end(`answer to ${url}`);
      if (url.startsWith('/slow/')) setTimeout(answer, SLOW_MS);
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    completed,
    received: (url) =>
      arrived.has(url) ? Promise.resolve() : new Promise((resolve) => waiting.set(url, resolve)),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

let dir: string;
let origin: SlowOrigin;
let gateway: TestGateway;
let tlsPort: number;
let plainPort: number;
const sessions: ClientHttp2Session[] = [];
const rawClients: RawHttp2Client[] = [];

beforeAll(async () => {
  const certificate = await selfSignedTestCertificate({ dnsNames: ['*.localhost', 'localhost'] });
  dir = await mkdtemp(path.join(tmpdir(), 'gateway-h2-malformed-'));
  await writeFile(path.join(dir, 'cert.pem'), certificate.chainPem);
  await writeFile(path.join(dir, 'key.pem'), certificate.privateKeyPem);
  origin = await startSlowOrigin();
  gateway = await startTestGateway({
    GATEWAY_TLS_PORT: '0',
    GATEWAY_TLS_CERT_FILE: path.join(dir, 'cert.pem'),
    GATEWAY_TLS_KEY_FILE: path.join(dir, 'key.pem'),
    GATEWAY_H2C: 'true',
    // The flood below is ended by the cap on invalid frames, not by the request budget.
    GATEWAY_MAX_REQUESTS_PER_CONNECTION: '0',
  });
  gateway.store.apply(catchAllTenant('h2malformed', origin.url));
  tlsPort = gateway.gateway.tlsPort as number;
  plainPort = Number(new URL(gateway.url).port);
});

afterAll(async () => {
  for (const session of sessions) session.destroy();
  for (const client of rawClients) client.destroy();
  await gateway?.close();
  await origin?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const LISTENERS = [
  { listener: 'TLS (ALPN h2)', kind: 'tls' as const, url: () => `https://127.0.0.1:${tlsPort}` },
  { listener: 'h2c', kind: 'plain' as const, url: () => `http://127.0.0.1:${plainPort}` },
];

function connect(url: string): ClientHttp2Session {
  const session = http2Connect(url, { servername: 'localhost' });
  sessions.push(session);
  return session;
}

async function connectRaw(kind: 'tls' | 'plain'): Promise<RawHttp2Client> {
  const client = await connectRawHttp2(kind, kind === 'tls' ? tlsPort : plainPort);
  rawClients.push(client);
  return client;
}

/** A request sent as node's client sends it (its body in the pieces given), and how its stream ended. */
function sendPieces(
  session: ClientHttp2Session,
  headers: Record<string, string>,
  pieces: string[],
): Promise<{ status: number | undefined; rstCode: number | undefined }> {
  const stream: ClientHttp2Stream = session.request({ ':authority': HOST, ...headers }, { endStream: false });
  stream.on('error', () => {});
  let status: number | undefined;
  stream.on('response', (received) => {
    status = Number(received[':status']);
  });
  stream.resume();
  for (const piece of pieces.slice(0, -1)) stream.write(piece);
  stream.end(pieces.at(-1));
  return new Promise((resolve) => stream.once('close', () => resolve({ status, rstCode: stream.rstCode })));
}

/** Resolves once `done()` holds (looked at every 20 ms); fails if it does not within 10 s. */
async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`not within 10 s: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const request = (
  method: string,
  pathname: string,
  scheme: string,
  extra: HeaderFields = [],
): HeaderFields => [
  [':method', method],
  [':scheme', scheme],
  [':authority', HOST],
  [':path', pathname],
  ...extra,
];

describe.each(LISTENERS)('malformed HTTP/2 requests on the $listener listener', ({ kind, url }) => {
  it('regression: a request whose DATA goes past its content-length is reset alone; the slow request beside it is answered, the session serves on', async () => {
    const session = connect(url());
    const slow = http2Request(session, { path: `/slow/${kind}`, authority: HOST });
    await origin.received(`/slow/${kind}`);

    const outcomes = await Promise.all([
      sendPieces(session, { ':method': 'POST', ':path': '/bad/longer', 'content-length': '3' }, [
        '0123456789',
      ]),
      sendPieces(session, { ':method': 'POST', ':path': '/bad/pieces', 'content-length': '5' }, [
        'abc',
        'def',
      ]),
      sendPieces(session, { ':method': 'GET', ':path': '/bad/get', 'content-length': '2' }, ['abc']),
    ]);

    expect(outcomes).toEqual([
      { status: undefined, rstCode: PROTOCOL_ERROR },
      { status: undefined, rstCode: PROTOCOL_ERROR },
      { status: undefined, rstCode: PROTOCOL_ERROR },
    ]);
    const answered = await slow;
    expect(answered.status).toBe(200);
    expect(answered.body).toBe(`answer to /slow/${kind}`);
    expect(session.closed || session.destroyed).toBe(false);
    const after = await http2Request(session, { path: `/after/${kind}`, authority: HOST });
    expect(after.body).toBe(`answer to /after/${kind}`);
    // No malformed body reached the origin as a whole request.
    expect(origin.completed.filter((entry) => entry.url.startsWith('/bad/'))).toEqual([]);
  });

  it('malformed header blocks and trailers are reset alone, beside a slow request', async () => {
    const scheme = kind === 'tls' ? 'https' : 'http';
    const client = await connectRaw(kind);
    const slowPath = `/slow/raw-${kind}`;
    client.send(headersFrame(1, request('GET', slowPath, scheme), true));
    await origin.received(slowPath);

    const malformed: Record<string, (id: number) => Buffer[]> = {
      'DATA past content-length': (id) => [
        headersFrame(id, request('POST', '/bad/1', scheme, [['content-length', '3']]), false),
        dataFrame(id, '0123456789', true),
      ],
      'DATA short of content-length': (id) => [
        headersFrame(id, request('POST', '/bad/2', scheme, [['content-length', '30']]), false),
        dataFrame(id, '0123', true),
      ],
      'an uppercase field name': (id) => [
        headersFrame(id, request('GET', '/bad/3', scheme, [['X-Upper', 'v']]), true),
      ],
      'connection: keep-alive': (id) => [
        headersFrame(id, request('GET', '/bad/4', scheme, [['connection', 'keep-alive']]), true),
      ],
      'transfer-encoding: chunked': (id) => [
        headersFrame(id, request('POST', '/bad/5', scheme, [['transfer-encoding', 'chunked']]), false),
        dataFrame(id, 'abc', true),
      ],
      'te: gzip': (id) => [headersFrame(id, request('GET', '/bad/6', scheme, [['te', 'gzip']]), true)],
      'a pseudo-header after a regular field': (id) => [
        headersFrame(
          id,
          [
            [':method', 'GET'],
            [':scheme', scheme],
            ['x-first', 'regular'],
            [':authority', HOST],
            [':path', '/bad/7'],
          ],
          true,
        ),
      ],
      'two :path': (id) => [
        headersFrame(id, request('GET', '/bad/8', scheme, [[':path', '/bad/8-again']]), true),
      ],
      'an empty :path': (id) => [headersFrame(id, request('GET', '', scheme), true)],
      'two different content-length': (id) => [
        headersFrame(
          id,
          request('POST', '/bad/9', scheme, [
            ['content-length', '3'],
            ['content-length', '4'],
          ]),
          false,
        ),
        dataFrame(id, 'abc', true),
      ],
      'a pseudo-header in trailers': (id) => [
        headersFrame(id, request('POST', '/bad/10', scheme), false),
        dataFrame(id, 'abc', false),
        headersFrame(id, [[':path', '/trailer']], true),
      ],
    };
    // Each case on its own stream, all in one write.
    const streamOf = new Map(Object.keys(malformed).map((name, i) => [name, 3 + 2 * i]));
    client.send(...Object.entries(malformed).flatMap(([name, frames]) => frames(streamOf.get(name)!)));
    await until(() => client.answer(1).ended || client.isClosed(), 'the slow request answered');

    const outcomes = Object.fromEntries(
      [...streamOf].map(([name, id]) => {
        const { status, resetCode } = client.answer(id);
        if (status === 400) return [name, 'answered 400'];
        return [name, resetCode === PROTOCOL_ERROR ? 'reset' : { status, resetCode }];
      }),
    );
    expect(outcomes).toEqual(Object.fromEntries(Object.keys(malformed).map((name) => [name, 'reset'])));
    expect(client.answer(1)).toMatchObject({ status: 200, body: `answer to ${slowPath}`, ended: true });
    expect(client.goawayCode()).toBeUndefined();
    const next = 3 + 2 * streamOf.size;
    client.send(headersFrame(next, request('GET', `/after/raw-${kind}`, scheme), true));
    await until(() => client.answer(next).ended || client.isClosed(), 'the next request answered');
    expect(client.answer(next)).toMatchObject({ status: 200, body: `answer to /after/raw-${kind}` });
  });

  it('a connection error still ends the session, alone or behind a malformed request, as does an unsolicited PING ACK', async () => {
    const scheme = kind === 'tls' ? 'https' : 'http';
    // DATA on a stream never opened is a connection error (RFC 9113 §5.1): GOAWAY PROTOCOL_ERROR.
    const idle = await connectRaw(kind);
    idle.send(dataFrame(99, 'x', true));
    await within(idle.closed, 10_000, 'the session with DATA on an idle stream closed');
    expect(idle.goawayCode()).toBe(PROTOCOL_ERROR);

    const behind = await connectRaw(kind);
    behind.send(
      headersFrame(1, request('POST', '/bad/behind', scheme, [['content-length', '3']]), false),
      dataFrame(1, '0123456789', true),
      dataFrame(99, 'x', true),
    );
    await within(behind.closed, 10_000, 'the session with a connection error behind a stream error closed');
    expect(behind.goawayCode()).toBe(PROTOCOL_ERROR);

    const ping = await connectRaw(kind);
    ping.send(pingAckFrame());
    await within(ping.closed, 10_000, 'the session with an unsolicited PING ACK closed');
  });
});

describe('a client that keeps sending malformed requests', () => {
  it('has its session closed once it passes the cap on invalid frames (maxSessionInvalidFrames)', async () => {
    const client = await connectRaw('plain');
    let streamId = 1;
    // Past the cap of 1,000 invalid frames a session, in batches as a client would pipeline them.
    for (let batch = 0; batch < 60 && !client.isClosed(); batch++) {
      const frames: Buffer[] = [];
      for (let i = 0; i < 50; i++, streamId += 2) {
        frames.push(
          headersFrame(
            streamId,
            request('POST', `/flood/${streamId}`, 'http', [['content-length', '1']]),
            false,
          ),
          dataFrame(streamId, '0123', true),
        );
      }
      client.send(...frames);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await within(client.closed, 10_000, 'the flooding session closed');
    expect(client.goawayCode()).toBeDefined();
    expect((streamId - 1) / 2).toBeLessThan(3_000);
  });
});
