import { randomUUID } from 'node:crypto';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { catchAllTenant, pause, within } from '../testing/raw-connections.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { startWebSocketOrigin, type WebSocketOrigin } from '../testing/websocket-origins.js';

/**
 * GATEWAY_MAX_WEBSOCKETS_PER_TENANT as tenants see it. Regression test: nothing bounded one tenant's
 * open WebSockets on a replica, so a tenant whose clients came from many addresses (each under
 * GATEWAY_MAX_CONNECTIONS_PER_CLIENT) held every GATEWAY_MAX_CONNECTIONS slot with WebSockets to its own
 * origin, and every other tenant's clients were refused. The count goes back down however the
 * connection ends (so the tenant always gets its whole limit back), and an upgrade the origin never
 * answers ends at the origin's timeout.
 */
const HOG = 'hog.localhost';
const OTHER = 'other.localhost';

/** A `ws` echo origin that refuses `/refuse` (403) and never answers `…/hang`. */
function startEcho(): Promise<WebSocketOrigin> {
  return startWebSocketOrigin({
    refuse: (path) => {
      if (path.endsWith('/hang')) return 'hang';
      return path === '/refuse' ? 403 : undefined;
    },
  });
}

type Attempt = { socket: WebSocket } | { status: number; headers: Record<string, unknown>; body: string };

