import { randomUUID } from 'node:crypto';
import type { ClientHttp2Session } from 'node:http2';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TEST_PEPPER } from '../testing/gateway-harness.js';
import {
  CLIENT_CLOSE,
  extendedConnect,
  type Http2WebSocket,
  opened,
  openSession,
  startTlsTestGateway,
  type TlsTestGateway,
} from '../testing/http2-websockets.js';
import { admissionClosures } from '../testing/open-websockets.js';
import { within } from '../testing/raw-connections.js';
import { buildSnapshot, type TestRoute } from '../testing/snapshots.js';
import { startWebSocketOrigin, type WebSocketOrigin } from '../testing/websocket-origins.js';

/**
 * An open WebSocket over HTTP/2 (RFC 8441, on the TLS listener with ALPN h2) is closed with a close
 * frame for the same reasons as an HTTP/1.1 one: its API key revoked or past its expiry (a rotation's
 * grace ending), its route removed or sent to another origin by a snapshot, the gateway stopping. Its
 * session is not idle while it is open: the WebSocket idle timeout decides when a quiet one closes, not
 * GATEWAY_HTTP2_IDLE_TIMEOUT_SECONDS.
 */
const KEY = 've_live_h2_closing_key_000000000000000000';
const NEXT_KEY = 've_live_h2_closing_key_111111111111111111';

let echo: WebSocketOrigin;
let other: WebSocketOrigin;
const sessions: ClientHttp2Session[] = [];

/** One tenant with a keyed route to the echo origin, version by version. */
class TestTenant {
  readonly id = randomUUID();
  readonly subdomain = `h2-ws-${randomUUID().slice(0, 8)}`;
  readonly originId = randomUUID();
  readonly otherOriginId = randomUUID();
  readonly routeId = randomUUID();
  readonly keyId = randomUUID();
  #version = 1;

  constructor(readonly gateway: TlsTestGateway) {}

  apply(
    changes: {
      keys?: Array<{ id: string; key: string; expires_at?: string | null }>;
      route?: Partial<TestRoute> | null;
    } = {},
  ): void {
    const route: TestRoute = {
      id: this.routeId,
      origin_id: this.originId,
      path_pattern: '/live/*',
      auth_mode: 'apikey_required',
      ...changes.route,
    };
    this.gateway.store.apply(
      buildSnapshot({
        tenantId: this.id,
        version: this.#version++,
        subdomain: this.subdomain,
        origins: [
          { id: this.originId, targets: [echo.url] },
          { id: this.otherOriginId, targets: [other.url] },
        ],
        routes: changes.route === null ? [] : [route],
        apiKeys: (changes.keys ?? [{ id: this.keyId, key: KEY }]).map((key) => ({
          id: key.id,
          key_hash: hashApiKey(TEST_PEPPER, key.key),
          expires_at: key.expires_at ?? null,
        })),
      }),
    );
  }

  /** A WebSocket over HTTP/2 to the tenant's route, once the origin said hello. */
  async connect(key = KEY): Promise<Http2WebSocket> {
    const { session } = await openSession(this.gateway.tlsUrl);
    sessions.push(session);
    const socket = opened(
      await extendedConnect(session, '/live/room', {
        ':authority': `${this.subdomain}.localhost`,
        'x-api-key': key,
      }),
    );
    expect(await socket.nextText()).toBe('echo');
    return socket;
  }
}

async function roundTrip(socket: Http2WebSocket, text: string): Promise<string> {
  socket.send(text);
  return socket.nextText();
}

beforeAll(async () => {
  [echo, other] = await Promise.all([
    startWebSocketOrigin({ name: 'echo' }),
    startWebSocketOrigin({ name: 'other' }),
  ]);
});

afterEach(() => {
  for (const session of sessions.splice(0)) session.destroy();
});

afterAll(async () => {
  await Promise.all([echo?.close(), other?.close()]);
});

