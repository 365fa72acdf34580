import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

const ISSUER = 'https://idp.cache.test';
const AUDIENCE = 'cache-api';

/**
 * An OIDC token verified once is served from the verified-token cache until its exp, but only under the
 * tenant's OIDC settings it was verified with: a new issuer, audience or jwks_url is a new judgement.
 */
describe('verified OIDC tokens and a change of the tenant’s OIDC settings', () => {
  let signer: CryptoKey;
  let jwks: Server;
  let jwksBase: string;
  const jwksRequests: string[] = [];
  let origin: TestOrigin;
  let gateway: TestGateway;
  const tenantId = randomUUID();
  const originId = randomUUID();
  let version = 0;

  const apply = (oidc: { issuer: string; audience: string; jwks_url: string }) =>
    gateway.store.apply(
      buildSnapshot({
        tenantId,
        version: ++version,
        subdomain: 'oidc-cache',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [{ origin_id: originId, path_pattern: '/user/*', auth_mode: 'jwt_required' }],
        settings: { oidc },
      }),
    );
  const settings = (changes: Partial<{ issuer: string; audience: string; jwks_url: string }> = {}) => ({
    issuer: ISSUER,
    audience: AUDIENCE,
    jwks_url: `${jwksBase}/good`,
    ...changes,
  });
  const call = (token: string) =>
    send(gateway, 'oidc-cache.localhost', '/user/me', { headers: { authorization: `Bearer ${token}` } });
  const tokenFor = (issuer = ISSUER) =>
    new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(issuer)
      .setAudience(AUDIENCE)
      .setSubject('user-1')
      .setExpirationTime('5m')
      .sign(signer);

  beforeAll(async () => {
    const pair = await generateKeyPair('RS256');
    signer = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    jwks = createServer((req, res) => {
      jwksRequests.push(req.url ?? '/');
      // `/good` lists the signing key; `/other` is a provider's set without it.
      res.end(JSON.stringify({ keys: req.url === '/good' ? [jwk] : [] }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    jwksBase = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}`;
    origin = await startTestOrigin('origin');
    gateway = await startTestGateway({ GATEWAY_AUTH_FAILURES_PER_MINUTE: '0' });
  });

  beforeEach(() => {
    apply(settings());
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
    await new Promise<void>((resolve) => {
      jwks?.close(() => resolve());
      jwks?.closeAllConnections();
    });
  });

  it('accepts a verified token again without fetching the key set again', async () => {
    const token = await tokenFor();
    expect((await call(token)).status).toBe(200);
    const fetched = jwksRequests.length;
    expect((await call(token)).status).toBe(200);
    expect(jwksRequests.length).toBe(fetched);
  });

  it.each([
    ['jwks_url', () => settings({ jwks_url: `${jwksBase}/other` })],
    ['audience', () => settings({ audience: 'another-api' })],
    ['issuer', () => settings({ issuer: 'https://idp.elsewhere.test' })],
  ])('refuses a verified token once a snapshot changes the tenant’s %s', async (_field, changed) => {
    const token = await tokenFor();
    expect((await call(token)).status).toBe(200);
    apply(changed());
    const refused = await call(token);
    expect(refused.status).toBe(401);
    expect(refused.json()).toMatchObject({ error: { code: 'invalid_token' } });
  });
});
