import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type ClerkTestKeys,
  createClerkTestKeys,
  OFFLINE_CLERK_ISSUER,
  signClerkTemplateToken,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
import { exportJWK, importSPKI } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
 * A tenant whose OIDC settings name the platform's Clerk instance (stored before the control plane
 * refused them): its issuer is Clerk's, its jwks_url serves Clerk's public keys and its audience is one
 * a Clerk JWT template can carry. Platform users' Clerk tokens sent to its host are still Clerk tokens:
 * authorized as Clerk users are, and never forwarded to the tenant's origin, which could replay them at
 * every other tenant and at the admin API.
 */
const AUDIENCE = 'hostile-audience';
const SUBDOMAIN = `clerkiss${Date.now()}`;
const HOST = `${SUBDOMAIN}.localhost`;

/** A route of `mode` taking any platform user (`allow_any_authenticated_user`, a route config field). */
const anyUser = (originId: string, path: string, mode: 'jwt_required' | 'jwt_or_apikey') => {
  const extra: Record<string, unknown> = { allow_any_authenticated_user: true };
  return { origin_id: originId, path_pattern: path, auth_mode: mode, ...extra };
};

let clerk: ClerkTestKeys;
let origin: TestOrigin;
let gateway: TestGateway;
/** A gateway verifying Clerk tokens with the instance's key alone: no CLERK_ISSUER, no publishable key. */
let keyOnlyGateway: TestGateway;
/** A gateway reading Clerk's key set from its Backend API (CLERK_SECRET_KEY), issuer unknown too. */
let keySetGateway: TestGateway;
let jwks: Server;
let clerkApi: Server;

beforeAll(async () => {
  clerk = await createClerkTestKeys();
  const clerkJwk = {
    ...(await exportJWK(await importSPKI(clerk.publicKeyPem, 'RS256', { extractable: true }))),
    kid: clerk.kid,
    alg: 'RS256',
    use: 'sig',
  };
  jwks = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [clerkJwk] }));
  });
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
  clerkApi = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [clerkJwk] }));
  });
  await new Promise<void>((resolve) => clerkApi.listen(0, '127.0.0.1', resolve));
  origin = await startTestOrigin('platform-issuer-oidc');
  gateway = await startTestGateway({
    CLERK_JWT_KEY: clerk.publicKeyPem,
    CLERK_ISSUER: OFFLINE_CLERK_ISSUER,
    GATEWAY_AUTH_FAILURES_PER_MINUTE: '0',
  });
  keyOnlyGateway = await startTestGateway({
    CLERK_JWT_KEY: clerk.publicKeyPem,
    GATEWAY_AUTH_FAILURES_PER_MINUTE: '0',
  });
  keySetGateway = await startTestGateway({
    CLERK_SECRET_KEY: 'sk_test_platform',
    CLERK_API_URL: `http://127.0.0.1:${(clerkApi.address() as AddressInfo).port}`,
    GATEWAY_AUTH_FAILURES_PER_MINUTE: '0',
  });
  const originId = randomUUID();
  const snapshot = buildSnapshot({
    subdomain: SUBDOMAIN,
    clerkOrgId: 'org_hostile',
    origins: [{ id: originId, targets: [origin.url] }],
    routes: [
      { origin_id: originId, path_pattern: '/members/*', auth_mode: 'jwt_required' },
      anyUser(originId, '/anyone/*', 'jwt_required'),
      anyUser(originId, '/either/*', 'jwt_or_apikey'),
    ],
    settings: {
      oidc: {
        issuer: OFFLINE_CLERK_ISSUER,
        audience: AUDIENCE,
        jwks_url: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`,
      },
    },
  });
  gateway.store.apply(snapshot);
  keyOnlyGateway.store.apply(snapshot);
  keySetGateway.store.apply(snapshot);
});

afterAll(async () => {
  await gateway?.close();
  await keyOnlyGateway?.close();
  await keySetGateway?.close();
  await new Promise<void>((resolve) => clerkApi?.close(() => resolve()));
  await origin?.close();
  await new Promise<void>((resolve) => jwks?.close(() => resolve()));
});

const originSaw = (response: GatewayResponse) =>
  (response.json()['headers'] ?? {}) as Record<string, string | undefined>;

const platformUserToken = () =>
  signClerkToken(clerk, {
    userId: `user_${randomUUID().slice(0, 8)}`,
    orgId: 'org_elsewhere',
    customClaims: { aud: AUDIENCE },
  });

describe("a tenant's OIDC issuer naming the platform's Clerk instance", () => {
  it('a platform user’s session token is a Clerk token there: the origin never gets it', async () => {
    for (const path of ['/anyone/profile', '/either/profile']) {
      const token = await platformUserToken();
      const response = await send(gateway, HOST, path, { headers: { authorization: `Bearer ${token}` } });
      expect(response.status).toBe(200);
      expect(originSaw(response)['authorization']).toBeUndefined();
      expect(originSaw(response)['x-vantageedge-auth-issuer']).toBe('clerk');
    }
  });

  it('a platform user outside the tenant’s org is refused where the route takes only its members', async () => {
    const token = await platformUserToken();
    const response = await send(gateway, HOST, '/members/profile', {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(403);
  });

  it('a Clerk JWT template token carrying the tenant’s audience is not taken as the tenant’s OIDC token', async () => {
    const token = await signClerkTemplateToken(clerk, { userId: 'user_template', claims: { aud: AUDIENCE } });
    const response = await send(gateway, HOST, '/anyone/profile', {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(401);
  });
});

describe("the same tenant at a gateway that knows Clerk's key but not its issuer", () => {
  it('a platform user’s session token is still a Clerk token there: refused outside the org, never forwarded', async () => {
    const members = await send(keyOnlyGateway, HOST, '/members/profile', {
      headers: { authorization: `Bearer ${await platformUserToken()}` },
    });
    expect(members.status).toBe(403);
    const anyone = await send(keyOnlyGateway, HOST, '/anyone/profile', {
      headers: { authorization: `Bearer ${await platformUserToken()}` },
    });
    expect(anyone.status).toBe(200);
    expect(originSaw(anyone)['authorization']).toBeUndefined();
    expect(originSaw(anyone)['x-vantageedge-auth-issuer']).toBe('clerk');
  });
});

describe("the same tenant at a gateway that reads Clerk's key set but does not know its issuer", () => {
  it('a platform user’s session token is still a Clerk token there: refused outside the org, never forwarded', async () => {
    const members = await send(keySetGateway, HOST, '/members/profile', {
      headers: { authorization: `Bearer ${await platformUserToken()}` },
    });
    expect(members.status).toBe(403);
    const anyone = await send(keySetGateway, HOST, '/anyone/profile', {
      headers: { authorization: `Bearer ${await platformUserToken()}` },
    });
    expect(anyone.status).toBe(200);
    expect(originSaw(anyone)['authorization']).toBeUndefined();
    expect(originSaw(anyone)['x-vantageedge-auth-issuer']).toBe('clerk');
  });
});
