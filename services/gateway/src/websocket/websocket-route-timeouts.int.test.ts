import { randomUUID } from 'node:crypto';
import net from 'node:net';
import {
  type StalledConnectTarget,
  startStalledConnectTarget,
} from '@vantageedge/shared/testing/stalled-connect-target';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { within } from '../testing/raw-connections.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { sendUpgrade } from '../testing/upgrade-request.js';

/**
 * Regression tests: a route's `timeouts` override its origin's `timeout_seconds` for the route, but a
 * WebSocket upgrade on it waited the origin's: a route with `connect_ms: 200` to a target dropping SYNs
 * held the client (and its tenant's WebSocket slot) for the origin's connect timeout (10 s), and one with
 * `response_headers_ms: 300` for the origin's whole `timeout_seconds` when the origin never answered.
 */
const HOST = 'wstimeouts.localhost';
/** Far below what the origins allow (a 10 s connect, a 30 s answer), far above the routes' timeouts. */
const ROUTE_TIMEOUT_BOUND_MS = 4_000;

let gateway: TestGateway;
let stalled: StalledConnectTarget;
let silent: net.Server;
const silentSockets = new Set<net.Socket>();

beforeAll(async () => {
  stalled = await startStalledConnectTarget();
  // Accepts the connection and reads the upgrade, never answers it.
  silent = net.createServer((socket) => {
    silentSockets.add(socket);
    socket.on('error', () => {});
    socket.resume();
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  gateway = await startTestGateway();
  const steady = {
    timeout_seconds: 30,
    circuit_breaker: { enabled: false },
    health_check: { active: { enabled: false }, passive: { enabled: false } },
  };
  const unreachable = randomUUID();
  const unanswering = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'wstimeouts',
      origins: [
        { id: unreachable, targets: [stalled.url], ...steady },
        {
          id: unanswering,
          targets: [`http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`],
          ...steady,
        },
      ],
      routes: [
        { origin_id: unreachable, path_pattern: '/connect/*', timeouts: { connect_ms: 200 } },
        { origin_id: unanswering, path_pattern: '/answer/*', timeouts: { response_headers_ms: 300 } },
      ],
    }),
  );
});

afterAll(async () => {
  for (const socket of silentSockets) socket.destroy();
  await gateway?.close();
  await new Promise((resolve) => silent?.close(resolve));
  await stalled?.close();
});

describe('a WebSocket upgrade on a route with timeouts of its own', () => {
  it("is answered 504 upstream_timeout after the route's connect_ms, not the origin's connect timeout", async () => {
    const answer = await within(
      sendUpgrade(gateway, HOST, '/connect/ws'),
      ROUTE_TIMEOUT_BOUND_MS,
      'the answer',
    );
    expect(answer.status).toBe(504);
    expect(JSON.parse(answer.text)).toMatchObject({ error: { code: 'upstream_timeout' } });
  });

  it("is answered 504 upstream_timeout after the route's response_headers_ms, not the origin's timeout_seconds", async () => {
    const answer = await within(
      sendUpgrade(gateway, HOST, '/answer/ws'),
      ROUTE_TIMEOUT_BOUND_MS,
      'the answer',
    );
    expect(answer.status).toBe(504);
    expect(JSON.parse(answer.text)).toMatchObject({ error: { code: 'upstream_timeout' } });
  });
});
