import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connectRaw, type RawClient, within } from '@vantageedge/gateway/testing/raw-connections';
import { readResponses } from '@vantageedge/gateway/testing/raw-exchange';
import { buildSnapshot } from '@vantageedge/gateway/testing/snapshots';
import { selfSignedTestCertificate } from '@vantageedge/shared/testing/test-certificates';
import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  eventually,
  freePort,
  type HttpResponse,
  startOrigin,
  stopAllServices,
  type TestOrigin,
} from './harness.js';
import { type LoneGateway, startLoneGateway } from './lone-gateway.js';

/**
 * Regression tests for SIGTERM on a gateway replica, through real processes. Before: the admin listener
 * closed at once (a load balancer's /readyz probe saw a refused connection, not a 503), the traffic
 * listener stopped accepting at once, and a request that never finished kept the process alive until
 * the origin timed out. Now: /readyz answers 503 at once, the listener keeps accepting for
 * GATEWAY_DRAIN_SECONDS, requests in flight finish, and after GATEWAY_SHUTDOWN_TIMEOUT_SECONDS whatever
 * is left is closed and the process exits 0. And while it drains, the replica still serves what a load
 * balancer that has not noticed yet sends it, over every protocol: a keep-alive connection idle when the
 * drain began gets its next request answered with `Connection: close` (before: over TLS it was cut at
 * once, a request on its way met a closed connection), and a new HTTP/2 connection is served its
 * request, then told GOAWAY (before: every stream of it was refused, REFUSED_STREAM).
 */
const SUBDOMAIN = 'draining';

let origin: TestOrigin;
let draining: LoneGateway;
let deadline: LoneGateway;
/** Plain port with h2c and a TLS port (HTTP/1.1 and h2), each drained by its own test. */
let protocolGateways: { keepAlive: LoneGateway; http2: LoneGateway; tlsPort: (g: LoneGateway) => number };
let certificateDir: string;
const originReceived = new Map<string, () => void>();

function receivedByOrigin(path: string): Promise<void> {
  return new Promise((resolve) => originReceived.set(path, resolve));
}

function snapshotFor(originUrl: string) {
  const originId = randomUUID();
  return buildSnapshot({
    subdomain: SUBDOMAIN,
    origins: [{ id: originId, targets: [originUrl], timeout_seconds: 120 }],
    routes: [{ origin_id: originId, path_pattern: '/*' }],
  });
}

/** Sends one GET on a raw keep-alive connection and resolves with every response read on it so far. */
async function requestOn(client: RawClient, pathname: string, answers: number) {
  client.socket.write(`GET ${pathname} HTTP/1.1\r\nHost: ${SUBDOMAIN}.localhost\r\n\r\n`);
  const read = () => readResponses(client.received(), []).responses;
  await within(
    Promise.race([
      client.closed,
      eventually(`${answers} answers on the connection`, async () => read().length >= answers),
    ]),
    10_000,
    `the answer to ${pathname}`,
  ).catch(() => {});
  return read();
}

async function exitCode(gateway: LoneGateway, timeoutMs: number): Promise<number | null> {
  await eventually('the gateway process exits', async () => gateway.service.exited(), { timeoutMs });
  return gateway.service.child.exitCode;
}

beforeAll(async () => {
  origin = await startOrigin('shutdown-origin', (req, res) => {
    const url = req.url ?? '/';
    originReceived.get(url)?.();
    if (url.startsWith('/slow/')) {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`slow ${url}`);
      }, 3_000);
      return true;
    }
    if (url.startsWith('/hang/')) return true; // never answers
    return false;
  });
  certificateDir = await mkdtemp(path.join(tmpdir(), 'gateway-shutdown-'));
  const certificate = await selfSignedTestCertificate({ dnsNames: ['*.localhost'] });
  await writeFile(path.join(certificateDir, 'cert.pem'), certificate.chainPem);
  await writeFile(path.join(certificateDir, 'key.pem'), certificate.privateKeyPem);
  const tlsPorts = new Map<LoneGateway, number>();
  const withEdgeProtocols = async () => {
    const tlsPort = await freePort();
    const gateway = await startLoneGateway({
      snapshots: [snapshotFor(origin.url)],
      env: {
        GATEWAY_DRAIN_SECONDS: '4',
        GATEWAY_SHUTDOWN_TIMEOUT_SECONDS: '20',
        GATEWAY_H2C: 'true',
        GATEWAY_TLS_PORT: String(tlsPort),
        GATEWAY_TLS_CERT_FILE: path.join(certificateDir, 'cert.pem'),
        GATEWAY_TLS_KEY_FILE: path.join(certificateDir, 'key.pem'),
      },
    });
    tlsPorts.set(gateway, tlsPort);
    return gateway;
  };
  const [keepAlive, http2] = await Promise.all([withEdgeProtocols(), withEdgeProtocols()]);
  protocolGateways = { keepAlive, http2, tlsPort: (g) => tlsPorts.get(g) ?? 0 };
  [draining, deadline] = await Promise.all([
    startLoneGateway({
      snapshots: [snapshotFor(origin.url)],
      env: { GATEWAY_DRAIN_SECONDS: '2', GATEWAY_SHUTDOWN_TIMEOUT_SECONDS: '20' },
    }),
    startLoneGateway({
      snapshots: [snapshotFor(origin.url)],
      env: { GATEWAY_DRAIN_SECONDS: '0', GATEWAY_SHUTDOWN_TIMEOUT_SECONDS: '1' },
    }),
  ]);
}, 240_000);

