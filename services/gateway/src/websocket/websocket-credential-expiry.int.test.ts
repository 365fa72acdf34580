import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import {
  type ClerkTestKeys,
  createClerkTestKeys,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { startTestGateway, TEST_PEPPER, type TestGateway } from '../testing/gateway-harness.js';
import {
  admissionClosures,
  type OpenWebSocket,
  openWebSocket,
  roundTrip,
} from '../testing/open-websockets.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { startWebSocketOrigin, type WebSocketOrigin } from '../testing/websocket-origins.js';

/**
 * An open WebSocket lives no longer than the credentials that admitted it: when its token's `exp`
 * (with the clock skew its verification allows) or its API key's `expires_at` passes, the gateway
 * closes it with 1008 though no snapshot changed anything — as it would refuse the same upgrade then.
 * Connections of longer-lived credentials, credentials without expiry and public routes stay open.
 */
const ISSUER = 'https://idp.websocket-expiry.test';
const AUDIENCE = 'websocket-expiry-api';
const CLERK_USER = 'user_2websocketexpiry';
const LASTING_KEY = 've_live_expiry_lasting_00000000000000000000';
const EXPIRING_KEY = 've_live_expiry_expiring_0000000000000000000';
/** GATEWAY_MAX_WEBSOCKETS_PER_TENANT of the gateway under test. */
const TENANT_LIMIT = 2;

let gateway: TestGateway;
let echo: WebSocketOrigin;
let jwks: Server;
let oidcKeys: Awaited<ReturnType<typeof generateKeyPair>>;
let clerk: ClerkTestKeys;

interface TestKey {
  readonly id: string;
  readonly key: string;
  readonly expires_at: string | null;
}

/** A tenant with a JWT route, a keyed route and a public route to the echo origin, version by version. */
class ExpiryTenant {
  readonly id = randomUUID();
  readonly host: string;
  readonly #subdomain = `ws-expiry-${randomUUID().slice(0, 8)}`;
  readonly #originId = randomUUID();
  readonly #routeIds = [randomUUID(), randomUUID(), randomUUID()] as const;
  #version = 1;

  constructor() {
    this.host = `${this.#subdomain}.localhost`;
  }

  /** Applies the tenant's next version with these keys to each gateway. */
  apply(keys: TestKey[] = [], gateways: TestGateway[] = [gateway]): this {
    const [userRoute, keyedRoute, publicRoute] = this.#routeIds;
    const snapshot = buildSnapshot({
      tenantId: this.id,
      version: this.#version++,
      subdomain: this.#subdomain,
      clerkUserIds: [CLERK_USER],
      origins: [{ id: this.#originId, targets: [echo.url] }],
      routes: [
        { id: userRoute, origin_id: this.#originId, path_pattern: '/user/*', auth_mode: 'jwt_required' },
        { id: keyedRoute, origin_id: this.#originId, path_pattern: '/keyed/*', auth_mode: 'apikey_required' },
        { id: publicRoute, origin_id: this.#originId, path_pattern: '/public/*' },
      ],
      apiKeys: keys.map((key) => ({
        id: key.id,
        key_hash: hashApiKey(TEST_PEPPER, key.key),
        expires_at: key.expires_at,
      })),
      settings: {
        oidc: {
          issuer: ISSUER,
          audience: AUDIENCE,
          jwks_url: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks`,
        },
      },
    });
    for (const target of gateways) target.store.apply(snapshot);
    return this;
  }
}

const lastingKey: TestKey = { id: randomUUID(), key: LASTING_KEY, expires_at: null };
const expiringKey = (inSecondsFromNow: number, id: string = randomUUID()): TestKey => ({
  id,
  key: EXPIRING_KEY,
  expires_at: new Date(Date.now() + inSecondsFromNow * 1000).toISOString(),
});

const oidcToken = (expiresInSeconds: number) =>
  new SignJWT({})
    .setProtectedHeader({ alg: 'RS256', kid: 'idp-1' })
    .setIssuer(ISSUER)
    .setSubject(`oidc-${randomUUID()}`)
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + expiresInSeconds)
    .sign(oidcKeys.privateKey);

/** A WebSocket through the gateway, once the origin said hello. */
function connect(
  host: string,
  path: string,
  headers: Record<string, string> = {},
  through: TestGateway = gateway,
): Promise<OpenWebSocket> {
  return openWebSocket(through, path, { host, ...headers });
}

const closures = (tenantId: string, reason: string) => admissionClosures(gateway, tenantId, reason);

beforeAll(async () => {
  clerk = await createClerkTestKeys();
  oidcKeys = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(oidcKeys.publicKey)), kid: 'idp-1', alg: 'RS256', use: 'sig' };
  jwks = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
  echo = await startWebSocketOrigin();
  gateway = await startTestGateway({
    CLERK_JWT_KEY: clerk.publicKeyPem,
    GATEWAY_WEBSOCKET_IDLE_TIMEOUT_SECONDS: '0',
    GATEWAY_MAX_WEBSOCKETS_PER_TENANT: String(TENANT_LIMIT),
    GATEWAY_WEBSOCKET_CLIENT_SHARE: '1',
  });
});

afterAll(async () => {
  await gateway?.close();
  await echo?.close();
  await new Promise<void>((resolve) => (jwks ? jwks.close(() => resolve()) : resolve()));
});

// Each test has a tenant of its own and mostly waits for a credential to expire: the tests (and the
// grace gateway's below) wait side by side.
describe.concurrent('open WebSockets whose credentials expire', () => {
  it('closes an OIDC user’s WebSocket with 1008 at its token’s exp; a longer-lived token’s stays open', async ({
    expect,
  }) => {
    const tenant = new ExpiryTenant().apply();
    const lasting = await connect(tenant.host, '/user/feed', {
      authorization: `Bearer ${await oidcToken(300)}`,
    });
    const expiring = await connect(tenant.host, '/user/feed', {
      authorization: `Bearer ${await oidcToken(2)}`,
    });

    expect(await expiring.closed).toEqual({ code: 1008, reason: 'credentials expired' });
    expect(await roundTrip(lasting.socket, 'still here')).toBe('still here');
    expect(await closures(tenant.id, 'credentials_expired')).toBe(1);
    await eventually('the closure is logged', () =>
      gateway.logLines.some(
        (line) =>
          line['message'] === 'websocket closed' &&
          line['tenant_id'] === tenant.id &&
          line['reason'] === 'credentials_expired' &&
          line['close_code'] === 1008,
      ),
    );
    lasting.socket.close();
  });

  it('closes a Clerk session’s WebSocket with 1008 once its session token has expired', async ({
    expect,
  }) => {
    const tenant = new ExpiryTenant().apply();
    const token = await signClerkToken(clerk, { userId: CLERK_USER, expiresInSeconds: 1 });
    const open = await connect(tenant.host, '/user/feed', { authorization: `Bearer ${token}` });

    expect(await open.closed).toEqual({ code: 1008, reason: 'credentials expired' });
    expect(await closures(tenant.id, 'credentials_expired')).toBe(1);
  });

  it('closes the WebSocket of an API key at its expires_at, and the slot it held admits another upgrade', async ({
    expect,
  }) => {
    const tenant = new ExpiryTenant().apply([lastingKey, expiringKey(2)]);
    const expiring = await connect(tenant.host, '/keyed/feed', { 'x-api-key': EXPIRING_KEY });
    const publicRoute = await connect(tenant.host, '/public/feed');
    // The tenant holds its limit of open WebSockets on this gateway.
    await expect(connect(tenant.host, '/keyed/feed', { 'x-api-key': LASTING_KEY })).rejects.toThrow(
      'status 503',
    );

    expect(await expiring.closed).toEqual({ code: 1008, reason: 'credentials expired' });
    const lasting = await connect(tenant.host, '/keyed/feed', { 'x-api-key': LASTING_KEY });
    expect(await roundTrip(lasting.socket, 'key without expiry')).toBe('key without expiry');
    expect(await roundTrip(publicRoute.socket, 'public')).toBe('public');
    expect(await closures(tenant.id, 'credentials_expired')).toBe(1);
    lasting.socket.close();
    publicRoute.socket.close();
  });

  it('closes at the expires_at a later snapshot gives the key, earlier or later than at the upgrade', async ({
    expect,
  }) => {
    const tenant = new ExpiryTenant();
    const brought = expiringKey(300);
    const extended = { ...expiringKey(3), key: LASTING_KEY };
    tenant.apply([brought, extended]);
    const closing = await connect(tenant.host, '/keyed/feed', { 'x-api-key': brought.key });
    const kept = await connect(tenant.host, '/keyed/feed', { 'x-api-key': extended.key });

    // The tenant brings one key's expiry forward, past the other's first expiry, which it removes.
    tenant.apply([expiringKey(3, brought.id), { ...extended, expires_at: null }]);

    expect(await closing.closed).toEqual({ code: 1008, reason: 'credentials expired' });
    expect(await roundTrip(kept.socket, 'no expiry now')).toBe('no expiry now');
    kept.socket.close();
  });
});

describe.concurrent('GATEWAY_WEBSOCKET_CREDENTIAL_GRACE_SECONDS', () => {
  let graceful: TestGateway;

  beforeAll(async () => {
    graceful = await startTestGateway({
      GATEWAY_WEBSOCKET_IDLE_TIMEOUT_SECONDS: '0',
      GATEWAY_WEBSOCKET_CREDENTIAL_GRACE_SECONDS: '2',
    });
  });

  afterAll(async () => {
    await graceful?.close();
  });

  it('keeps a WebSocket open for the grace past its key’s expiry, then closes it with 1008', async ({
    expect,
  }) => {
    const tenant = new ExpiryTenant().apply([expiringKey(2)], [gateway, graceful]);
    const atExpiry = await connect(tenant.host, '/keyed/feed', { 'x-api-key': EXPIRING_KEY });
    const withGrace = await connect(tenant.host, '/keyed/feed', { 'x-api-key': EXPIRING_KEY }, graceful);

    expect(await atExpiry.closed).toEqual({ code: 1008, reason: 'credentials expired' });
    expect(await roundTrip(withGrace.socket, 'in the grace')).toBe('in the grace');
    expect(await withGrace.closed).toEqual({ code: 1008, reason: 'credentials expired' });
  });
});
