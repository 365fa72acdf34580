import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { admissionClosures, openWebSocket, roundTrip } from '../testing/open-websockets.js';
import { clerkSigningKey, oidcSigningKey, type SigningKey } from '../testing/signing-keys.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { startWebSocketOrigin, type WebSocketOrigin } from '../testing/websocket-origins.js';

const ISSUER = 'https://idp.websocket-rotation.test';
const AUDIENCE = 'websocket-rotation-api';
const ORG = 'org_websocket_rotation';

/**
 * Regression tests: a WebSocket admitted by a token stayed open until the token's `exp` after its
 * provider removed the token's signing key from its JWKS (a leaked key rotated out), though the same
 * replica then refused every request and upgrade with that token. Once the replica fetches the set
 * without the key, the connections its tokens opened are closed with 1008 `signing key withdrawn`;
 * those of tokens signed with a key the set still lists stay open.
 */
describe.each([
  ['a tenant’s OIDC provider', 'oidc', () => oidcSigningKey(ISSUER, AUDIENCE)],
  ['Clerk (CLERK_SECRET_KEY)', 'clerk', () => clerkSigningKey(ORG)],
] as const)('a WebSocket admitted by a token whose signing key %s withdraws', (_provider, source, newKey) => {
  /** The keys the provider lists now. */
  let listed: SigningKey[] = [];
  let fetches = 0;
  let jwks: Server;
  let echo: WebSocketOrigin;
  let gateway: TestGateway;
  const tenantId = randomUUID();
  const host = 'ws-rotation.localhost';

  const connect = (token: string) =>
    openWebSocket(gateway, '/user/live', { host, authorization: `Bearer ${token}` });

  /** The provider publishes these keys from now on; a token naming a kid it lacks has the gateway fetch them. */
  async function publish(...keys: SigningKey[]) {
    listed = keys;
    const before = fetches;
    const unlisted = await newKey();
    const answer = await send(gateway, host, '/user/me', {
      headers: { authorization: `Bearer ${await unlisted.sign('user-unlisted')}` },
    });
    expect(answer.status).toBe(401);
    expect(fetches).toBeGreaterThan(before);
  }

  beforeAll(async () => {
    jwks = createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: listed.map((key) => key.jwk) }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}`;
    echo = await startWebSocketOrigin();
    gateway = await startTestGateway(
      {
        GATEWAY_AUTH_FAILURES_PER_MINUTE: '0',
        GATEWAY_WEBSOCKET_IDLE_TIMEOUT_SECONDS: '0',
        ...(source === 'clerk' ? { CLERK_SECRET_KEY: 'sk_test_rotation', CLERK_API_URL: base } : {}),
      },
      // No fetch waits for a cooldown.
      { jwksPolicy: { cooldownMs: 0 } },
    );
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        tenantId,
        subdomain: 'ws-rotation',
        clerkOrgId: ORG,
        origins: [{ id: originId, targets: [echo.url] }],
        routes: [{ origin_id: originId, path_pattern: '/user/*', auth_mode: 'jwt_required' }],
        settings:
          source === 'oidc' ? { oidc: { issuer: ISSUER, audience: AUDIENCE, jwks_url: `${base}/jwks` } } : {},
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await echo?.close();
    await new Promise<void>((resolve) => {
      jwks?.close(() => resolve());
      jwks?.closeAllConnections();
    });
  });

  it('is closed 1008 once the replica fetched the set without the key; one signed with a kept key stays open', async () => {
    const [leaked, kept] = [await newKey(), await newKey()];
    await publish(leaked, kept);
    const onLeaked = await connect(await leaked.sign('user-leaked'));
    const onKept = await connect(await kept.sign('user-kept'));
    const closuresBefore = await admissionClosures(gateway, tenantId, 'signing_key_withdrawn');

    await publish(kept);

    expect(await onLeaked.closed).toEqual({ code: 1008, reason: 'signing key withdrawn' });
    expect(await admissionClosures(gateway, tenantId, 'signing_key_withdrawn')).toBe(closuresBefore + 1);
    expect(await roundTrip(onKept.socket, 'still here')).toBe('still here');
    onKept.socket.close();
  });
});
