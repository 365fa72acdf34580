import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type ClerkTestKeys,
  createClerkTestKeys,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCacheStage } from '../cache/cache-stage.js';
import type { ResponseCache } from '../cache/response-cache.js';
import { memoryResponseCache } from '../cache/testing/memory-response-cache.js';
import {
  type GatewayResponse,
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * Regression tests: a Clerk user id and a `sub` of the tenant's own OIDC provider were one identity
 * (both identity.userId alone), so on a jwt_required route with a per-caller cache an OIDC token whose
 * `sub` was a Clerk user's id got that user's cached response (MISS, then HIT), and the origin could
 * not tell the two apart. Every caller is now a principal qualified by who vouched for it, and the
 * origin is told the issuer (X-VantageEdge-Auth-Issuer).
 */
const ISSUER = 'https://idp.identity-namespaces.test';
const SUBDOMAIN = `idns${Date.now()}`;
const HOST = `${SUBDOMAIN}.localhost`;

let origin: TestOrigin;
let gateway: TestGateway;
let cache: ResponseCache;
let clerk: ClerkTestKeys;
let jwks: Server;
let oidcKeys: Awaited<ReturnType<typeof generateKeyPair>>;

beforeAll(async () => {
  clerk = await createClerkTestKeys();
  oidcKeys = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(oidcKeys.publicKey)), kid: 'idp-1', alg: 'RS256', use: 'sig' };
  jwks = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
  origin = await startTestOrigin('identity-namespaces-origin');
  cache = memoryResponseCache();
  gateway = await startTestGateway(
    { CLERK_JWT_KEY: clerk.publicKeyPem },
    { stages: [createCacheStage(cache)] },
  );
  const originId = randomUUID();
  const snapshot = buildSnapshot({
    subdomain: SUBDOMAIN,
    clerkOrgId: 'org_acme',
    origins: [{ id: originId, targets: [origin.url] }],
    routes: [
      {
        origin_id: originId,
        path_pattern: '/me/*',
        auth_mode: 'jwt_required',
        require_tenant_org: false,
        cache_policy: { mode: 'override', ttl_seconds: 60 },
      },
      { origin_id: originId, path_pattern: '/public/*' },
    ],
    settings: {
      oidc: {
        issuer: ISSUER,
        audience: 'acme-api',
        jwks_url: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks`,
      },
    },
  });
  gateway.store.apply(snapshot);
  await cache.prepareTenant(snapshot.tenant_id);
});

afterAll(async () => {
  await gateway?.close();
  await cache?.close();
  await origin?.close();
  await new Promise<void>((resolve) => jwks?.close(() => resolve()));
});

const clerkToken = (userId: string) => signClerkToken(clerk, { userId, orgId: 'org_acme' });

const oidcToken = (sub: string) =>
  new SignJWT({ scope: 'read' })
    .setProtectedHeader({ alg: 'RS256', kid: 'idp-1' })
    .setIssuer(ISSUER)
    .setSubject(sub)
    .setAudience('acme-api')
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + 300)
    .sign(oidcKeys.privateKey);

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

const originSaw = (response: GatewayResponse) =>
  (response.json()['headers'] ?? {}) as Record<string, string | undefined>;

describe('Clerk user ids and OIDC subjects', () => {
  it('regression: an OIDC subject equal to a Clerk user id does not get that user’s cached response', async () => {
    const path = `/me/profile-${randomUUID()}`;
    const clerkUser = await send(gateway, HOST, path, { headers: bearer(await clerkToken('user_2victim')) });
    const oidcSubject = await send(gateway, HOST, path, { headers: bearer(await oidcToken('user_2victim')) });
    expect(clerkUser.status).toBe(200);
    expect(clerkUser.headers['x-cache']).toBe('MISS');
    expect(oidcSubject.status).toBe(200);
    expect(oidcSubject.headers['x-cache']).toBe('MISS');
    expect(originSaw(oidcSubject)['x-vantageedge-auth-issuer']).toBe('oidc');
    // Each is still served its own entry.
    const clerkAgain = await send(gateway, HOST, path, { headers: bearer(await clerkToken('user_2victim')) });
    expect(clerkAgain.headers['x-cache']).toBe('HIT');
    expect(originSaw(clerkAgain)['x-vantageedge-auth-issuer']).toBe('clerk');
  });

  it('tells the origin which issuer vouched for the user, whatever the client sent', async () => {
    const spoof = { 'x-vantageedge-auth-issuer': 'clerk', 'x-vantageedge-user-id': 'user_2victim' };
    const viaOidc = await send(gateway, HOST, `/me/${randomUUID()}`, {
      headers: { ...bearer(await oidcToken('oidc-user-1')), ...spoof },
    });
    expect(originSaw(viaOidc)).toMatchObject({
      'x-vantageedge-auth-kind': 'user',
      'x-vantageedge-auth-issuer': 'oidc',
      'x-vantageedge-user-id': 'oidc-user-1',
    });
    const viaClerk = await send(gateway, HOST, `/me/${randomUUID()}`, {
      headers: bearer(await clerkToken('user_2clerk')),
    });
    expect(originSaw(viaClerk)).toMatchObject({
      'x-vantageedge-auth-issuer': 'clerk',
      'x-vantageedge-user-id': 'user_2clerk',
      'x-vantageedge-org-id': 'org_acme',
    });
    const anonymous = await send(gateway, HOST, '/public/x', { headers: spoof });
    expect(anonymous.status).toBe(200);
    expect(originSaw(anonymous)['x-vantageedge-auth-issuer']).toBeUndefined();
    expect(originSaw(anonymous)['x-vantageedge-user-id']).toBeUndefined();
  });

  // PHP, Rack, CGI and older gunicorn read `_` and `-` in a header name alike (HTTP_X_VANTAGEEDGE_SCOPES
  // either way), so such an origin takes these for the gateway's own identity headers.
  it("regression: drops a client's identity headers spelled with underscores", async () => {
    const spoof = {
      x_vantageedge_scopes: 'admin',
      X_VantageEdge_Org_Id: 'org_victim',
      'x-vantageedge_user_id': 'user_2victim',
      X_VANTAGEEDGE_AUTH_KIND: 'service',
    };
    const spelledWithUnderscores = (response: GatewayResponse) =>
      Object.keys(originSaw(response)).filter(
        (name) => name.includes('_') && name.replaceAll('_', '-').startsWith('x-vantageedge-'),
      );
    const viaOidc = await send(gateway, HOST, `/me/${randomUUID()}`, {
      headers: { ...bearer(await oidcToken('oidc-user-2')), ...spoof },
    });
    expect(viaOidc.status).toBe(200);
    expect(spelledWithUnderscores(viaOidc)).toEqual([]);
    expect(originSaw(viaOidc)['x-vantageedge-scopes']).toBe('read');
    const anonymous = await send(gateway, HOST, '/public/x', { headers: spoof });
    expect(anonymous.status).toBe(200);
    expect(spelledWithUnderscores(anonymous)).toEqual([]);
  });

  // PHP reads `.` in a variable name as `_`, and Caddy, FrankenPHP, lighttpd and PHP's own server pass a
  // header name with `.` on: X.VantageEdge.User-Id reaches such an origin as HTTP_X_VANTAGEEDGE_USER_ID.
  it("drops a client's identity headers spelled with dots", async () => {
    const spoof = {
      'x.vantageedge.scopes': 'admin',
      'X-VantageEdge.Org-Id': 'org_victim',
      'x.vantageedge_user.id': 'user_2victim',
      'X.VANTAGEEDGE.AUTH.KIND': 'service',
    };
    const spelledWithDots = (response: GatewayResponse) =>
      Object.keys(originSaw(response)).filter((name) => name.includes('.'));
    const viaOidc = await send(gateway, HOST, `/me/${randomUUID()}`, {
      headers: { ...bearer(await oidcToken('oidc-user-3')), ...spoof },
    });
    expect(viaOidc.status).toBe(200);
    expect(spelledWithDots(viaOidc)).toEqual([]);
    expect(originSaw(viaOidc)['x-vantageedge-scopes']).toBe('read');
    const anonymous = await send(gateway, HOST, '/public/x', { headers: spoof });
    expect(anonymous.status).toBe(200);
    expect(spelledWithDots(anonymous)).toEqual([]);
  });
});

/**
 * Regression tests: the token's `sub` and scopes went to the origin as header values unchecked. A
 * subject outside Latin-1 (or with CR/LF) made undici refuse the origin request: 502, counted against
 * the target, so a few such tokens took the tenant's origin out for everyone (503 no_healthy_upstream).
 * A scope with a space in a `scp` list reached the origin as two scopes the gateway never granted.
 */
describe('token claims the origin is told', () => {
  const oidcTokenWith = (sub: string, claims: Record<string, unknown>) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: 'idp-1' })
      .setIssuer(ISSUER)
      .setSubject(sub)
      .setAudience('acme-api')
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + 300)
      .sign(oidcKeys.privateKey);

  it('regression: refuses a sub that is no header value (401), and the origin stays in service', async () => {
    for (const sub of ['user\u0100', 'user\r\nx-injected: 1', 'a\u0000b', ' padded ', 'x'.repeat(256)]) {
      const refused = await send(gateway, HOST, `/me/${randomUUID()}`, {
        headers: bearer(await oidcTokenWith(sub, {})),
      });
      expect(refused.status).toBe(401);
      expect(refused.json()['error']).toMatchObject({ code: 'invalid_token' });
    }
    for (let i = 0; i < 20; i++) {
      await send(gateway, HOST, `/me/${randomUUID()}`, { headers: bearer(await oidcTokenWith(`ū${i}`, {})) });
    }
    const served = await send(gateway, HOST, `/me/${randomUUID()}`, {
      headers: bearer(await oidcTokenWith('user-ok', {})),
    });
    expect(served.status).toBe(200);
  });

  it('regression: forwards only scopes that are OAuth scope tokens, so none can read as two', async () => {
    const response = await send(gateway, HOST, `/me/${randomUUID()}`, {
      headers: bearer(
        await oidcTokenWith('scoped', { scp: ['read write', 'admin', 'x\r\ny: z', 'é', 'orders:read'] }),
      ),
    });
    expect(response.status).toBe(200);
    expect(originSaw(response)['x-vantageedge-scopes']).toBe('admin orders:read');
  });
});
