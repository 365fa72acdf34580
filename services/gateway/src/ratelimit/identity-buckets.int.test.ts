import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import {
  type ClerkTestKeys,
  createClerkTestKeys,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { MemoryLimitStore } from './memory-limit-store.js';
import { createRateLimitStage } from './rate-limit-stage.js';
import { createRateLimiter } from './rate-limiter.js';

/**
 * Regression tests: a `scope: user` limit counted a caller by its id alone, so callers of different
 * namespaces shared one bucket — a Clerk user and an OIDC subject with the same id, a calling service
 * and a user with the same id, and an OIDC subject `anon-ip:<ip>` and the anonymous clients of that
 * address. Each one could spend the other's allowance (here a tenant-wide limit of one request).
 */
type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

const ISSUER = 'https://idp.identity-buckets.test';
const SUBDOMAIN = `idbk${Date.now()}`;
const HOST = `${SUBDOMAIN}.localhost`;
/** A service account whose id is a Clerk-style user id (a tenant names its services freely). */
const SERVICE_ID = 'user_2sameasservice';

let origin: TestOrigin;
let gateway: TestGateway;
let clerk: ClerkTestKeys;
let jwks: Server;
let oidcKeys: KeyPair;
let serviceKeys: KeyPair;

beforeAll(async () => {
  clerk = await createClerkTestKeys();
  oidcKeys = await generateKeyPair('RS256');
  serviceKeys = await generateKeyPair('ES256');
  const oidcJwk = { ...(await exportJWK(oidcKeys.publicKey)), kid: 'idp-1', alg: 'RS256', use: 'sig' };
  jwks = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [oidcJwk] }));
  });
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
  origin = await startTestOrigin('identity-buckets-origin');
  const limiter = createRateLimiter({
    store: new MemoryLimitStore(),
    registry: createMetricsRegistry('identity_buckets', { defaultMetrics: false }),
    logger: createLogger({ service: 'test', level: 'error' }),
  });
  gateway = await startTestGateway(
    { CLERK_JWT_KEY: clerk.publicKeyPem, GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32' },
    { stages: [createRateLimitStage(limiter)] },
  );
  const originId = randomUUID();
  const serviceJwk = { ...(await exportJWK(serviceKeys.publicKey)), kid: 'svc-1', alg: 'ES256' };
  gateway.store.apply(
    buildSnapshot({
      subdomain: SUBDOMAIN,
      clerkOrgId: 'org_acme',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [
        { origin_id: originId, path_pattern: '/me/*', auth_mode: 'jwt_required', require_tenant_org: false },
        { origin_id: originId, path_pattern: '/internal/*', auth_mode: 'service' },
        { origin_id: originId, path_pattern: '/public/*' },
      ],
      settings: {
        // One request per caller, tenant-wide: the second request of a bucket is refused.
        rate_limit: { requests_per_second: 0.001, burst: 1, scope: 'user' },
        oidc: {
          issuer: ISSUER,
          audience: 'acme-api',
          jwks_url: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks`,
        },
        service_accounts: [{ id: SERVICE_ID, keys: [serviceJwk] }],
      },
    }),
  );
});

afterAll(async () => {
  await gateway?.close();
  await origin?.close();
  await new Promise<void>((resolve) => jwks?.close(() => resolve()));
});

const clerkToken = (userId: string) => signClerkToken(clerk, { userId, orgId: 'org_acme' });

const oidcToken = (sub: string) =>
  new SignJWT({})
    .setProtectedHeader({ alg: 'RS256', kid: 'idp-1' })
    .setIssuer(ISSUER)
    .setSubject(sub)
    .setAudience('acme-api')
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + 300)
    .sign(oidcKeys.privateKey);

const serviceToken = () => {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: 'svc-1' })
    .setIssuer(SERVICE_ID)
    .setSubject(SERVICE_ID)
    .setAudience(HOST)
    .setIssuedAt(now)
    .setExpirationTime(now + 60)
    .sign(serviceKeys.privateKey);
};

const get = (path: string, token?: string, clientIp = '198.51.100.1') =>
  send(gateway, HOST, path, {
    headers: {
      'x-forwarded-for': clientIp,
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
  });

describe('scope: user buckets', () => {
  it('regression: a Clerk user and an OIDC subject with the same id are counted apart', async () => {
    const id = `user_2${randomUUID().replaceAll('-', '')}`;
    expect((await get('/me/x', await clerkToken(id))).status).toBe(200);
    expect((await get('/me/x', await oidcToken(id))).status).toBe(200);
    // Each one's own bucket is spent.
    expect((await get('/me/x', await clerkToken(id))).status).toBe(429);
    expect((await get('/me/x', await oidcToken(id))).status).toBe(429);
  });

  it('regression: a calling service and a user with the same id are counted apart', async () => {
    expect((await get('/internal/x', await serviceToken())).status).toBe(200);
    expect((await get('/me/x', await oidcToken(SERVICE_ID))).status).toBe(200);
    expect((await get('/me/x', await clerkToken(SERVICE_ID))).status).toBe(200);
    expect((await get('/internal/x', await serviceToken())).status).toBe(429);
  });

  it('regression: a user whose id is `anon-ip:<address>` does not spend the anonymous clients’ bucket of that address', async () => {
    const clientIp = '203.0.113.77';
    expect((await get('/me/x', await oidcToken(`anon-ip:${clientIp}`), '192.0.2.1')).status).toBe(200);
    expect((await get('/public/x', undefined, clientIp)).status).toBe(200);
    expect((await get('/public/x', undefined, clientIp)).status).toBe(429);
  });
});
