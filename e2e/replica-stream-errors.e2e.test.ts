import { randomUUID } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { buildSnapshot } from '@vantageedge/gateway/testing/snapshots';
import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from './harness.js';
import { type LoneGateway, startLoneGateway } from './lone-gateway.js';

/**
 * Streams a client or an origin can make fail on a real gateway process: every one of them must be
 * heard, since one stream error nobody listens for is an uncaught exception, and the replica, serving
 * every tenant, exits on it.
 */

/** undici's connections per origin target (upstream-set.ts): the 129th request waits for one. */
const TARGET_POOL_CONNECTIONS = 128;
const MAX_BODY_BYTES = 1024;

let gateway: LoneGateway;
/** Holds every request it gets, unanswered (until the file's tests are over). */
let holdingOrigin: http.Server;
const held = new Set<http.ServerResponse>();
let plainOrigin: http.Server;
const clients = new Set<net.Socket>();

const listen = async (server: http.Server): Promise<string> => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
};

beforeAll(async () => {
  holdingOrigin = http.createServer((req, res) => {
    req.resume();
    held.add(res);
    res.once('close', () => held.delete(res));
  });
  plainOrigin = http.createServer((req, res) => {
    req.resume();
    res.end('served');
  });
  const [holding, plain] = await Promise.all([listen(holdingOrigin), listen(plainOrigin)]);
  const holdingId = randomUUID();
  const plainId = randomUUID();
  const noHealthChecks = {
    circuit_breaker: { enabled: false },
    health_check: { active: { enabled: false }, passive: { enabled: false } },
  };
  gateway = await startLoneGateway({
    env: {
      GATEWAY_MAX_BODY_BYTES: String(MAX_BODY_BYTES),
      // One client (the test) takes every connection of the target.
      GATEWAY_UPSTREAM_CLIENT_SHARE: '0',
      GATEWAY_H2C: 'true',
    },
    snapshots: [
      buildSnapshot({
        subdomain: 'saturated',
        origins: [{ id: holdingId, targets: [holding], timeout_seconds: 60, ...noHealthChecks }],
        routes: [{ origin_id: holdingId, path_pattern: '/*' }],
      }),
      buildSnapshot({
        subdomain: 'bystander',
        origins: [{ id: plainId, targets: [plain], timeout_seconds: 10, ...noHealthChecks }],
        routes: [{ origin_id: plainId, path_pattern: '/*' }],
      }),
    ],
  });
}, 120_000);

afterAll(async () => {
  for (const socket of clients) socket.destroy();
  for (const res of held) res.destroy();
  await gateway?.close();
  holdingOrigin?.closeAllConnections();
  plainOrigin?.closeAllConnections();
  await Promise.all(
    [holdingOrigin, plainOrigin].map(
      (server) => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())),
    ),
  );
});

/**
 * The replica met an error nobody handled: it drains (the requests it holds may take their time) and
 * exits, every tenant's traffic with it.
 */
const replicaFailed = (): boolean =>
  gateway.service.exited() || gateway.service.output().includes('uncaught exception');

/** A raw connection to the gateway that writes `head` and collects whatever comes back. */
function rawClient(head: string): { socket: net.Socket; received: () => string } {
  const socket = net.connect(gateway.port, '127.0.0.1');
  clients.add(socket);
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  socket.on('error', () => {});
  socket.write(head);
  return { socket, received: () => received };
}

