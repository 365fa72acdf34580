import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import {
  type ClerkTestKeys,
  createClerkTestKeys,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
import { type CryptoKey, exportJWK, generateKeyPair, importSPKI, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  TEST_PEPPER,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { DEFAULT_JWKS_FETCH_POLICY, RemoteKeySet } from './jwks.js';

const SECRET_KEY = 'sk_test_amplification_0123456789';
const ISSUER = 'https://idp.flood.test';

interface JwksServer {
  url: string;
  /** Requests the server answered (each one a JWKS fetch by the gateway). */
  fetches: number;
  /** false: answer 500 (the IdP is down). */
  healthy: boolean;
  close(): Promise<void>;
}

async function startJwksServer(keys: () => Promise<unknown[]>, requiredAuthorization?: string) {
  const state = { fetches: 0, healthy: true };
  const server: Server = createServer((req, res) => {
    state.fetches++;
    if (!state.healthy) {
      res.writeHead(500).end();
      return;
    }
    if (requiredAuthorization !== undefined && req.headers.authorization !== requiredAuthorization) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"errors":[]}');
      return;
    }
    void keys().then((list) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: list }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const jwks: JwksServer = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get fetches() {
      return state.fetches;
    },
    get healthy() {
      return state.healthy;
    },
    set healthy(value: boolean) {
      state.healthy = value;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return jwks;
}

/** A well-formed RS256 JWT signed by a key nobody publishes, under a kid nobody knows. */
async function unknownKidToken(
  signer: CryptoKey,
  claims: { iss?: string; aud?: string } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ ...(claims.aud ? { aud: claims.aud } : {}) })
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: `unknown-${randomUUID()}` })
    .setSubject('user_flood')
    .setIssuer(claims.iss ?? 'https://clerk.flood.test')
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + 300)
    .sign(signer);
}

/**
 * Regression tests: in JWKS mode every bearer token with an unknown `kid` made the gateway fetch Clerk's
 * JWKS (retried on failure) — and a failing OIDC JWKS endpoint was refetched for every token — before
 * any rate limit, so a client could turn its requests into requests against the identity provider.
 * Failed authentications were also neither counted nor limited per client.
 */
