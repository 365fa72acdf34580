import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import {
  type ClerkTestKeys,
  createClerkTestKeys,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
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

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

/** Every auth mode accepting the right credential and rejecting wrong, expired, revoked, other-tenant and missing ones. */
describe('gateway authentication', () => {
  let origin: TestOrigin;
  let gateway: TestGateway;
  let clerk: ClerkTestKeys;
  let otherClerk: ClerkTestKeys;
  let oidcKeys: KeyPair;
  let jwksServer: Server;
  let jwksFetches = 0;
  let serviceKeys: KeyPair;
  let paymentsKeys: KeyPair;
  let strangerKeys: KeyPair;
  let strangerKeysAsRsa: KeyPair;
  const acmeId = randomUUID();
  const globexId = randomUUID();
  const initechId = randomUUID();
  const hooliId = randomUUID();
  const keys = {
    reader: 've_live_reader_000000000000000000000000',
    writer: 've_live_writer_000000000000000000000000',
    expired: 've_live_expired_00000000000000000000000',
    revoked: 've_live_revoked_00000000000000000000000',
    globex: 've_live_globex_000000000000000000000000',
  };
  const issuer = 'https://idp.example.test';

  async function acmeSnapshot(
    version: number,
    apiKeys: Array<{ key: string; scopes?: string[]; expires_at?: string }>,
  ) {
    const originId = randomUUID();
    const serviceJwk: JWK = { ...(await exportJWK(serviceKeys.publicKey)), kid: 'svc-1', alg: 'ES256' };
    const paymentsJwk: JWK = { ...(await exportJWK(paymentsKeys.publicKey)), kid: 'pay-1', alg: 'ES256' };
    return buildSnapshot({
      tenantId: acmeId,
      version,
      subdomain: 'acme',
      clerkOrgId: 'org_acme',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [
        { origin_id: originId, path_pattern: '/keys/*', auth_mode: 'apikey_required' },
        {
          origin_id: originId,
          path_pattern: '/write/*',
          auth_mode: 'apikey_required',
          required_scopes: ['write'],
        },
        { origin_id: originId, path_pattern: '/user/*', auth_mode: 'jwt_required' },
        {
          origin_id: originId,
          path_pattern: '/invoices/*',
          auth_mode: 'jwt_required',
          required_scopes: ['org:invoices:manage'],
        },
        {
          origin_id: originId,
          path_pattern: '/any-org/*',
          auth_mode: 'jwt_required',
          require_tenant_org: false,
        },
        { origin_id: originId, path_pattern: '/either/*', auth_mode: 'jwt_or_apikey' },
        {
          origin_id: originId,
          path_pattern: '/internal/*',
          auth_mode: 'service',
          required_scopes: ['billing'],
        },
        {
          origin_id: originId,
          path_pattern: '/internal-admin/*',
          auth_mode: 'service',
          required_scopes: ['admin'],
        },
      ],
      apiKeys: apiKeys.map((k) => ({
        key_hash: hashApiKey(TEST_PEPPER, k.key),
        scopes: k.scopes ?? [],
        ...(k.expires_at ? { expires_at: k.expires_at } : {}),
      })),
      settings: {
        oidc: {
          issuer,
          audience: 'acme-api',
          jwks_url: `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`,
        },
        service_accounts: [
          { id: 'billing-service', keys: [serviceJwk], scopes: ['billing'] },
          { id: 'payments-service', keys: [paymentsJwk], scopes: ['billing', 'payments'] },
        ],
      },
    });
  }

  beforeAll(async () => {
    clerk = await createClerkTestKeys();
    otherClerk = await createClerkTestKeys();
    oidcKeys = await generateKeyPair('RS256');
    serviceKeys = await generateKeyPair('ES256');
    paymentsKeys = await generateKeyPair('ES256');
    strangerKeys = await generateKeyPair('ES256');
    strangerKeysAsRsa = await generateKeyPair('RS256');
    const oidcJwk = { ...(await exportJWK(oidcKeys.publicKey)), kid: 'idp-1', alg: 'RS256', use: 'sig' };
    jwksServer = createServer((_req, res) => {
      jwksFetches++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [oidcJwk] }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
    origin = await startTestOrigin('origin');
    gateway = await startTestGateway({
      CLERK_JWT_KEY: clerk.publicKeyPem,
      CLERK_AUTHORIZED_PARTIES: 'https://app.acme.test',
    });
    gateway.store.apply(
      await acmeSnapshot(1, [
        { key: keys.reader, scopes: ['read'] },
        { key: keys.writer, scopes: ['read', 'write'] },
        { key: keys.expired, expires_at: '2020-01-01T00:00:00Z' },
        { key: keys.revoked },
      ]),
    );
    const globexOrigin = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        tenantId: globexId,
        subdomain: 'globex',
        origins: [{ id: globexOrigin, targets: [origin.url] }],
        routes: [{ origin_id: globexOrigin, path_pattern: '/keys/*', auth_mode: 'apikey_required' }],
        apiKeys: [{ key_hash: hashApiKey(TEST_PEPPER, keys.globex) }],
      }),
    );
    // A tenant without a Clerk organization: its users are its user list.
    const initechOrigin = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        tenantId: initechId,
        subdomain: 'initech',
        clerkOrgId: null,
        clerkUserIds: ['user_initech_owner'],
        origins: [{ id: initechOrigin, targets: [origin.url] }],
        routes: [
          { origin_id: initechOrigin, path_pattern: '/user/*', auth_mode: 'jwt_required' },
          { origin_id: initechOrigin, path_pattern: '/either/*', auth_mode: 'jwt_or_apikey' },
        ],
      }),
    );
    // A tenant taking the Clerk tokens of its own app only (its settings' authorized_parties).
    const hooliOrigin = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        tenantId: hooliId,
        subdomain: 'hooli',
        clerkOrgId: 'org_hooli',
        origins: [{ id: hooliOrigin, targets: [origin.url] }],
        routes: [{ origin_id: hooliOrigin, path_pattern: '/user/*', auth_mode: 'jwt_required' }],
        settings: {
          authorized_parties: ['https://app.hooli.test'],
        },
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
    await new Promise((resolve) => jwksServer?.close(resolve));
  });

  const forwarded = (response: { json: () => Record<string, unknown> }) =>
    response.json()['headers'] as Record<string, string | undefined>;

  describe('API keys', () => {
    it('accepts a valid key from X-API-Key or Authorization: Bearer and forwards its id and scopes', async () => {
      for (const headers of [{ 'x-api-key': keys.reader }, { authorization: `Bearer ${keys.reader}` }]) {
        const response = await send(gateway, 'acme.localhost', '/keys/x', { headers });
        expect(response.status).toBe(200);
        expect(forwarded(response)['x-vantageedge-auth-kind']).toBe('api_key');
        expect(forwarded(response)['x-vantageedge-scopes']).toBe('read');
        expect(forwarded(response)['authorization']).toBeUndefined();
      }
    });

    it.each([
      ['missing', {}, 'missing_credentials'],
      ['wrong', { 'x-api-key': 've_live_wrong_0000000000000000000000000' }, 'invalid_api_key'],
      ['expired', { 'x-api-key': 've_live_expired_00000000000000000000000' }, 'api_key_expired'],
      ["another tenant's", { 'x-api-key': 've_live_globex_000000000000000000000000' }, 'invalid_api_key'],
    ])('rejects a %s key with 401 and WWW-Authenticate', async (_name, headers, code) => {
      const before = origin.seen.length;
      const response = await send(gateway, 'acme.localhost', '/keys/x', { headers });
      expect(response.status).toBe(401);
      expect(response.headers['www-authenticate']).toContain('ApiKey');
      expect(response.json()).toMatchObject({ error: { code } });
      expect(origin.seen.length).toBe(before);
    });

    it('answers 403 insufficient_scope for a key without the route scope', async () => {
      const response = await send(gateway, 'acme.localhost', '/write/x', {
        headers: { 'x-api-key': keys.reader },
      });
      expect(response.status).toBe(403);
      expect(response.json()).toMatchObject({ error: { code: 'insufficient_scope' } });
      const allowed = await send(gateway, 'acme.localhost', '/write/x', {
        headers: { 'x-api-key': keys.writer },
      });
      expect(allowed.status).toBe(200);
    });

    it('rejects a key as soon as a snapshot without it (revoked) is applied', async () => {
      expect(
        (await send(gateway, 'acme.localhost', '/keys/x', { headers: { 'x-api-key': keys.revoked } })).status,
      ).toBe(200);
      gateway.store.apply(
        await acmeSnapshot(2, [
          { key: keys.reader, scopes: ['read'] },
          { key: keys.writer, scopes: ['read', 'write'] },
        ]),
      );
      const response = await send(gateway, 'acme.localhost', '/keys/x', {
        headers: { 'x-api-key': keys.revoked },
      });
      expect(response.status).toBe(401);
      expect(response.json()).toMatchObject({ error: { code: 'invalid_api_key' } });
    });
  });

  describe('Clerk session tokens', () => {
    const token = (claims: Partial<Parameters<typeof signClerkToken>[1]> = {}, keyPair = clerk) =>
      signClerkToken(keyPair, {
        userId: 'user_1',
        orgId: 'org_acme',
        azp: 'https://app.acme.test',
        ...claims,
      });

    it('accepts a v2 and a v1 token of the tenant org and forwards user and org', async () => {
      for (const version of [2, 1] as const) {
        const response = await send(gateway, 'acme.localhost', '/user/me', {
          headers: { authorization: `Bearer ${await token({ version, userId: `user_v${version}` })}` },
        });
        expect(response.status).toBe(200);
        expect(forwarded(response)).toMatchObject({
          'x-vantageedge-auth-kind': 'user',
          'x-vantageedge-user-id': `user_v${version}`,
          'x-vantageedge-org-id': 'org_acme',
        });
      }
    });

    it.each([
      ['missing', async () => undefined, 'missing_credentials'],
      ['signed by another key', async () => token({}, otherClerk), 'invalid_token'],
      ['expired', async () => token({ expiresInSeconds: -60 }), 'token_expired'],
      ['from an unauthorized party', async () => token({ azp: 'https://evil.test' }), 'invalid_token'],
      ['garbage', async () => 'not.a.jwt', 'invalid_token'],
    ])('rejects a %s token with 401 and a Bearer challenge', async (_name, make, code) => {
      const value = await make();
      const response = await send(gateway, 'acme.localhost', '/user/me', {
        headers: value === undefined ? {} : { authorization: `Bearer ${value}` },
      });
      expect(response.status).toBe(401);
      expect(response.headers['www-authenticate']).toMatch(/^Bearer realm="vantageedge"/);
      expect(response.json()).toMatchObject({ error: { code } });
    });

    it("answers 403 for a valid token of another organization, unless the route doesn't require the org", async () => {
      const otherOrg = await token({ orgId: 'org_globex' });
      const response = await send(gateway, 'acme.localhost', '/user/me', {
        headers: { authorization: `Bearer ${otherOrg}` },
      });
      expect(response.status).toBe(403);
      expect(response.json()).toMatchObject({ error: { code: 'wrong_organization' } });
      const open = await send(gateway, 'acme.localhost', '/any-org/me', {
        headers: { authorization: `Bearer ${otherOrg}` },
      });
      expect(open.status).toBe(200);
    });

    it('regression: a tenant without a Clerk org accepts only its own users, not any Clerk user of any org', async () => {
      const owner = await token({ userId: 'user_initech_owner', orgId: 'org_unrelated' });
      const ownerWithoutOrg = await token({ userId: 'user_initech_owner', orgId: '' });
      for (const bearer of [owner, ownerWithoutOrg]) {
        const allowed = await send(gateway, 'initech.localhost', '/user/me', {
          headers: { authorization: `Bearer ${bearer}` },
        });
        expect(allowed.status, allowed.text).toBe(200);
        expect(forwarded(allowed)['x-vantageedge-user-id']).toBe('user_initech_owner');
      }
      const before = origin.seen.length;
      for (const path of ['/user/me', '/either/me']) {
        for (const stranger of [
          await token({ userId: 'user_stranger', orgId: 'org_globex' }),
          await token({ userId: 'user_stranger', orgId: '' }),
        ]) {
          const refused = await send(gateway, 'initech.localhost', path, {
            headers: { authorization: `Bearer ${stranger}` },
          });
          expect(refused.status, `${path}: ${refused.text}`).toBe(403);
          expect(refused.json()).toMatchObject({ error: { code: 'not_a_tenant_user' } });
        }
      }
      expect(origin.seen.length).toBe(before);
    });

    // A Clerk session token is the user's credential at every tenant that admits them and at the admin
    // API: an origin that got it could replay it there as the user.
    it("regression: keeps a user's Clerk session token from the origin of a route admitting any org", async () => {
      const initechOwner = await token({ userId: 'user_initech_owner', orgId: 'org_unrelated' });
      const atAcme = await send(gateway, 'acme.localhost', '/any-org/me', {
        headers: { authorization: `Bearer ${initechOwner}` },
      });
      expect(atAcme.status).toBe(200);
      expect(forwarded(atAcme)).toMatchObject({
        'x-vantageedge-auth-kind': 'user',
        'x-vantageedge-auth-issuer': 'clerk',
        'x-vantageedge-user-id': 'user_initech_owner',
      });
      expect(forwarded(atAcme)['authorization']).toBeUndefined();
    });

    // Clerk's SDK, and so the admin API, reads a v2 token's org from `o` only and a v1 token's from
    // `org_id` only: the other format's claims beside them can come only from custom session claims,
    // which an operator may build from what a user edits (their unsafe metadata).
    it("regression: reads a token's org and permissions as Clerk's SDK does, never the other version's claims", async () => {
      const forged = [
        // v2 without an active org, the v1 org claims added by custom session claims
        await token({
          orgId: '',
          customClaims: { org_id: 'org_acme', org_permissions: ['org:invoices:manage'] },
        }),
        // v1 without an org, a v2 `o` added
        await token({ orgId: '', version: 1, customClaims: { o: { id: 'org_acme', rol: 'admin' } } }),
      ];
      for (const bearer of forged) {
        const refused = await send(gateway, 'acme.localhost', '/user/me', {
          headers: { authorization: `Bearer ${bearer}` },
        });
        expect(refused.status, refused.text).toBe(403);
        expect(refused.json()).toMatchObject({ error: { code: 'wrong_organization' } });
      }
      // A v2 member of the tenant's org: org_permissions beside `o` grant nothing.
      const member = await token({ customClaims: { org_permissions: ['org:invoices:manage'] } });
      const notGranted = await send(gateway, 'acme.localhost', '/invoices/1', {
        headers: { authorization: `Bearer ${member}` },
      });
      expect(notGranted.status, notGranted.text).toBe(403);
      expect(notGranted.json()).toMatchObject({ error: { code: 'insufficient_scope' } });
    });

    it("grants a v2 member the org permissions its `o.per`/`o.fpm` and `fea` claims give, as Clerk's SDK reads them", async () => {
      // Features `invoices` (org) and `profile` (user); permissions manage (bit 0) and read (bit 1):
      // invoices has both (3), the user feature's bits are not org permissions.
      const member = await token({
        customClaims: { fea: 'o:invoices,u:profile' },
        orgPermissions: { per: 'manage,read', fpm: '3,1' },
      });
      const granted = await send(gateway, 'acme.localhost', '/invoices/1', {
        headers: { authorization: `Bearer ${member}` },
      });
      expect(granted.status, granted.text).toBe(200);
      expect(forwarded(granted)['x-vantageedge-scopes']).toBe('org:invoices:manage org:invoices:read');
      // The same permissions in another org's token are no scopes here.
      const otherOrg = await token({
        orgId: 'org_globex',
        customClaims: { fea: 'o:invoices' },
        orgPermissions: { per: 'manage,read', fpm: '3' },
      });
      const refused = await send(gateway, 'acme.localhost', '/any-org/x', {
        headers: { authorization: `Bearer ${otherOrg}` },
      });
      expect(refused.status).toBe(200);
      expect(forwarded(refused)['x-vantageedge-scopes']).toBeUndefined();
    });

    it('jwt_or_apikey accepts either credential', async () => {
      const jwt = await send(gateway, 'acme.localhost', '/either/x', {
        headers: { authorization: `Bearer ${await token()}` },
      });
      const key = await send(gateway, 'acme.localhost', '/either/x', {
        headers: { 'x-api-key': keys.reader },
      });
      const none = await send(gateway, 'acme.localhost', '/either/x');
      expect([jwt.status, key.status, none.status]).toEqual([200, 200, 401]);
      expect(forwarded(jwt)['x-vantageedge-auth-kind']).toBe('user');
      expect(forwarded(key)['x-vantageedge-auth-kind']).toBe('api_key');
    });
  });

  describe('OIDC access tokens (tenant.settings.oidc)', () => {
    const oidcToken = (
      claims: { aud?: string; exp?: number; nbf?: number; scope?: string } = {},
      keyPair: KeyPair = oidcKeys,
    ) =>
      new SignJWT({
        scope: claims.scope ?? 'read profile',
        ...(claims.nbf === undefined ? {} : { nbf: claims.nbf }),
      })
        .setProtectedHeader({ alg: 'RS256', kid: 'idp-1' })
        .setIssuer(issuer)
        .setSubject('oidc-user-7')
        .setAudience(claims.aud ?? 'acme-api')
        .setIssuedAt()
        .setExpirationTime(claims.exp ?? Math.floor(Date.now() / 1000) + 300)
        .sign(keyPair.privateKey);

    it('accepts a token of the configured issuer and audience, fetching the JWKS once', async () => {
      for (let i = 0; i < 3; i++) {
        const response = await send(gateway, 'acme.localhost', '/any-org/x', {
          headers: { authorization: `Bearer ${await oidcToken()}` },
        });
        expect(response.status).toBe(200);
        expect(forwarded(response)).toMatchObject({
          'x-vantageedge-user-id': 'oidc-user-7',
          'x-vantageedge-scopes': 'read profile',
        });
      }
      expect(jwksFetches).toBe(1);
    });

    it("regression: accepts a token from a provider whose clock is a few seconds ahead (5 s, as for Clerk's)", async () => {
      const call = async (secondsAhead: number) => {
        const nbf = Math.floor(Date.now() / 1000) + secondsAhead;
        return send(gateway, 'acme.localhost', '/any-org/x', {
          headers: { authorization: `Bearer ${await oidcToken({ nbf })}` },
        });
      };
      expect((await call(3)).status).toBe(200);
      expect((await call(30)).status).toBe(401);
    });

    it.each([
      ['wrong audience', () => oidcToken({ aud: 'other-api' }), 'invalid_token'],
      ['expired', () => oidcToken({ exp: Math.floor(Date.now() / 1000) - 60 }), 'token_expired'],
      ['wrong key', () => oidcToken({}, strangerKeysAsRsa), 'invalid_token'],
    ])('rejects a %s token', async (_name, make, code) => {
      const response = await send(gateway, 'acme.localhost', '/any-org/x', {
        headers: { authorization: `Bearer ${await make()}` },
      });
      expect(response.status).toBe(401);
      expect(response.json()).toMatchObject({ error: { code } });
    });
  });

  describe('service tokens (RFC 7523-style JWTs, tenant.settings.service_accounts)', () => {
    const serviceToken = (
      claims: {
        aud?: string;
        lifetime?: number;
        iatOffset?: number;
        scope?: string;
        sub?: string;
        kid?: string;
      } = {},
      keyPair: KeyPair = serviceKeys,
    ) => {
      const now = Math.floor(Date.now() / 1000) + (claims.iatOffset ?? 0);
      const sub = claims.sub ?? 'billing-service';
      return new SignJWT({ scope: claims.scope ?? 'billing' })
        .setProtectedHeader({ alg: 'ES256', kid: claims.kid ?? 'svc-1' })
        .setIssuer(sub)
        .setSubject(sub)
        .setAudience(claims.aud ?? 'acme.localhost')
        .setIssuedAt(now)
        .setExpirationTime(now + (claims.lifetime ?? 60))
        .sign(keyPair.privateKey);
    };

    it('accepts a short-lived token signed by a registered key, for any of the tenant hosts', async () => {
      for (const aud of ['acme.localhost', 'acme.vantageedge.dev']) {
        const response = await send(gateway, 'acme.localhost', '/internal/charge', {
          headers: { authorization: `Bearer ${await serviceToken({ aud })}` },
        });
        expect(response.status).toBe(200);
        expect(forwarded(response)).toMatchObject({
          'x-vantageedge-auth-kind': 'service',
          'x-vantageedge-service-id': 'billing-service',
        });
      }
    });

    it.each([
      ['missing', async () => undefined, 401, 'missing_credentials'],
      ['signed by an unknown key', () => serviceToken({}, strangerKeys), 401, 'invalid_token'],
      ["for another tenant's host", () => serviceToken({ aud: 'globex.localhost' }), 401, 'invalid_token'],
      ['expired', () => serviceToken({ iatOffset: -120, lifetime: 60 }), 401, 'token_expired'],
      ['too long-lived', () => serviceToken({ lifetime: 3600 }), 401, 'invalid_token'],
      ['without the route scope', () => serviceToken({ scope: 'reports' }), 403, 'insufficient_scope'],
    ])('rejects a %s token', async (_name, make, status, code) => {
      const value = await make();
      const response = await send(gateway, 'acme.localhost', '/internal/charge', {
        headers: value === undefined ? {} : { authorization: `Bearer ${value}` },
      });
      expect(response.status).toBe(status);
      expect(response.json()).toMatchObject({ error: { code } });
    });

    it("regression: accepts a token from a service whose clock is a few seconds ahead (5 s, as for Clerk's)", async () => {
      const call = async (iatOffset: number) =>
        send(gateway, 'acme.localhost', '/internal/charge', {
          headers: { authorization: `Bearer ${await serviceToken({ iatOffset })}` },
        });
      expect((await call(3)).status).toBe(200);
      const ahead = await call(30);
      expect(ahead.status).toBe(401);
      expect(ahead.json()).toMatchObject({ error: { code: 'invalid_token' } });
    });

    it('regression: a service key cannot mint a token for another service identity', async () => {
      const before = origin.seen.length;
      for (const impersonation of [
        // billing's key, payments' identity
        await serviceToken({ sub: 'payments-service' }),
        // billing's key presented under payments' kid
        await serviceToken({ sub: 'payments-service', kid: 'pay-1' }),
        // no kid: the key (and so the service) cannot be known
        await new SignJWT({ scope: 'billing' })
          .setProtectedHeader({ alg: 'ES256' })
          .setSubject('billing-service')
          .setAudience('acme.localhost')
          .setIssuedAt()
          .setExpirationTime('1m')
          .sign(serviceKeys.privateKey),
      ]) {
        const response = await send(gateway, 'acme.localhost', '/internal/charge', {
          headers: { authorization: `Bearer ${impersonation}` },
        });
        expect(response.status, response.text).toBe(401);
        expect(response.json()).toMatchObject({ error: { code: 'invalid_token' } });
      }
      expect(origin.seen.length).toBe(before);
      // Each service's own key still works for itself.
      const own = await serviceToken({ sub: 'payments-service', kid: 'pay-1' }, paymentsKeys);
      const response = await send(gateway, 'acme.localhost', '/internal/charge', {
        headers: { authorization: `Bearer ${own}` },
      });
      expect(response.status, response.text).toBe(200);
      expect(forwarded(response)['x-vantageedge-service-id']).toBe('payments-service');
    });

    it('regression: a service token cannot grant itself scopes its service was not granted', async () => {
      const greedy = await serviceToken({ scope: 'billing admin' });
      const refused = await send(gateway, 'acme.localhost', '/internal-admin/x', {
        headers: { authorization: `Bearer ${greedy}` },
      });
      expect(refused.status, refused.text).toBe(403);
      expect(refused.json()).toMatchObject({ error: { code: 'insufficient_scope' } });
      const allowed = await send(gateway, 'acme.localhost', '/internal/charge', {
        headers: { authorization: `Bearer ${greedy}` },
      });
      expect(allowed.status, allowed.text).toBe(200);
      // Only the granted scopes reach the origin.
      expect(forwarded(allowed)['x-vantageedge-scopes']).toBe('billing');
    });

    it('rejects a Clerk user token on a service route', async () => {
      const userToken = await signClerkToken(clerk, {
        userId: 'u',
        orgId: 'org_acme',
        azp: 'https://app.acme.test',
      });
      const response = await send(gateway, 'acme.localhost', '/internal/charge', {
        headers: { authorization: `Bearer ${userToken}` },
      });
      expect(response.status).toBe(401);
    });
  });

  describe('verified-token cache', () => {
    it('regression: a token verified for one tenant is not taken from the cache at another tenant, whose own rules refuse it', async () => {
      const hooliMember = () =>
        signClerkToken(clerk, { userId: 'user_h', orgId: 'org_hooli', azp: 'https://app.acme.test' });
      // At hooli, a token minted for another tenant's app is refused.
      const fresh = await send(gateway, 'hooli.localhost', '/user/me', {
        headers: { authorization: `Bearer ${await hooliMember()}` },
      });
      expect(fresh.status, fresh.text).toBe(401);
      // The same kind of token, first accepted (and cached) at acme as a Clerk session …
      const bearer = await hooliMember();
      const atAcme = await send(gateway, 'acme.localhost', '/any-org/me', {
        headers: { authorization: `Bearer ${bearer}` },
      });
      expect(atAcme.status, atAcme.text).toBe(200);
      // … is still refused at hooli: what acme's verification found does not apply there.
      const before = origin.seen.length;
      const atHooli = await send(gateway, 'hooli.localhost', '/user/me', {
        headers: { authorization: `Bearer ${bearer}` },
      });
      expect(atHooli.status, atHooli.text).toBe(401);
      expect(atHooli.json()).toMatchObject({ error: { code: 'invalid_token' } });
      expect(origin.seen.length).toBe(before);
    });
  });
});
