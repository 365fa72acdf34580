import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { admissionClosures, openWebSocket, roundTrip } from '../testing/open-websockets.js';
import { oidcSigningKey, type SigningKey } from '../testing/signing-keys.js';
import { buildSnapshot, type TestRoute } from '../testing/snapshots.js';
import { startWebSocketOrigin, type WebSocketOrigin } from '../testing/websocket-origins.js';

const ISSUER = 'https://idp.websocket-key-set.test';
const AUDIENCE = 'websocket-key-set-api';

/**
 * An open WebSocket admitted by an OIDC token after its tenant replaces what the token is checked
 * against: another jwks_url, another issuer or audience, the route's auth mode, the route itself.
 * Regression: a new jwks_url with the same issuer and audience left every WebSocket the old set's
 * keys admitted open (until the token's `exp`, never with the grace off), though the replica refused
 * the same token on its next request. The snapshot now has them checked against the new set once:
 * a token whose key the new set does not list is closed with 1008; one it lists stays open, and is
 * watched on the new set from then on.
 */
describe('open WebSockets after their tenant replaces its OIDC key set', () => {
  /** The keys each JWKS path publishes now. */
  const published = new Map<string, SigningKey[]>();
  let jwks: Server;
  let base: string;
  let echo: WebSocketOrigin;
  let gateway: TestGateway;

  beforeAll(async () => {
    jwks = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: (published.get(req.url ?? '') ?? []).map((key) => key.jwk) }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}`;
    echo = await startWebSocketOrigin();
    gateway = await startTestGateway(
      { GATEWAY_AUTH_FAILURES_PER_MINUTE: '0', GATEWAY_WEBSOCKET_IDLE_TIMEOUT_SECONDS: '0' },
      { jwksPolicy: { cooldownMs: 0 } },
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

  /** One OIDC tenant whose snapshots a test changes version by version. */
  class OidcTenant {
    readonly id = randomUUID();
    readonly originId = randomUUID();
    readonly routeId = randomUUID();
    readonly subdomain = `ws-key-set-${this.id.slice(0, 8)}`;
    readonly host = `${this.subdomain}.localhost`;
    #version = 1;

    apply(oidc: { jwksPath: string; issuer?: string; audience?: string }, route?: Partial<TestRoute> | null) {
      gateway.store.apply(
        buildSnapshot({
          tenantId: this.id,
          version: this.#version++,
          subdomain: this.subdomain,
          origins: [{ id: this.originId, targets: [echo.url] }],
          routes:
            route === null
              ? []
              : [
                  {
                    id: this.routeId,
                    origin_id: this.originId,
                    path_pattern: '/live/*',
                    auth_mode: 'jwt_required',
                    ...route,
                  },
                ],
          settings: {
            oidc: {
              issuer: oidc.issuer ?? ISSUER,
              audience: oidc.audience ?? AUDIENCE,
              jwks_url: `${base}${oidc.jwksPath}`,
            },
          },
        }),
      );
    }

    connect(token: string) {
      return openWebSocket(gateway, '/live/room', { host: this.host, authorization: `Bearer ${token}` });
    }
  }

  /** A tenant trusting `/<id>/old`, which lists `key`, and a WebSocket its token opened. */
  async function openedWithOldSet() {
    const tenant = new OidcTenant();
    const key = await oidcSigningKey(ISSUER, AUDIENCE);
    published.set(`/${tenant.id}/old`, [key]);
    tenant.apply({ jwksPath: `/${tenant.id}/old` });
    const open = await tenant.connect(await key.sign('user-1'));
    return { tenant, key, open };
  }

  it('closes 1008 when the new jwks_url does not list the token’s signing key', async () => {
    const { tenant, open } = await openedWithOldSet();
    published.set(`/${tenant.id}/new`, [await oidcSigningKey(ISSUER, AUDIENCE)]);

    tenant.apply({ jwksPath: `/${tenant.id}/new` });

    expect(await open.closed).toEqual({ code: 1008, reason: 'signing key withdrawn' });
    expect(await admissionClosures(gateway, tenant.id, 'signing_key_withdrawn')).toBe(1);
  });

  it('keeps it open when the new jwks_url lists the same key, then closes it when that set withdraws the key', async () => {
    const { tenant, key, open } = await openedWithOldSet();
    const other = await oidcSigningKey(ISSUER, AUDIENCE);
    published.set(`/${tenant.id}/new`, [key, other]);

    tenant.apply({ jwksPath: `/${tenant.id}/new` });
    // A second snapshot that changes nothing about the key set: the check already ran for the first.
    tenant.apply({ jwksPath: `/${tenant.id}/new` });
    expect(await roundTrip(open.socket, 'still here')).toBe('still here');

    // The old set goes on listing the key; the new one is what the connection is held to now.
    published.set(`/${tenant.id}/new`, [other]);
    const unlisted = await oidcSigningKey(ISSUER, AUDIENCE);
    // A token naming a kid the set lacks has the replica fetch it again.
    const refused = await send(gateway, tenant.host, '/live/me', {
      headers: { authorization: `Bearer ${await unlisted.sign('user-2')}` },
    });
    expect(refused.status).toBe(401);
    expect(await open.closed).toEqual({ code: 1008, reason: 'signing key withdrawn' });
  });

  it.each([
    ['another issuer', { issuer: 'https://other-idp.websocket-key-set.test' }, undefined],
    ['another audience', { audience: 'another-api' }, undefined],
    ['an API key on its route', {}, { auth_mode: 'apikey_required' } as const],
  ])('closes 1008 when the tenant sets %s', async (_change, oidc, route) => {
    const { tenant, open } = await openedWithOldSet();

    tenant.apply({ jwksPath: `/${tenant.id}/old`, ...oidc }, route);

    expect(await open.closed).toEqual({ code: 1008, reason: 'route auth changed' });
  });

  it('closes 1001 when its route is deleted', async () => {
    const { tenant, open } = await openedWithOldSet();

    tenant.apply({ jwksPath: `/${tenant.id}/old` }, null);

    expect(await open.closed).toEqual({ code: 1001, reason: 'route removed' });
  });
});
