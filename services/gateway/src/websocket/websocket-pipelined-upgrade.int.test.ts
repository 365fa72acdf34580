import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { selfSignedTestCertificate } from '@vantageedge/shared/testing/test-certificates';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { connectRaw } from '../testing/raw-connections.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * A WebSocket upgrade pipelined behind another request on one HTTP/1.1 connection (one write: a request,
 * then the upgrade). node hands over the connection for the upgrade while the earlier request's response
 * is still on it. Regression: the upgrade's answer was then given a connection that already had a
 * response, node threw (ERR_HTTP_SOCKET_ASSIGNED) outside any request, and a replica exits on an uncaught
 * exception: one such write from anyone, to any host, stopped a replica. Answers go out in the order of
 * the requests: the earlier response whole, then the upgrade's.
 */
const HOST = 'pipelined-upgrade.localhost';

let origin: Server;
/** Node's process warnings while the tests ran (the gateway runs in this process). */
const warnings: string[] = [];
const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);

let gateway: TestGateway;
let dir: string;
/** Upgrade requests the origin received. */
const upgrades: string[] = [];

beforeAll(async () => {
  process.on('warning', onWarning);
  origin = createServer((req, res) => {
    // Still in flight when the upgrade behind it arrives.
    setTimeout(() => res.end(`answer to ${req.url}`), 100);
  });
  origin.on('upgrade', (req, socket: Socket) => {
    upgrades.push(req.url ?? '');
    socket.on('error', () => {});
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n',
    );
    socket.pipe(socket); // echoes what the client sends
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  dir = await mkdtemp(path.join(tmpdir(), 'gateway-pipelined-upgrade-'));
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
      subdomain: 'pipelined-upgrade',
      origins: [{ id: originId, targets: [`http://127.0.0.1:${(origin.address() as AddressInfo).port}`] }],
      routes: [{ origin_id: originId, path_pattern: '/ws/*' }],
    }),
  );
});

afterAll(async () => {
  process.off('warning', onWarning);
  await gateway?.close();
  origin?.closeAllConnections();
  await new Promise((resolve) => origin?.close(resolve));
  if (dir) await rm(dir, { recursive: true, force: true });
});

function port(kind: 'plain' | 'tls'): number {
  return kind === 'tls' ? gateway.gateway.tlsPort! : gateway.gateway.trafficPort;
}

const upgrade = (path: string) =>
  `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
  'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';

describe('a WebSocket upgrade pipelined behind a request', () => {
  it.each([
    ['plain', 'proxied to the origin', '/ws/first', 'HTTP/1.1 200 OK', 'answer to /ws/first'],
    [
      'plain',
      'the gateway answers (no route)',
      '/elsewhere',
      'HTTP/1.1 404 Not Found',
      '"code":"route_not_found"',
    ],
    ['tls', 'proxied to the origin', '/ws/first-tls', 'HTTP/1.1 200 OK', 'answer to /ws/first-tls'],
    [
      'tls',
      'the gateway answers (no route)',
      '/elsewhere',
      'HTTP/1.1 404 Not Found',
      '"code":"route_not_found"',
    ],
  ] as const)(
    '%s, behind a request %s: that response whole, then the 101, and the WebSocket carries bytes',
    async (kind, _what, firstPath, firstStatusLine, firstBody) => {
      const client = await connectRaw(kind, port(kind));
      client.socket.write(`GET ${firstPath} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n${upgrade('/ws/chat')}`);
      await eventually(
        'the upgrade is switched',
        () => client.received().includes('101 Switching Protocols'),
        10_000,
      );
      const received = client.received();
      expect(received.startsWith(`${firstStatusLine}\r\n`)).toBe(true);
      const switchedAt = received.indexOf('HTTP/1.1 101 Switching Protocols\r\n');
      expect(received.indexOf(firstBody)).toBeGreaterThan(0);
      expect(received.indexOf(firstBody)).toBeLessThan(switchedAt);

      client.socket.write('ping');
      await eventually('the origin echoed through the gateway', () => client.received().endsWith('ping'));
      client.socket.destroy();
      // The replica serves on.
      expect((await send(gateway, HOST, '/ws/after')).status).toBe(200);
      // Nor did the connection make it write a warning (a client could otherwise have it write one per
      // connection): the gateway's own watchers of a connection are more than node's leak heuristic counts.
      expect(warnings).toEqual([]);
    },
  );

  it('behind a request that closes its connection: that response whole, the upgrade never reaches the origin', async () => {
    const client = await connectRaw('plain', port('plain'));
    client.socket.write(
      `GET /ws/last HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n${upgrade('/ws/behind-close')}`,
    );
    await client.closed;
    expect(client.received().startsWith('HTTP/1.1 200 OK\r\n')).toBe(true);
    expect(client.received().endsWith('answer to /ws/last')).toBe(true);
    expect(upgrades).not.toContain('/ws/behind-close');
  });
});
