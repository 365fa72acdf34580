import { randomUUID } from 'node:crypto';
import type { ClientHttp2Session } from 'node:http2';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { MemoryLimitStore } from '../ratelimit/memory-limit-store.js';
import { createRateLimitStage } from '../ratelimit/rate-limit-stage.js';
import { createRateLimiter } from '../ratelimit/rate-limiter.js';
import {
  extendedConnect,
  type Http2WebSocket,
  opened,
  openSession,
  refusalError,
  startTlsTestGateway,
  type TlsTestGateway,
} from '../testing/http2-websockets.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { startWebSocketOrigin, type WebSocketOrigin } from '../testing/websocket-origins.js';

/**
 * What refuses an HTTP/1.1 upgrade refuses the same WebSocket opened over HTTP/2 (RFC 8441, on the TLS
 * listener with ALPN h2), before the origin is asked: the route's rate limit (429 with its RateLimit
 * fields and Retry-After), its IP rules, and GATEWAY_MAX_CONNECTIONS_PER_CLIENT — an HTTP/1.1 WebSocket
 * holds a connection of its client address, so each WebSocket stream a session carries beside its
 * first takes one more slot of the address, as every other HTTP/2 request does.
 */
const PER_CLIENT = 3;
const tenantId = randomUUID();

let origin: WebSocketOrigin;
let gateway: TlsTestGateway;
const sessions: ClientHttp2Session[] = [];

/** The tenant's open WebSockets, as the gateway's /metrics shows them. */
async function openWebSockets(): Promise<number> {
  const text = await gateway.registry.metrics();
  const match = text.match(
    new RegExp(`vantageedge_gateway_websocket_connections_open\\{tenant="${tenantId}"\\} (\\d+)`),
  );
  return match ? Number(match[1]) : 0;
}

async function session(): Promise<ClientHttp2Session> {
  const { session: opened } = await openSession(gateway.tlsUrl);
  sessions.push(opened);
  return opened;
}

beforeAll(async () => {
  origin = await startWebSocketOrigin();
  const rateLimitStage = createRateLimitStage(
    createRateLimiter({
      store: new MemoryLimitStore({ maxKeys: 1000 }),
      registry: new Registry(),
      logger: createLogger({ service: 'h2-ws-test', level: 'error' }),
    }),
  );
  gateway = await startTlsTestGateway(
    {
      GATEWAY_MAX_CONNECTIONS_PER_CLIENT: String(PER_CLIENT),
      GATEWAY_MAX_WEBSOCKETS_PER_TENANT: '100',
      GATEWAY_WEBSOCKET_CLIENT_SHARE: '1',
    },
    { stages: [rateLimitStage] },
  );
  const originId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      tenantId,
      subdomain: 'chat',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [
        { origin_id: originId, path_pattern: '/ws/*' },
        {
          origin_id: originId,
          path_pattern: '/limited/*',
          rate_limit: { requests_per_second: 0.01, burst: 1, scope: 'route' },
        },
        // The test's client connects from loopback.
        { origin_id: originId, path_pattern: '/office/*', ip_rules: { deny: ['127.0.0.0/8', '::1/128'] } },
      ],
    }),
  );
});

afterEach(async () => {
  for (const opened of sessions.splice(0)) opened.destroy();
  // The next test's session needs its client address's slots back.
  await vi.waitFor(async () => expect(await openWebSockets()).toBe(0), { timeout: 5_000 });
});

afterAll(async () => {
  await gateway?.close();
  await origin?.close();
});

describe('HTTP/2 WebSockets refused at connect', () => {
  it('the route’s rate limit refuses the second WebSocket 429 with RateLimit and Retry-After', async () => {
    const client = await session();
    const first = opened(await extendedConnect(client, '/limited/a'));
    expect(await first.nextText()).toBe('hello');
    const upgrades = origin.upgrades.length;

    const refused = await extendedConnect(client, '/limited/b');
    expect(refused.status).toBe(429);
    expect(refusalError(refused).code).toBe('rate_limited');
    expect(refused.headers['retry-after']).toMatch(/^[1-9][0-9]*$/);
    expect(refused.headers['ratelimit']).toMatch(/;r=0;t=[1-9]/);
    expect(refused.headers['ratelimit-policy']).toMatch(/.+/);
    expect(origin.upgrades).toHaveLength(upgrades);
  });

  it('the route’s IP rules refuse a WebSocket from a denied address 403, never forwarded', async () => {
    const client = await session();
    const upgrades = origin.upgrades.length;
    const refused = await extendedConnect(client, '/office/a');
    expect(refused.status).toBe(403);
    expect(origin.upgrades).toHaveLength(upgrades);
  });

  // Regression: an extended CONNECT went straight to the WebSocket proxy, past the limit every other
  // HTTP/2 request is held to, so one client address held any number of WebSockets on one session.
  it('a session’s WebSocket streams count in GATEWAY_MAX_CONNECTIONS_PER_CLIENT with its other requests; past it 429 client_limit', async () => {
    const client = await session();
    const open: Http2WebSocket[] = [];
    for (let i = 0; i < PER_CLIENT; i += 1) {
      const socket = opened(await extendedConnect(client, `/ws/${i}`));
      expect(await socket.nextText()).toBe('hello');
      open.push(socket);
    }
    const upgrades = origin.upgrades.length;

    const refused = await extendedConnect(client, '/ws/past-the-limit');
    expect(refused.status).toBe(429);
    expect(refusalError(refused).code).toBe('client_limit');
    expect(refused.headers['retry-after']).toBe('1');
    expect(origin.upgrades).toHaveLength(upgrades);
    // A plain request beside them counts in the same limit.
    const plain = client.request({ ':path': '/ws/plain', ':authority': 'chat.localhost' });
    const status = await new Promise<number>((resolve) =>
      plain.once('response', (headers) => resolve(Number(headers[':status']))),
    );
    plain.resume();
    expect(status).toBe(429);

    // A closed WebSocket gives its slot back.
    const [first] = open;
    first!.stream.close();
    await first!.ended;
    const again = opened(await extendedConnect(client, '/ws/again'));
    expect(await again.nextText()).toBe('hello');
  });
});