/** A WebSocket through the gateway from `localAddress`: open (hello received) or refused with an answer. */
function openWebSocket(
  gateway: TestGateway,
  host: string,
  path = '/ws',
  localAddress = '127.0.0.1',
): Promise<Attempt> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${gateway.gateway.trafficPort}${path}`, {
      headers: { host },
      localAddress,
    });
    socket.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    socket.once('error', reject);
    socket.once('message', () => resolve({ socket }));
  });
}

const opened = (attempts: Attempt[]) =>
  attempts.flatMap((attempt) => ('socket' in attempt ? [attempt.socket] : []));

/** A plain request through the gateway from `localAddress`: its status, or the error that ended it. */
function plainRequest(gateway: TestGateway, host: string, localAddress: string): Promise<number | string> {
  return new Promise((resolve) => {
    const request = httpRequest(
      {
        host: '127.0.0.1',
        port: gateway.gateway.trafficPort,
        localAddress,
        path: '/plain',
        headers: { host },
      },
      (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      },
    );
    request.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    request.end();
  });
}

const closeAll = async (sockets: WebSocket[]) => {
  for (const socket of sockets) socket.terminate();
  await Promise.all(
    sockets.map((socket) =>
      socket.readyState === WebSocket.CLOSED
        ? undefined
        : new Promise((resolve) => socket.once('close', resolve)),
    ),
  );
};

describe('one tenant and the replica’s connections', () => {
  let echo: WebSocketOrigin;
  let gateway: TestGateway;
  const held: WebSocket[] = [];

  beforeAll(async () => {
    echo = await startEcho();
    // Each address may hold 2 connections: the tenant's clients come from four addresses (each may
    // hold all the tenant's 4 WebSockets: the tenant's limit is what is tested here).
    gateway = await startTestGateway({
      GATEWAY_MAX_CONNECTIONS: '8',
      GATEWAY_MAX_CONNECTIONS_PER_CLIENT: '2',
      GATEWAY_WEBSOCKET_CLIENT_SHARE: '1',
    });
    gateway.store.apply(catchAllTenant('hog', echo.url));
    gateway.store.apply(catchAllTenant('other', echo.url));
  });

  afterAll(async () => {
    await closeAll(held);
    await gateway?.close();
    await echo?.close();
  });

  it('a tenant’s WebSockets from many addresses cannot fill the replica: another tenant is still served', async () => {
    const addresses = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
    const attempts = await Promise.all(
      addresses.flatMap((address) => [1, 2].map(() => openWebSocket(gateway, HOG, '/ws', address))),
    );
    held.push(...opened(attempts));
    // Kept alive with a frame now and then, as a hostile tenant's clients would.
    for (const socket of held) socket.send('ping');
    await pause(200);

    expect(await plainRequest(gateway, OTHER, '127.0.0.9')).toBe(200);

    // The default: half of GATEWAY_MAX_CONNECTIONS; the upgrades past it are refused before the origin.
    expect(held).toHaveLength(4);
    const refused = attempts.filter((attempt) => !('socket' in attempt));
    expect(refused).toHaveLength(4);
    for (const refusal of refused) {
      if ('socket' in refusal) continue;
      expect(refusal.status).toBe(503);
      expect(refusal.headers['retry-after']).toMatch(/^[1-9][0-9]*$/);
      expect(JSON.parse(refusal.body)).toEqual({
        error: {
          code: 'websocket_limit',
          message: 'the tenant holds its limit of 4 open WebSockets on this gateway; try again later',
        },
      });
    }
    expect(echo.wss.clients.size).toBe(4);
    const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/vantageedge_gateway_websocket_limit_refusals_total\{tenant="[^"]+"\} 4/);
  });
});

describe('a tenant’s WebSocket count after closes', () => {
  const LIMIT = 2;
  let echo: WebSocketOrigin;
  let gateway: TestGateway;

  beforeAll(async () => {
    echo = await startEcho();
    // The tenant's limit alone: one client may hold all of it (its share is websocket-client-share's).
    gateway = await startTestGateway({
      GATEWAY_MAX_WEBSOCKETS_PER_TENANT: String(LIMIT),
      GATEWAY_WEBSOCKET_CLIENT_SHARE: '1',
    });
    // /dead/* goes to a port nothing listens on any more.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const [echoId, deadId, slowId] = [randomUUID(), randomUUID(), randomUUID()];
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'hog',
        origins: [
          { id: echoId, targets: [echo.url] },
          { id: deadId, targets: [`http://127.0.0.1:${deadPort}`] },
          { id: slowId, targets: [echo.url], timeout_seconds: 1 },
        ],
        routes: [
          { origin_id: echoId, path_pattern: '/*' },
          { origin_id: deadId, path_pattern: '/dead/*' },
          { origin_id: slowId, path_pattern: '/slow/*' },
        ],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await echo?.close();
  });

  /** Until the gateway has seen every client connection close (a client sees its own close first). */
  async function untilClientsGone() {
    const open = () =>
      new Promise<number>((resolve, reject) =>
        gateway.gateway.trafficServer.getConnections((error, count) =>
          error ? reject(error) : resolve(count),
        ),
      );
    await within(
      (async () => {
        while ((await open()) > 0) await pause(20);
      })(),
      5_000,
      'the client connections close',
    );
    await pause(20); // their close listeners run
  }

  beforeEach(untilClientsGone);

  // The tenant can open exactly LIMIT WebSockets again: its count went back to zero.
  afterEach(async () => {
    await untilClientsGone();
    const attempts: Attempt[] = [];
    try {
      for (let index = 0; index <= LIMIT; index += 1) attempts.push(await openWebSocket(gateway, HOG));
      expect(opened(attempts)).toHaveLength(LIMIT);
      expect(attempts[LIMIT]).toMatchObject({ status: 503 });
    } finally {
      await closeAll(opened(attempts));
    }
  });

  const openLimit = async () => {
    const sockets = opened(await Promise.all([openWebSocket(gateway, HOG), openWebSocket(gateway, HOG)]));
    expect(sockets).toHaveLength(LIMIT);
    return sockets as [WebSocket, WebSocket];
  };
  const closes = (sockets: WebSocket[]) =>
    within(
      Promise.all(sockets.map((socket) => new Promise((resolve) => socket.once('close', resolve)))),
      5_000,
      'the WebSockets close',
    );

  it('the client closes its WebSockets (a close frame, or the connection dropped)', async () => {
    for (let round = 0; round < 3; round += 1) {
      const [polite, rude] = await openLimit();
      const closed = closes([polite, rude]);
      polite.close(1000);
      rude.terminate();
      await closed;
    }
  });

  it('the origin drops the connections', async () => {
    for (let round = 0; round < 3; round += 1) {
      const sockets = await openLimit();
      const closed = closes(sockets);
      for (const client of echo.wss.clients) client.terminate();
      await closed;
    }
  });

  it('the origin refuses the upgrade', async () => {
    for (let round = 0; round <= LIMIT; round += 1)
      expect(await openWebSocket(gateway, HOG, '/refuse')).toMatchObject({ status: 403 });
  });

  it('the origin cannot be reached', async () => {
    for (let round = 0; round <= LIMIT; round += 1) {
      const attempt = await openWebSocket(gateway, HOG, '/dead/ws');
      expect(attempt).toHaveProperty('status');
      expect('body' in attempt && attempt.body).not.toContain('websocket_limit');
    }
  });

  // Regression test: the origin's timeout was given to node as the `timeout` option, which a request
  // with its own createConnection ignores: an origin that never answered held the upgrade (and the
  // client's connection) for ever, and a stopping gateway waited for it.
  it('an origin that never answers the upgrade: 504 upstream_timeout at the origin’s timeout', async () => {
    const startedAt = performance.now();
    const attempt = await within(openWebSocket(gateway, HOG, '/slow/hang'), 5_000, 'the answer');
    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(900);
    expect(attempt).toMatchObject({ status: 504 });
    expect(JSON.parse((attempt as { body: string }).body)).toMatchObject({
      error: { code: 'upstream_timeout' },
    });
  });

  it('an open WebSocket is not cut by the origin’s timeout (only by the idle timeout)', async () => {
    const attempt = await openWebSocket(gateway, HOG, '/slow/ws');
    expect(attempt).toHaveProperty('socket');
    const socket = (attempt as { socket: WebSocket }).socket;
    try {
      await pause(1_500);
      const echoed = new Promise((resolve) => socket.once('message', (data) => resolve(String(data))));
      socket.send('still here');
      expect(await within(echoed, 2_000, 'the echo')).toBe('still here');
    } finally {
      await closeAll([socket]);
    }
  });

  // A client's FIN before the 101 is not seen (node stops reading an upgrade's socket, and its bytes are
  // the origin's): the slot comes back when the origin answers or its timeout (1 s here) ends the upgrade.
  it('the client leaves before the origin answers', async () => {
    const leaving = [1, 2].map(
      () =>
        new WebSocket(`ws://127.0.0.1:${gateway.gateway.trafficPort}/slow/hang`, {
          headers: { host: HOG },
        }),
    );
    for (const socket of leaving) socket.on('error', () => {});
    const closed = closes(leaving);
    await pause(200); // the upgrades are at the origin, which never answers
    for (const socket of leaving) {
      expect(socket.readyState).toBe(WebSocket.CONNECTING);
      socket.terminate();
    }
    await closed;
  });
});
