import { randomUUID } from 'node:crypto';
import type { ClientHttp2Session } from 'node:http2';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TEST_PEPPER } from '../testing/gateway-harness.js';
import {
  extendedConnect,
  opened,
  openSession,
  refusalError,
  startTlsTestGateway,
  type TlsTestGateway,
} from '../testing/http2-websockets.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { sendUpgrade } from '../testing/upgrade-request.js';
import { startWebSocketOrigin, type WebSocketOrigin } from '../testing/websocket-origins.js';

/**
 * Cross-site WebSocket hijacking: browsers apply no CORS to a WebSocket, so any web page may open one
 * to a route and the browser sends the user's cookies with it. On a route with a `cors` policy, an
 * upgrade whose Origin the policy does not allow is refused 403 cors_not_allowed before authentication
 * and before the origin is asked, over HTTP/1.1 and HTTP/2 alike; an upgrade without Origin (not a
 * browser) and the upgrades of a route without `cors` are not affected.
 */
const KEY = 've_live_cross_site_key_0000000000000000000';
const HOST = 'chat.localhost';
const ALLOWED = ['https://app.example.com', 'https://*.example.com'];

let origin: WebSocketOrigin;
let gateway: TlsTestGateway;
const sessions: ClientHttp2Session[] = [];

async function session(): Promise<ClientHttp2Session> {
  const { session: opened } = await openSession(gateway.tlsUrl);
  sessions.push(opened);
  return opened;
}

beforeAll(async () => {
  origin = await startWebSocketOrigin();
  gateway = await startTlsTestGateway();
  const originId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'chat',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [
        {
          origin_id: originId,
          path_pattern: '/ws/*',
          auth_mode: 'apikey_required',
          cors: { allow_origins: ALLOWED, allow_credentials: true },
        },
        { origin_id: originId, path_pattern: '/any/*', cors: { allow_origins: ['*'] } },
        { origin_id: originId, path_pattern: '/open/*' },
      ],
      apiKeys: [{ key_hash: hashApiKey(TEST_PEPPER, KEY) }],
    }),
  );
});

afterEach(() => {
  for (const opened of sessions.splice(0)) opened.destroy();
});

afterAll(async () => {
  await gateway?.close();
  await origin?.close();
});

describe('WebSocket upgrades on a route with a CORS policy (HTTP/1.1)', () => {
  it('refuses a page of another site 403 cors_not_allowed, with a key or without, never asking the origin', async () => {
    const upgrades = origin.upgrades.length;
    for (const site of [
      'https://evil.example',
      'https://example.com',
      'null',
      'https://app.example.com.evil',
    ]) {
      const keyed = await sendUpgrade(gateway, HOST, '/ws/room', { origin: site, 'x-api-key': KEY });
      expect(keyed.status).toBe(403);
      expect(JSON.parse(keyed.text).error).toMatchObject({ code: 'cors_not_allowed' });
      // Refused before authentication: no 401 tells the page whether the user holds credentials.
      const keyless = await sendUpgrade(gateway, HOST, '/ws/room', { origin: site });
      expect(keyless.status).toBe(403);
      expect(JSON.parse(keyless.text).error.code).toBe('cors_not_allowed');
    }
    expect(origin.upgrades).toHaveLength(upgrades);
  });

  it('switches an allowed origin (exact or by wildcard) and a client that sends no Origin', async () => {
    for (const site of ['https://app.example.com', 'https://chat.eu.example.com', undefined]) {
      const headers: Record<string, string> = { 'x-api-key': KEY };
      if (site !== undefined) headers['origin'] = site;
      expect((await sendUpgrade(gateway, HOST, '/ws/room', headers)).status).toBe(101);
    }
    // Still authenticated: an allowed origin without the key is refused as before.
    const keyless = await sendUpgrade(gateway, HOST, '/ws/room', { origin: 'https://app.example.com' });
    expect(keyless.status).toBe(401);
  });

  it('leaves routes whose policy allows any origin, and routes without CORS, as they were', async () => {
    expect((await sendUpgrade(gateway, HOST, '/any/room', { origin: 'https://evil.example' })).status).toBe(
      101,
    );
    expect((await sendUpgrade(gateway, HOST, '/open/room', { origin: 'https://evil.example' })).status).toBe(
      101,
    );
  });
});

describe('WebSocket streams on a route with a CORS policy (HTTP/2 extended CONNECT)', () => {
  it('refuses another site’s page 403 cors_not_allowed before the origin is asked', async () => {
    const client = await session();
    const upgrades = origin.upgrades.length;
    const refused = await extendedConnect(client, '/ws/room', {
      origin: 'https://evil.example',
      'x-api-key': KEY,
    });
    expect(refused.status).toBe(403);
    expect(refusalError(refused).code).toBe('cors_not_allowed');
    expect(origin.upgrades).toHaveLength(upgrades);
  });

  it('opens an allowed origin’s WebSocket and one without Origin', async () => {
    const client = await session();
    const allowed = opened(
      await extendedConnect(client, '/ws/room', { origin: 'https://app.example.com', 'x-api-key': KEY }),
    );
    expect(await allowed.nextText()).toBe('hello');
    const originless = opened(await extendedConnect(client, '/ws/room', { 'x-api-key': KEY }));
    expect(await originless.nextText()).toBe('hello');
  });
});
