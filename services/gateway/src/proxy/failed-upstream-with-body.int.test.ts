import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * Regression test (found by the replica robustness property test): a request WITH a body whose upstream
 * exchange failed before any response — origin refused the connection, or answered with something that
 * is not HTTP/1.1 — got no answer at all. undici destroys the request body stream when an exchange fails,
 * and the proxy took that for "the client went away", so the client hung with its connection open.
 */
let gateway: TestGateway;
let garbageOrigin: net.Server;

beforeAll(async () => {
  garbageOrigin = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => socket.end('HTTP/2 200 OK\r\nContent-Length: 2\r\n\r\nhi'));
  });
  await new Promise<void>((resolve) => garbageOrigin.listen(0, '127.0.0.1', resolve));
  const closedPort = await new Promise<number>((resolve) => {
    const probe = net.createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
  gateway = await startTestGateway();
  const garbageId = randomUUID();
  const refusingId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'failing',
      origins: [
        { id: garbageId, targets: [`http://127.0.0.1:${(garbageOrigin.address() as net.AddressInfo).port}`] },
        { id: refusingId, targets: [`http://127.0.0.1:${closedPort}`] },
      ],
      routes: [
        { origin_id: garbageId, path_pattern: '/garbage/*' },
        { origin_id: refusingId, path_pattern: '/refusing/*' },
      ],
    }),
  );
});

afterAll(async () => {
  await gateway?.close();
  await new Promise<void>((resolve) => garbageOrigin.close(() => resolve()));
});

describe('a request with a body whose upstream exchange fails', () => {
  it.each([
    ['an origin that answers something other than HTTP/1.1', '/garbage/x', 502, 'upstream_error'],
    ['an origin that refuses the connection', '/refusing/x', 502, 'upstream_unreachable'],
  ])('%s: the client gets the error answer', async (_what, path, status, code) => {
    const answer = await Promise.race([
      send(gateway, 'failing.localhost', path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"hello":"world"}',
      }),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer within 10 s')), 10_000)),
    ]);
    expect(answer.status).toBe(status);
    expect((answer.json()['error'] as { code: string }).code).toBe(code);
  });
});
