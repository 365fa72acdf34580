import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { type ClientHttp2Session, connect } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { selfSignedTestCertificate } from '@vantageedge/shared/testing/test-certificates';
import { http2Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * GATEWAY_MAX_CONNECTIONS_PER_CLIENT bounds what one client address holds whichever HTTP version it
 * speaks: over HTTP/1.1 each connection carries one request at a time, so an HTTP/2 stream past the
 * first open on its session takes a slot of its address as a connection would (nginx's `limit_conn`
 * counts HTTP/2 streams as connections). Regression tests: before, each of an address's connections
 * could carry GATEWAY_HTTP2_MAX_CONCURRENT_STREAMS requests to the origins, 100 times what HTTP/1.1
 * allowed it (origin sockets, the tenant's upstream slots).
 */
const HOST = 'h2perclient.localhost';
const PER_CLIENT = 5;
const SESSIONS = PER_CLIENT;
const STREAMS_PER_SESSION = 10;

/** Answers /quick at once; every other request it keeps waiting until the test ends. */
interface WaitingOrigin {
  url: string;
  /** Requests received and not answered. */
  waiting: number;
  close(): Promise<void>;
}

async function startWaitingOrigin(): Promise<WaitingOrigin> {
  const origin = { waiting: 0 } as WaitingOrigin;
  const server: Server = createServer((req, res) => {
    if (req.url === '/quick') {
      res.end('quick');
      return;
    }
    origin.waiting++;
    req.socket.once('close', () => origin.waiting--);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(origin, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  });
}

interface StreamOutcome {
  status?: number;
  retryAfter?: string | undefined;
  body: string;
}

/** Opens `count` streams the origin keeps waiting; each outcome fills in when the gateway answers. */
function openWaitingStreams(session: ClientHttp2Session, count: number): StreamOutcome[] {
  return Array.from({ length: count }, (_, index) => {
    const outcome: StreamOutcome = { body: '' };
    const stream = session.request({ ':method': 'GET', ':path': `/wait/${index}`, ':authority': HOST });
    stream.on('error', () => {});
    stream.on('response', (headers) => {
      outcome.status = Number(headers[':status']);
      outcome.retryAfter = headers['retry-after'] as string | undefined;
    });
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      outcome.body += chunk;
    });
    return outcome;
  });
}

function openSession(origin: string, options: { localAddress?: string } = {}): Promise<ClientHttp2Session> {
  const session = connect(origin, { rejectUnauthorized: false, ...options });
  session.on('error', () => {});
  return new Promise((resolve, reject) => {
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

let origin: WaitingOrigin;
let dir: string;
let certFile: string;
let keyFile: string;

beforeAll(async () => {
  origin = await startWaitingOrigin();
  const certificate = await selfSignedTestCertificate({ dnsNames: ['*.localhost', 'localhost'] });
  dir = await mkdtemp(path.join(tmpdir(), 'gateway-h2-per-client-'));
  certFile = path.join(dir, 'cert.pem');
  keyFile = path.join(dir, 'key.pem');
  await writeFile(certFile, certificate.chainPem);
  await writeFile(keyFile, certificate.privateKeyPem);
});

afterAll(async () => {
  await origin?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function gatewayFor(): Promise<TestGateway> {
  const gateway = await startTestGateway({
    GATEWAY_H2C: 'true',
    GATEWAY_TLS_PORT: '0',
    GATEWAY_TLS_CERT_FILE: certFile,
    GATEWAY_TLS_KEY_FILE: keyFile,
    GATEWAY_MAX_CONNECTIONS_PER_CLIENT: String(PER_CLIENT),
    GATEWAY_MAX_UPSTREAM_REQUESTS_PER_TENANT: '1000',
  });
  const originId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      tenantId: randomUUID(),
      subdomain: 'h2perclient',
      origins: [{ id: originId, targets: [origin.url], timeout_seconds: 60 }],
      routes: [{ origin_id: originId, path_pattern: '/*' }],
    }),
  );
  return gateway;
}

describe.each([
  { listener: 'h2c', url: (gateway: TestGateway) => gateway.url },
  { listener: 'TLS h2', url: (gateway: TestGateway) => `https://127.0.0.1:${gateway.gateway.tlsPort}` },
])('HTTP/2 streams of one client address ($listener)', ({ url }) => {
  let gateway: TestGateway;
  const sessions: ClientHttp2Session[] = [];

  beforeAll(async () => {
    gateway = await gatewayFor();
  });

  afterAll(async () => {
    for (const session of sessions) session.destroy();
    await gateway?.close();
  });

  it('regression: an address holds no more requests at its origins over HTTP/2 than over HTTP/1.1; the streams past it are answered 429', async () => {
    const waitingBefore = origin.waiting;
    const hogs = await Promise.all(Array.from({ length: SESSIONS }, () => openSession(url(gateway))));
    sessions.push(...hogs);
    // Each session is served (it holds its connection's slot) before any waits.
    for (const session of hogs)
      expect((await http2Request(session, { path: '/quick', authority: HOST })).status).toBe(200);
    const outcomes = hogs.flatMap((session) => openWaitingStreams(session, STREAMS_PER_SESSION));
    const refused = () => outcomes.filter((outcome) => outcome.status === 429 && outcome.body !== '');
    // Every stream either reached the origin or was answered.
    await eventually(
      'each stream forwarded or refused',
      () => origin.waiting - waitingBefore + refused().length === outcomes.length,
      10_000,
    ).catch(() => undefined);
    expect(origin.waiting - waitingBefore).toBe(PER_CLIENT);
    expect(refused()).toHaveLength(outcomes.length - PER_CLIENT);
    expect(JSON.parse(refused()[0]?.body ?? '{}')).toEqual({
      error: {
        code: 'client_limit',
        message: `a client address may have at most ${PER_CLIENT} connections and HTTP/2 requests open at once`,
      },
    });

    expect(refused()[0]?.retryAfter).toBe('1');
    const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
    expect(metrics).toContain(
      `vantageedge_gateway_refused_client_requests_total ${outcomes.length - PER_CLIENT}`,
    );

    // Another address is served meanwhile.
    const other = await openSession(url(gateway), { localAddress: '127.0.0.2' });
    sessions.push(other);
    const served = await http2Request(other, { path: '/quick', authority: HOST });
    expect(served.status).toBe(200);

    // Once its requests end, the address is served again.
    for (const session of sessions) session.destroy();
    await eventually('the origin requests ended', () => origin.waiting === waitingBefore, 10_000);
    const again = await openSession(url(gateway));
    sessions.push(again);
    const answers = await Promise.all(
      Array.from({ length: PER_CLIENT }, () => http2Request(again, { path: '/quick', authority: HOST })),
    );
    expect(answers.map((answer) => answer.status)).toEqual(Array(PER_CLIENT).fill(200));
  });
});