afterAll(async () => {
  await Promise.all([
    draining?.close(),
    deadline?.close(),
    protocolGateways?.keepAlive.close(),
    protocolGateways?.http2.close(),
  ]);
  await origin?.close();
  await stopAllServices();
  if (certificateDir) await rm(certificateDir, { recursive: true, force: true });
}, 60_000);

// Each case stops a gateway process of its own and waits out its drain: they run side by side.
describe.concurrent('SIGTERM on a gateway replica', () => {
  it('answers 503 on /readyz at once, keeps accepting while draining, finishes requests in flight, exits 0', async () => {
    const slowPaths = ['/slow/a', '/slow/b', '/slow/c'];
    const arrived = Promise.all(slowPaths.map(receivedByOrigin));
    const inFlight = slowPaths.map((path) => draining.request(SUBDOMAIN, path, { timeoutMs: 30_000 }));
    await arrived;

    draining.service.child.kill('SIGTERM');
    await draining.service.waitForLine('"message":"stopping"', 10_000);
    const ready = await fetch(`${draining.adminUrl}/readyz`);
    expect(ready.status, draining.service.tail()).toBe(503);
    expect(await ready.json()).toEqual({ status: 'not_ready', reason: 'shutting down' });

    // Still accepting during the drain: a new client is served and told to reconnect elsewhere.
    const during = await draining.request(SUBDOMAIN, '/fast/during-drain', {
      agent: new http.Agent({ keepAlive: true }),
    });
    expect(during.status, draining.service.tail()).toBe(200);
    expect(during.headers.connection).toBe('close');

    const answers: HttpResponse[] = await Promise.all(inFlight);
    expect(answers.map((answer) => [answer.status, answer.body])).toEqual(
      slowPaths.map((path) => [200, `slow ${path}`]),
    );
    expect(await exitCode(draining, 30_000), draining.service.tail()).toBe(0);
  });

  it('closes what is still in flight at the shutdown timeout and exits 0', async () => {
    const arrived = receivedByOrigin('/hang/forever');
    const hung = deadline.request(SUBDOMAIN, '/hang/forever', { timeoutMs: 60_000 }).then(
      (response) => ({ outcome: 'answered' as const, status: response.status }),
      (error: Error) => ({ outcome: 'cut' as const, error: error.message }),
    );
    await arrived;

    deadline.service.child.kill('SIGTERM');
    // The origin would take 120 s to time out; the shutdown timeout is 1 s.
    expect(await exitCode(deadline, 20_000), deadline.service.tail()).toBe(0);
    expect((await hung).outcome).toBe('cut');
    expect(deadline.service.tail()).toContain(
      'shutdown timeout: closed connections with requests still in flight',
    );
  });

  it('while draining, a keep-alive connection idle when the drain began gets its next request answered with Connection: close', async () => {
    const gateway = protocolGateways.keepAlive;
    const plain = await connectRaw('plain', gateway.port);
    const secure = await connectRaw('tls', protocolGateways.tlsPort(gateway), `${SUBDOMAIN}.localhost`);
    for (const client of [plain, secure]) {
      const [first] = await requestOn(client, '/fast/before-drain', 1);
      expect(first?.status, gateway.service.tail()).toBe(200);
      expect(first?.headers.get('connection')).toEqual(['keep-alive']);
    }

    gateway.service.child.kill('SIGTERM');
    await gateway.service.waitForLine('"message":"draining', 10_000);
    const answered = await Promise.all(
      [plain, secure].map(async (client) => (await requestOn(client, '/fast/during-drain', 2))[1]),
    );
    expect(
      answered.map((answer) => [answer?.status, answer?.headers.get('connection')]),
      gateway.service.tail(),
    ).toEqual([
      [200, ['close']],
      [200, ['close']],
    ]);
    expect(await exitCode(gateway, 30_000), gateway.service.tail()).toBe(0);
  });

  it('while draining, a new HTTP/2 connection (h2c and TLS) is served its request, then told GOAWAY', async () => {
    const gateway = protocolGateways.http2;
    gateway.service.child.kill('SIGTERM');
    await gateway.service.waitForLine('"message":"draining', 10_000);

    const results = await Promise.all(
      [gateway.url, `https://127.0.0.1:${protocolGateways.tlsPort(gateway)}`].map(async (url) => {
        const session = http2Connect(url, { servername: `${SUBDOMAIN}.localhost` });
        const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()));
        try {
          const response = await http2Request(session, {
            path: '/fast/new-connection-during-drain',
            authority: `${SUBDOMAIN}.localhost`,
          });
          await within(goaway, 10_000, 'GOAWAY after the first request');
          return { status: response.status, goaway: true };
        } catch (error) {
          return { error: (error as Error).message };
        } finally {
          session.destroy();
        }
      }),
    );
    expect(results, gateway.service.tail()).toEqual([
      { status: 200, goaway: true },
      { status: 200, goaway: true },
    ]);
    expect(await exitCode(gateway, 30_000), gateway.service.tail()).toBe(0);
  });
});