describe('a request body that fails while its request waits for a connection to the origin', () => {
  it('is answered 413 payload_too_large, the replica serving every tenant on', async () => {
    for (let i = 0; i < TARGET_POOL_CONNECTIONS; i++)
      rawClient(`GET /held/${i} HTTP/1.1\r\nHost: saturated.localhost\r\n\r\n`);
    await eventually(
      'every connection of the origin target holds a request',
      async () => held.size >= TARGET_POOL_CONNECTIONS,
      { timeoutMs: 30_000 },
    );
    // Past the body limit while it waits: a chunked body is counted as it streams to the origin.
    const waiting = rawClient(
      'POST /upload HTTP/1.1\r\nHost: saturated.localhost\r\nTransfer-Encoding: chunked\r\n\r\n',
    );
    waiting.socket.write(`${(2 * MAX_BODY_BYTES).toString(16)}\r\n${'x'.repeat(2 * MAX_BODY_BYTES)}\r\n`);
    await eventually(
      'an answer, the connection closed or the replica failing',
      async () => waiting.received().includes('\r\n\r\n') || waiting.socket.destroyed || replicaFailed(),
      { timeoutMs: 20_000 },
    );
    expect(replicaFailed(), gateway.service.tail()).toBe(false);
    expect(waiting.received()).toMatch(/^HTTP\/1\.1 413 /);
    expect(waiting.received()).toContain('"code":"payload_too_large"');
    // HTTP/2: a body without content-length is counted the same way.
    const session = http2Connect(gateway.url);
    try {
      const overHttp2 = await http2Request(session, {
        path: '/upload',
        authority: 'saturated.localhost',
        method: 'POST',
        body: 'x'.repeat(2 * MAX_BODY_BYTES),
        timeoutMs: 20_000,
      }).catch((error: unknown) => ({ status: 0, body: String(error) }));
      expect(replicaFailed(), gateway.service.tail()).toBe(false);
      expect(overHttp2.status, overHttp2.body).toBe(413);
      expect(overHttp2.body).toContain('"code":"payload_too_large"');
    } finally {
      session.close();
    }
    const bystander = await gateway.request('bystander', '/still-served');
    expect(bystander).toMatchObject({ status: 200, body: 'served' });
  }, 90_000);
});

/**
 * An upgrade pipelined behind a request the gateway refuses for its framing is never handled (the
 * connection closes once the refusal is out), but node has stopped listening for the connection's errors
 * as it handed it over for the upgrade. Regression: a client that reset such a connection as soon as it
 * sent it ended the replica (write ECONNRESET, uncaught).
 */
describe('a client resetting a connection whose upgrade follows a refused request', () => {
  const UPGRADE =
    'GET /chat HTTP/1.1\r\nHost: bystander.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
  // Each is answered 400 as the connection's last answer (a framing or a host in doubt).
  const REFUSED = [
    'GET /a HTTP/1.1\r\nHost: bystander.localhost\r\nTransfer-Encoding: gzip\r\n\r\n',
    'GET /a HTTP/1.0\r\nHost: bystander.localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'GET /a HTTP/1.1\r\nHost: bystander.localhost\r\nHost: saturated.localhost\r\n\r\n',
  ];
  const ROUNDS = 5;
  const CONNECTIONS = 200;

  it('leaves the replica serving every tenant', async () => {
    for (let round = 0; round < ROUNDS && !replicaFailed(); round++) {
      const sockets = await Promise.all(
        Array.from({ length: CONNECTIONS }, () => {
          const socket = net.connect(gateway.port, '127.0.0.1');
          socket.on('error', () => {});
          // Connected, or refused (a replica that is going away).
          return new Promise<net.Socket>((resolve) => {
            socket.once('connect', () => resolve(socket));
            socket.once('close', () => resolve(socket));
          });
        }),
      );
      // All sent, then all reset at once: many a refusal goes out (at the end of its turn) after its reset.
      await Promise.all(
        sockets.map(
          (socket, i) =>
            new Promise<void>((resolve) =>
              socket.write(`${REFUSED[i % REFUSED.length]}${UPGRADE}`, () => resolve()),
            ),
        ),
      );
      const closed = sockets.map(
        (socket) =>
          new Promise<void>((resolve) => (socket.closed ? resolve() : socket.once('close', () => resolve()))),
      );
      for (const socket of sockets) socket.resetAndDestroy();
      await Promise.all(closed);
    }
    const served = await gateway
      .request('bystander', '/after-resets')
      .catch((error: unknown) => `no answer: ${String(error)}`);
    expect(replicaFailed(), gateway.service.tail()).toBe(false);
    expect(served).toMatchObject({ status: 200, body: 'served' });
  }, 60_000);
});
