import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { ClientHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { extendedConnect, opened, openSession } from '../testing/http2-websockets.js';
import { roundTrip } from '../testing/open-websockets.js';
import { buildSnapshot, type TestRoute } from '../testing/snapshots.js';
import { sendUpgrade } from '../testing/upgrade-request.js';
import { startWebSocketOrigin, type WebSocketOrigin } from '../testing/websocket-origins.js';

/**
 * A WebSocket upgrade on a route with a traffic split goes where a plain request would: the override
 * header's origin, the weights, the sticky cookie's origin, the split's other origin when the chosen
 * one has no available target, never a platform listener; over HTTP/1.1 and HTTP/2 extended CONNECT.
 * An open WebSocket stays while the route's split still sends to its origin.
 */
const tenantId = randomUUID();
const stableId = randomUUID();
const canaryId = randomUUID();
const deadId = randomUUID();
const selfId = randomUUID();
const allCanaryRouteId = randomUUID();
const HOST = 'wsplit.localhost';

let stable: WebSocketOrigin;
let canary: WebSocketOrigin;
let gateway: TestGateway;
let closedUrl: string;
let version = 1;
const sessions: ClientHttp2Session[] = [];

const split = (weights: Record<string, number>, extra: Record<string, unknown> = {}) => ({
  origins: Object.entries(weights).map(([origin_id, weight]) => ({ origin_id, weight })),
  ...extra,
});

/** The tenant's snapshot; `allCanary`: the split of /all-canary/* (null: the route has none). */
function snapshot(allCanary: Record<string, unknown> | null) {
  const noHealth = { active: { enabled: false }, passive: { enabled: false } };
  const routes: TestRoute[] = [
    {
      origin_id: stableId,
      path_pattern: '/override/*',
      traffic_split: split(
        { [stableId]: 100, [canaryId]: 0 },
        { overrides: [{ header: 'x-canary', value: 'always', origin_id: canaryId }] },
      ),
    },
    {
      id: allCanaryRouteId,
      origin_id: stableId,
      path_pattern: '/all-canary/*',
      traffic_split: allCanary,
    },
    {
      origin_id: stableId,
      path_pattern: '/sticky/*',
      traffic_split: split({ [stableId]: 50, [canaryId]: 50 }, { sticky: { cookie: 'session' } }),
    },
    { origin_id: stableId, path_pattern: '/plain/*' },
    { origin_id: deadId, path_pattern: '/dead/*' },
    {
      origin_id: deadId,
      path_pattern: '/fallback/*',
      traffic_split: split({ [deadId]: 1000, [canaryId]: 1 }),
    },
    {
      origin_id: stableId,
      path_pattern: '/own-listener/*',
      traffic_split: split(
        { [stableId]: 100, [selfId]: 0 },
        { overrides: [{ header: 'x-canary', value: 'always', origin_id: selfId }] },
      ),
    },
  ];
  return buildSnapshot({
    tenantId,
    version: version++,
    subdomain: 'wsplit',
    origins: [
      { id: stableId, targets: [stable.url] },
      { id: canaryId, targets: [canary.url] },
      {
        id: deadId,
        targets: [closedUrl],
        health_check: noHealth,
        circuit_breaker: { consecutive_failures: 1, open_seconds: 600 },
      },
      { id: selfId, targets: [gateway.url] },
    ],
    routes,
  });
}

const ALL_CANARY = split({ [stableId]: 0, [canaryId]: 100 });

interface NamedWebSocket {
  socket: WebSocket;
  /** The origin's name, its first message. */
  name: string;
  closed: Promise<{ code: number; reason: string }>;
}

/** An HTTP/1.1 WebSocket through the gateway, once its origin said its name; rejects when refused. */
function openNamed(path: string, headers: Record<string, string> = {}): Promise<NamedWebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}${path}`, {
      headers: { host: HOST, ...headers },
    });
    const closed = new Promise<{ code: number; reason: string }>((done) =>
      socket.once('close', (code, reason) => done({ code, reason: String(reason) })),
    );
    socket.once('unexpected-response', (_req, res) => reject(new Error(`status ${res.statusCode}`)));
    socket.once('error', reject);
    socket.once('message', (data) => resolve({ socket, name: String(data), closed }));
  });
}

/** Which origin an HTTP/1.1 upgrade reached; the connection is then closed. */
async function originOfUpgrade(path: string, headers: Record<string, string> = {}): Promise<string> {
  const { socket, name } = await openNamed(path, headers);
  socket.close();
  return name;
}

beforeAll(async () => {
  stable = await startWebSocketOrigin({ name: 'stable' });
  canary = await startWebSocketOrigin({ name: 'canary' });
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  closedUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  gateway = await startTestGateway({ GATEWAY_H2C: 'true' });
  gateway.store.apply(snapshot(ALL_CANARY));
});

afterAll(async () => {
  for (const session of sessions) session.destroy();
  await gateway?.close();
  await Promise.all([stable?.close(), canary?.close()]);
});

describe('WebSocket upgrades on a traffic split route', () => {
  it('sends an upgrade with the override header to the override’s origin, others by weight', async () => {
    expect(await originOfUpgrade('/override/room', { 'x-canary': 'always' })).toBe('canary');
    expect(await originOfUpgrade('/override/room')).toBe('stable');
  });

  it('sends an HTTP/2 extended CONNECT with the override header to the override’s origin', async () => {
    const { session } = await openSession(gateway.url);
    sessions.push(session);
    const attempt = await extendedConnect(session, '/override/room', {
      ':authority': HOST,
      'x-canary': 'always',
    });
    expect(attempt.status).toBe(200);
    expect(await opened(attempt).nextText()).toBe('canary');
  });

  it('sends every upgrade to the origin weighted 100 when the other is weighted 0', async () => {
    for (let i = 0; i < 6; i++) expect(await originOfUpgrade(`/all-canary/${i}`)).toBe('canary');
  });

  it('keeps a sticky cookie’s upgrades on one origin, and spreads sessions over both', async () => {
    const seen = new Set<string>();
    // Route ids (the hash's seed) are new each run: 12 sessions all on one origin of a 50/50 split came
    // up once in a few thousand runs; with 32, once in billions.
    for (let session = 0; session < 32; session++) {
      const cookie = `theme=dark; session=s-${session}`;
      const first = await originOfUpgrade('/sticky/a', { cookie });
      for (let again = 0; again < 2; again++)
        expect(await originOfUpgrade(`/sticky/${again}`, { cookie })).toBe(first);
      // A plain request with the cookie goes where its upgrades go.
      expect((await send(gateway, HOST, '/sticky/plain', { headers: { cookie } })).text).toBe(first);
      seen.add(first);
    }
    expect(seen).toEqual(new Set(['stable', 'canary']));
  });

  it('leaves a route without a split on its own origin', async () => {
    expect(await originOfUpgrade('/plain/room', { 'x-canary': 'always' })).toBe('stable');
  });

  it('falls back to the split’s other origin when the chosen one has no available target', async () => {
    // One connect error opens the dead origin's only circuit.
    expect((await send(gateway, HOST, '/dead/x')).status).toBe(502);
    for (let i = 0; i < 3; i++) expect(await originOfUpgrade(`/fallback/${i}`)).toBe('canary');
  });

  it('refuses an override that names one of the platform’s own listeners, as a plain request', async () => {
    const upgrade = await sendUpgrade(gateway, HOST, '/own-listener/status', { 'x-canary': 'always' });
    expect(upgrade.status).toBe(502);
    expect(JSON.parse(upgrade.text).error.code).toBe('origin_address_blocked');
  });

  it('keeps a WebSocket open while the split sends to its origin, closes it once the split is gone', async () => {
    const { socket, name, closed } = await openNamed('/all-canary/kept');
    expect(name).toBe('canary');
    gateway.store.apply(snapshot(ALL_CANARY));
    expect(await roundTrip(socket, 'still here')).toBe('still here');
    // Without its split the route sends every upgrade to its own origin: the canary's connection goes.
    gateway.store.apply(snapshot(null));
    expect(await closed).toEqual({ code: 1001, reason: 'route origin changed' });
  });
});