describe('open HTTP/2 WebSockets whose admission ends', () => {
  let gateway: TlsTestGateway;

  beforeAll(async () => {
    gateway = await startTlsTestGateway({ GATEWAY_WEBSOCKET_IDLE_TIMEOUT_SECONDS: '0' });
  });

  afterAll(async () => {
    await gateway?.close();
  });

  it('closes the WebSocket of a key the next snapshot revokes with 1008', async () => {
    const tenant = new TestTenant(gateway);
    tenant.apply();
    const socket = await tenant.connect();
    expect(await roundTrip(socket, 'before')).toBe('before');

    tenant.apply({ keys: [] });

    expect(await socket.closeFrame()).toEqual({ code: 1008, reason: 'api key revoked' });
    expect(await admissionClosures(gateway, tenant.id, 'key_revoked')).toBe(1);
  });

  it('keeps a rotated key’s WebSocket through the rotation’s grace, then closes it 1008 at its expiry', async () => {
    const tenant = new TestTenant(gateway);
    tenant.apply();
    const socket = await tenant.connect();

    const graceEndsAt = new Date(Date.now() + 1_500).toISOString();
    tenant.apply({
      keys: [
        { id: tenant.keyId, key: KEY, expires_at: graceEndsAt },
        { id: randomUUID(), key: NEXT_KEY },
      ],
    });
    expect(await roundTrip(socket, 'in the grace')).toBe('in the grace');

    expect(await socket.closeFrame()).toEqual({ code: 1008, reason: 'credentials expired' });
    expect(await admissionClosures(gateway, tenant.id, 'credentials_expired')).toBe(1);
  });

  it('closes with 1001 when the route is removed or now goes to another origin', async () => {
    const tenant = new TestTenant(gateway);
    tenant.apply();
    const removed = await tenant.connect();
    tenant.apply({ route: null });
    expect(await removed.closeFrame()).toEqual({ code: 1001, reason: 'route removed' });

    tenant.apply();
    const moved = await tenant.connect();
    tenant.apply({ route: { origin_id: tenant.otherOriginId } });
    expect(await moved.closeFrame()).toEqual({ code: 1001, reason: 'route origin changed' });
  });
});

describe('a quiet HTTP/2 WebSocket and its session’s idle timeout', () => {
  let gateway: TlsTestGateway;

  beforeAll(async () => {
    gateway = await startTlsTestGateway({
      GATEWAY_HTTP2_IDLE_TIMEOUT_SECONDS: '1',
      GATEWAY_WEBSOCKET_IDLE_TIMEOUT_SECONDS: '3',
    });
  });

  afterAll(async () => {
    await gateway?.close();
  });

  // Regression: the session's idle timer counts frames, not open streams, so a session carrying only a
  // quiet WebSocket got GOAWAY at GATEWAY_HTTP2_IDLE_TIMEOUT_SECONDS though the WebSocket was open.
  it('the WebSocket idle timeout closes it (1001), the session is not sent GOAWAY while it is open', async () => {
    const tenant = new TestTenant(gateway);
    tenant.apply();
    const socket = await tenant.connect();
    const session = sessions.at(-1)!;
    let goAwayWhileOpen = false;
    session.once('goaway', () => {
      goAwayWhileOpen = !socket.stream.closed;
    });

    const close = await within(socket.closeFrame(), 10_000, 'the WebSocket idle timeout’s close frame');
    expect(close).toEqual({ code: 1001, reason: 'idle timeout' });
    expect(goAwayWhileOpen).toBe(false);

    // Once its WebSocket is gone, the session is idle like any other.
    socket.stream.end(CLIENT_CLOSE);
    await within(socket.ended, 5_000, 'the WebSocket’s stream to end');
    await within(
      new Promise((resolve) => session.once('close', resolve)),
      10_000,
      'the idle session to be closed',
    );
  });
});

describe('gateway stop with an open HTTP/2 WebSocket', () => {
  it('keeps it open through the drain period and closes it with 1001 at the stop', async () => {
    const gateway = await startTlsTestGateway({ GATEWAY_WEBSOCKET_IDLE_TIMEOUT_SECONDS: '0' });
    try {
      const tenant = new TestTenant(gateway);
      tenant.apply();
      const socket = await tenant.connect();

      gateway.gateway.startDraining();
      // Still served while the load balancer moves traffic away (the drain period).
      expect(await roundTrip(socket, 'still here')).toBe('still here');

      const closeFrame = socket.closeFrame();
      await gateway.gateway.close({ timeoutMs: 5_000 });
      expect(await closeFrame).toEqual({ code: 1001, reason: 'gateway shutting down' });
    } finally {
      await gateway.close();
    }
  });
});