describe('authentication cannot be used as an amplifier', () => {
  let origin: TestOrigin;
  let clerk: ClerkTestKeys;
  let stranger: CryptoKey;
  let oidcKeys: Awaited<ReturnType<typeof generateKeyPair>>;
  let clerkJwks: JwksServer;
  let oidcJwks: JwksServer;
  const gateways: TestGateway[] = [];
  const tenantId = randomUUID();
  /** How long the OIDC JWKS takes to answer (a slow identity provider). */
  let oidcJwksDelayMs = 0;

  async function gatewayWith(env: Record<string, string>): Promise<TestGateway> {
    const gateway = await startTestGateway({
      CLERK_SECRET_KEY: SECRET_KEY,
      CLERK_API_URL: clerkJwks.url,
      GATEWAY_TRUST_PROXY: 'true',
      ...env,
    });
    gateways.push(gateway);
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        tenantId,
        subdomain: 'flood',
        // No Clerk org: its jwt route accepts the Clerk users in its user list.
        clerkUserIds: ['user_ok', 'user_ok2'],
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [
          {
            origin_id: originId,
            path_pattern: '/user/*',
            auth_mode: 'jwt_required',
            require_tenant_org: false,
          },
        ],
        settings: { oidc: { issuer: ISSUER, audience: 'flood-api', jwks_url: `${oidcJwks.url}/jwks` } },
      }),
    );
    return gateway;
  }

  const call = (gateway: TestGateway, token: string, clientIp = '198.51.100.7') =>
    send(gateway, 'flood.localhost', '/user/me', {
      headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': clientIp },
    });

  beforeAll(async () => {
    origin = await startTestOrigin('origin');
    clerk = await createClerkTestKeys();
    stranger = (await generateKeyPair('RS256')).privateKey;
    oidcKeys = await generateKeyPair('RS256');
    const clerkJwk = {
      ...(await exportJWK(await importSPKI(clerk.publicKeyPem, 'RS256', { extractable: true }))),
      kid: clerk.kid,
      alg: 'RS256',
      use: 'sig',
    };
    clerkJwks = await startJwksServer(async () => [clerkJwk], `Bearer ${SECRET_KEY}`);
    const oidcJwk = { ...(await exportJWK(oidcKeys.publicKey)), kid: 'idp-1', alg: 'RS256' };
    oidcJwks = await startJwksServer(async () => {
      await new Promise((resolve) => setTimeout(resolve, oidcJwksDelayMs));
      return [oidcJwk];
    });
  });

  afterAll(async () => {
    for (const gateway of gateways) await gateway.close();
    await origin?.close();
    await clerkJwks?.close();
    await oidcJwks?.close();
  });

  it("fetches Clerk's JWKS at most once per cooldown however many unknown kids arrive", async () => {
    const gateway = await gatewayWith({ GATEWAY_AUTH_FAILURES_PER_MINUTE: '0' });
    const valid = await signClerkToken(clerk, { userId: 'user_ok' });
    expect((await call(gateway, valid)).status).toBe(200);
    const before = clerkJwks.fetches;
    expect(before).toBe(1);

    const flood = await Promise.all(Array.from({ length: 60 }, () => unknownKidToken(stranger)));
    const answers = await Promise.all(flood.map((token, i) => call(gateway, token, `203.0.113.${i}`)));
    expect(answers.map((a) => a.status)).toEqual(flood.map(() => 401));
    expect(answers[0]!.json()).toMatchObject({ error: { code: 'invalid_token' } });
    // One refresh for the whole flood (the first unknown kid after start-up), none per token.
    expect(clerkJwks.fetches - before).toBeLessThanOrEqual(1);

    // Valid tokens keep working from the cached key set, without another fetch.
    const fetchesAfterFlood = clerkJwks.fetches;
    expect((await call(gateway, await signClerkToken(clerk, { userId: 'user_ok2' }))).status).toBe(200);
    expect(clerkJwks.fetches).toBe(fetchesAfterFlood);
  });

  it('does not refetch a failing OIDC JWKS endpoint for every token', async () => {
    oidcJwks.healthy = false;
    try {
      const gateway = await gatewayWith({ GATEWAY_AUTH_FAILURES_PER_MINUTE: '0' });
      const before = oidcJwks.fetches;
      const tokens = await Promise.all(
        Array.from({ length: 40 }, () =>
          unknownKidToken(oidcKeys.privateKey, { iss: ISSUER, aud: 'flood-api' }),
        ),
      );
      for (const [i, token] of tokens.entries()) {
        const answer = await call(gateway, token, `192.0.2.${i}`);
        expect(answer.status).toBe(401);
      }
      expect(oidcJwks.fetches - before).toBeLessThanOrEqual(1);
    } finally {
      oidcJwks.healthy = true;
    }
  });

  it('answers 429 too_many_auth_failures to a client after N failed authentications, and counts them', async () => {
    const gateway = await gatewayWith({ GATEWAY_AUTH_FAILURES_PER_MINUTE: '5' });
    const attacker = '198.51.100.66';
    for (let i = 0; i < 5; i++) {
      const answer = await call(gateway, await unknownKidToken(stranger), attacker);
      expect(answer.status).toBe(401);
    }
    const fetchesBefore = clerkJwks.fetches;
    const blocked = await call(gateway, await unknownKidToken(stranger), attacker);
    expect(blocked.status).toBe(429);
    expect(blocked.json()).toMatchObject({ error: { code: 'too_many_auth_failures' } });
    const retryAfter = Number(blocked.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Blocked before any verification: even a valid token from that client is refused.
    const valid = await signClerkToken(clerk, { userId: 'user_ok' });
    expect((await call(gateway, valid, attacker)).status).toBe(429);
    expect(clerkJwks.fetches).toBe(fetchesBefore);
    // Other clients are not affected.
    expect((await call(gateway, valid, '198.51.100.67')).status).toBe(200);

    const metrics = await gateway.registry.metrics();
    expect(metrics).toMatch(/vantageedge_gateway_auth_failures_total\{code="invalid_token"\} 5/);
    expect(metrics).toMatch(/vantageedge_gateway_auth_failures_refused_total 2/);
  });

  it("counts a client's failures per tenant: another tenant's page cannot lock a shared address out of every tenant", async () => {
    const gateway = await gatewayWith({
      GATEWAY_AUTH_FAILURES_PER_MINUTE: '3',
      GATEWAY_AUTH_FAILURES_PER_MINUTE_ALL_TENANTS: '7',
    });
    const apiKeyTenant = (subdomain: string) => {
      const originId = randomUUID();
      gateway.store.apply(
        buildSnapshot({
          subdomain,
          origins: [{ id: originId, targets: [origin.url] }],
          routes: [{ origin_id: originId, path_pattern: '/api/*', auth_mode: 'apikey_required' }],
          apiKeys: [{ key_hash: hashApiKey(TEST_PEPPER, `key-of-${subdomain}`) }],
        }),
      );
      return (key: string) =>
        send(gateway, `${subdomain}.localhost`, '/api/x', {
          headers: { 'x-api-key': key, 'x-forwarded-for': '198.51.100.120' },
        });
    };
    const [hostile, victim, third, fourth] = ['hostile', 'victim', 'third', 'fourth'].map(apiKeyTenant);
    // The hostile tenant's page makes the browsers behind one NAT fail on its own host.
    for (let i = 0; i < 3; i++) expect((await hostile!('wrong')).status).toBe(401);
    expect((await hostile!('wrong')).status).toBe(429);
    // The same address still reaches every other tenant.
    expect((await victim!('key-of-victim')).status).toBe(200);
    // Failures spread over tenants are bounded per address too: 3 + 3 + 1 = 7 verifications, then none.
    for (let i = 0; i < 3; i++) expect((await victim!('wrong')).status).toBe(401);
    expect((await third!('wrong')).status).toBe(401);
    const refused = await fourth!('key-of-fourth');
    expect(refused.status).toBe(429);
    expect(refused.json()).toMatchObject({ error: { code: 'too_many_auth_failures' } });
  });

  it('counts failures still being verified: a concurrent burst of forged tokens gets at most N verifications', async () => {
    // The replica has not fetched the tenant's key set yet, and the IdP is slow: every token waits for it.
    oidcJwksDelayMs = 300;
    const gateway = await gatewayWith({ GATEWAY_AUTH_FAILURES_PER_MINUTE: '5' });
    const forger = (await generateKeyPair('RS256')).privateKey;
    const now = Math.floor(Date.now() / 1000);
    // The tenant's issuer, audience and kid, signed by the wrong key: each one costs a signature check.
    const forged = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        new SignJWT({ aud: 'flood-api' })
          .setProtectedHeader({ alg: 'RS256', kid: 'idp-1' })
          .setSubject(`user_${i}`)
          .setIssuer(ISSUER)
          .setIssuedAt(now)
          .setExpirationTime(now + 300)
          .sign(forger),
      ),
    );
    const answers = await Promise.all(forged.map((token) => call(gateway, token, '198.51.100.99')));
    oidcJwksDelayMs = 0;
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((status) => status === 401).length).toBeLessThanOrEqual(5);
    expect(statuses.filter((status) => status === 429).length).toBeGreaterThanOrEqual(35);
    // A valid token from another client is still verified and served.
    const valid = await new SignJWT({ aud: 'flood-api' })
      .setProtectedHeader({ alg: 'RS256', kid: 'idp-1' })
      .setSubject('user_real')
      .setIssuer(ISSUER)
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .sign(oidcKeys.privateKey);
    expect((await call(gateway, valid, '198.51.100.100')).status).toBe(200);
  });

  it('remembers a kid a fresh key set lacked, so repeating it never refetches, while a new kid may', async () => {
    const keys = new RemoteKeySet(`${oidcJwks.url}/jwks`, {
      policy: { ...DEFAULT_JWKS_FETCH_POLICY, cooldownMs: 0 },
    });
    const before = oidcJwks.fetches;
    expect(await keys.jwk('idp-1')).toMatchObject({ kid: 'idp-1' });
    expect(await keys.jwk('forged-kid')).toBeUndefined();
    expect(oidcJwks.fetches - before).toBe(2);
    for (let i = 0; i < 20; i++) expect(await keys.jwk('forged-kid')).toBeUndefined();
    expect(await keys.jwk('idp-1')).toBeDefined();
    expect(oidcJwks.fetches - before).toBe(2);
    expect(await keys.jwk('another-kid')).toBeUndefined();
    expect(oidcJwks.fetches - before).toBe(3);
  });
});
