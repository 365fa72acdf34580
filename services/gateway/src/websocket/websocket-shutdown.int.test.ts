import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { selfSignedTestCertificate } from '@vantageedge/shared/testing/test-certificates';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { startWebSocketOrigin } from '../testing/websocket-origins.js';

/**
 * A stop is bounded by the shutdown timeout whatever an origin does with a WebSocket upgrade: one that
 * never answers, or one that switches protocols only once the stop has begun. Upgraded sockets are out of
 * node's reach (closeAllConnections), so the gateway must end them itself.
 */
const STOP_TIMEOUT_MS = 300;

let gateway: TestGateway | undefined;
let origin: { server: Server; sockets: Socket[] } | undefined;

afterEach(async () => {
  for (const socket of origin?.sockets ?? []) socket.destroy();
  await new Promise<void>((resolve) => (origin ? origin.server.close(() => resolve()) : resolve()));
  await gateway?.close();
  gateway = undefined;
  origin = undefined;
});

/** A TCP origin that reads the upgrade request and leaves its answer to the test. */
async function startSilentOrigin(): Promise<{
  server: Server;
  sockets: Socket[];
  url: string;
  request: Promise<Socket>;
}> {
  const sockets: Socket[] = [];
  let received!: (socket: Socket) => void;
  const request = new Promise<Socket>((resolve) => (received = resolve));
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.once('data', () => received(socket));
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { server, sockets, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, request };
}

/** An upgrade through the gateway; resolves when the client's socket closes (the gateway let it go). */
function upgradeUntilClosed(port: number): Promise<void> {
  return new Promise((resolve) => {
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      path: '/live',
      headers: {
        host: 'ws.localhost',
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
      },
    });
    req.once('upgrade', (_res, socket) => {
      socket.on('error', () => {});
      socket.once('close', () => resolve());
      socket.resume();
    });
    req.once('response', (res) => {
      res.resume();
      res.once('close', () => resolve());
    });
    req.once('error', () => resolve());
    req.end();
  });
}

async function gatewayBefore(originUrl: string): Promise<TestGateway> {
  const started = await startTestGateway({ GATEWAY_WEBSOCKET_IDLE_TIMEOUT_SECONDS: '0' });
  const originId = randomUUID();
  started.store.apply(
    buildSnapshot({
      subdomain: 'ws',
      origins: [{ id: originId, targets: [originUrl] }],
      routes: [{ origin_id: originId, path_pattern: '/*' }],
    }),
  );
  return started;
}

/** Resolves with how long `promise` took, or with Infinity after `limitMs`. */
async function timed(promise: Promise<unknown>, limitMs: number): Promise<number> {
  const startedAt = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const tooLong = new Promise<number>((resolve) => {
    timer = setTimeout(() => resolve(Number.POSITIVE_INFINITY), limitMs);
  });
  try {
    return await Promise.race([promise.then(() => Date.now() - startedAt), tooLong]);
  } finally {
    clearTimeout(timer);
  }
}

describe('gateway stop with WebSocket upgrades in flight', () => {
  it('does not wait past the shutdown timeout for an origin that never answers an upgrade', async () => {
    const silent = await startSilentOrigin();
    origin = silent;
    gateway = await gatewayBefore(silent.url);
    const clientClosed = upgradeUntilClosed(gateway.gateway.trafficPort);
    await silent.request;
    // Without a bound the stop lasts as long as the origin's answer timeout (30 s by default).
    const took = await timed(gateway.gateway.close({ timeoutMs: STOP_TIMEOUT_MS }), 5_000);
    expect(took).toBeLessThan(5_000);
    expect(await timed(clientClosed, 1_000)).toBeLessThan(1_000);
  });

  it('does not leave open a WebSocket its origin switched once the stop had begun', async () => {
    const late = await startSilentOrigin();
    origin = late;
    gateway = await gatewayBefore(late.url);
    const clientClosed = upgradeUntilClosed(gateway.gateway.trafficPort);
    const originSocket = await late.request;
    const stopping = gateway.gateway.close({ timeoutMs: STOP_TIMEOUT_MS });
    await new Promise((resolve) => setTimeout(resolve, 50));
    originSocket.write(
      'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n',
    );
    const took = await timed(stopping, 5_000);
    expect(took).toBeLessThan(5_000);
    expect(await timed(clientClosed, 1_000)).toBeLessThan(1_000);
  });
});

describe('gateway drain with open WebSockets over TLS', () => {
  it('keeps a wss:// connection open through the drain period and closes it with 1001 at the stop', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'gateway-ws-drain-'));
    const echo = await startWebSocketOrigin({ hello: false });
    try {
      const cert = await selfSignedTestCertificate({ dnsNames: ['*.localhost'] });
      await writeFile(path.join(dir, 'cert.pem'), cert.chainPem);
      await writeFile(path.join(dir, 'key.pem'), cert.privateKeyPem);
      gateway = await startTestGateway({
        GATEWAY_TLS_PORT: '0',
        GATEWAY_TLS_CERT_FILE: path.join(dir, 'cert.pem'),
        GATEWAY_TLS_KEY_FILE: path.join(dir, 'key.pem'),
      });
      const originId = randomUUID();
      gateway.store.apply(
        buildSnapshot({
          subdomain: 'ws',
          origins: [{ id: originId, targets: [echo.url] }],
          routes: [{ origin_id: originId, path_pattern: '/*' }],
        }),
      );
      const socket = new WebSocket(`wss://127.0.0.1:${gateway.gateway.tlsPort}/live`, {
        headers: { host: 'ws.localhost' },
        rejectUnauthorized: false,
      });
      await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
      const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
      gateway.gateway.startDraining();
      await new Promise((resolve) => setTimeout(resolve, 200));
      // Still served while the load balancer moves traffic away (the drain period).
      expect(socket.readyState).toBe(WebSocket.OPEN);
      const echoed = new Promise<string>((resolve) =>
        socket.once('message', (data) => resolve(String(data))),
      );
      socket.send('still here');
      expect(await timed(echoed, 1_000)).toBeLessThan(1_000);
      await gateway.gateway.close({ timeoutMs: STOP_TIMEOUT_MS });
      expect(await closed).toBe(1001);
    } finally {
      await echo.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
