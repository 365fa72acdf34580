import { randomUUID } from 'node:crypto';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CompiledTenant } from '../config/compiled-tenant.js';
import { GatewayConfigStore } from '../config/gateway-config-store.js';
import { buildSnapshot, type TestRoute } from '../testing/snapshots.js';
import { Authenticator } from './authenticator.js';
import { RemoteJwksRegistry, type TrustedKeySet } from './jwks.js';

const ISSUER = 'https://idp.settings.test';
const JWKS_URL = 'https://idp.settings.test/jwks';

/** Every tenant key set serves the one signing key; each signature check asks it for the key once. */
class CountingKeySets extends RemoteJwksRegistry {
  lookups = 0;
  readonly #key: CryptoKey;

  constructor(key: CryptoKey) {
    super();
    this.#key = key;
  }

  override acquire(_url: string): TrustedKeySet {
    return {
      getKey: async () => {
        this.lookups++;
        return this.#key;
      },
      withdrawals: 0,
      stillTrusts: () => true,
      listedKey: () => undefined,
      stillLists: () => true,
      onWithdrawal: () => () => {},
      load: async () => {},
    };
  }

  override release(_url: string): void {}
}

/**
 * A verified token is kept for the tenant until its exp, and is checked again only when a snapshot
 * changes what decides whether that token is valid at the tenant: the OIDC issuer, audience and key set
 * for user tokens, the service accounts (keys and scopes) and the tenant's host names (the audience)
 * for service tokens. Editing a route, as tenants do all day, keeps every token verified.
 */
describe('verified tokens across snapshots of their tenant', () => {
  let signer: CryptoKey;
  let keySets: CountingKeySets;
  let serviceSigner: CryptoKey;
  let serviceJwk: JWK;
  let rotatedJwk: JWK;
  let store: GatewayConfigStore;
  let authenticator: Authenticator;
  const tenantId = randomUUID();
  const originId = randomUUID();
  let version = 0;

  const baseRoutes: TestRoute[] = [
    { origin_id: originId, path_pattern: '/user/*', auth_mode: 'jwt_required' },
    { origin_id: originId, path_pattern: '/internal/*', auth_mode: 'service', required_scopes: ['billing'] },
  ];
  const oidc = (changes: Record<string, string> = {}) => ({
    issuer: ISSUER,
    audience: 'orders-api',
    jwks_url: JWKS_URL,
    ...changes,
  });
  const serviceAccounts = (scopes = ['billing'], keys = [serviceJwk]) => [
    { id: 'billing-service', keys, scopes },
  ];
  const apply = (
    changes: {
      routes?: TestRoute[];
      oidc?: Record<string, string>;
      scopes?: string[];
      serviceKeys?: JWK[];
      customDomains?: string[];
    } = {},
  ): CompiledTenant => {
    store.apply(
      buildSnapshot({
        tenantId,
        version: ++version,
        subdomain: 'token-settings',
        origins: [{ id: originId, targets: ['http://127.0.0.1:1'] }],
        routes: changes.routes ?? baseRoutes,
        customDomains: changes.customDomains ?? [],
        settings: {
          oidc: changes.oidc ?? oidc(),
          service_accounts: serviceAccounts(changes.scopes, changes.serviceKeys),
        },
      }),
    );
    return store.resolveHost('token-settings.localhost')!;
  };
  const routeOf = (tenant: CompiledTenant, pattern: string) =>
    tenant.routes.find((route) => route.config.path_pattern === pattern)!;
  const userToken = (audience: string | string[] = 'orders-api') =>
    new SignJWT({ scope: 'orders:read' })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(ISSUER)
      .setAudience(audience)
      .setSubject('user-1')
      .setExpirationTime('5m')
      .sign(signer);
  const serviceToken = (audience = 'token-settings.localhost') =>
    new SignJWT({ scope: 'billing' })
      .setProtectedHeader({ alg: 'ES256', kid: 'svc-1' })
      .setSubject('billing-service')
      .setAudience(audience)
      .setIssuedAt()
      .setExpirationTime('2m')
      .sign(serviceSigner);
  const asUser = (tenant: CompiledTenant, token: string) =>
    authenticator.authenticate(tenant, routeOf(tenant, '/user/*'), { authorization: `Bearer ${token}` });
  const asService = (tenant: CompiledTenant, token: string) =>
    authenticator.authenticate(tenant, routeOf(tenant, '/internal/*'), { authorization: `Bearer ${token}` });

  beforeAll(async () => {
    const pair = await generateKeyPair('RS256');
    signer = pair.privateKey;
    keySets = new CountingKeySets(pair.publicKey);
    const service = await generateKeyPair('ES256');
    serviceSigner = service.privateKey;
    serviceJwk = { ...(await exportJWK(service.publicKey)), kid: 'svc-1', alg: 'ES256' };
    const rotated = await generateKeyPair('ES256');
    rotatedJwk = { ...(await exportJWK(rotated.publicKey)), kid: 'svc-2', alg: 'ES256' };
  });

  beforeEach(() => {
    store = new GatewayConfigStore({
      baseDomains: ['localhost'],
      createUpstreamSet: () => ({ acquire: () => undefined, close: async () => {} }),
      remoteJwks: keySets,
    });
    authenticator = new Authenticator({ apiKeyPepper: 'x'.repeat(32) });
    keySets.lookups = 0;
  });

  it('keeps an OIDC token verified when a snapshot only edits the routes', async () => {
    const token = await userToken();
    expect(await asUser(apply(), token)).toMatchObject({ ok: true, identity: { userId: 'user-1' } });
    expect(keySets.lookups).toBe(1);

    const edited = apply({
      routes: [...baseRoutes, { origin_id: originId, path_pattern: '/reports/*', auth_mode: 'jwt_required' }],
    });
    const again = asUser(edited, token);
    expect(again).not.toBeInstanceOf(Promise);
    expect(again).toMatchObject({ ok: true, identity: { userId: 'user-1', scopes: ['orders:read'] } });
    expect(keySets.lookups).toBe(1);
  });

  it.each([
    ['audience', { audience: 'billing-api' }],
    ['jwks_url', { jwks_url: 'https://keys.settings.test/jwks' }],
  ])('checks an OIDC token again once a snapshot changes the tenant’s %s', async (_field, changes) => {
    // Valid under both settings: only a second signature check tells whether it is still accepted.
    const token = await userToken(['orders-api', 'billing-api']);
    expect(await asUser(apply(), token)).toMatchObject({ ok: true });
    const changed = apply({ oidc: oidc(changes) });
    expect(await asUser(changed, token)).toMatchObject({ ok: true, identity: { userId: 'user-1' } });
    expect(keySets.lookups).toBe(2);
  });

  it('refuses an OIDC token once a snapshot changes the tenant’s issuer', async () => {
    const token = await userToken();
    expect(await asUser(apply(), token)).toMatchObject({ ok: true });
    const changed = apply({ oidc: oidc({ issuer: 'https://idp.elsewhere.test' }) });
    expect(await asUser(changed, token)).toMatchObject({ ok: false, status: 401 });
  });

  it('keeps a service token verified when a snapshot only edits the routes', async () => {
    const token = await serviceToken();
    expect(await asService(apply(), token)).toMatchObject({
      ok: true,
      identity: { serviceId: 'billing-service' },
    });
    const edited = apply({ routes: [...baseRoutes].reverse() });
    const again = asService(edited, token);
    expect(again).not.toBeInstanceOf(Promise);
    expect(again).toMatchObject({
      ok: true,
      identity: { serviceId: 'billing-service', scopes: ['billing'] },
    });
  });

  it('refuses the verified tokens of a service key once a snapshot removes the key', async () => {
    const token = await serviceToken();
    expect(await asService(apply(), token)).toMatchObject({ ok: true });
    const rotated = apply({ serviceKeys: [rotatedJwk] });
    expect(await asService(rotated, token)).toMatchObject({ ok: false, status: 401, code: 'invalid_token' });
  });

  it('takes a scope withdrawn from the service account away from its verified tokens at once', async () => {
    const token = await serviceToken();
    expect(await asService(apply(), token)).toMatchObject({ ok: true });
    const withdrawn = apply({ scopes: [] });
    expect(await asService(withdrawn, token)).toMatchObject({
      ok: false,
      status: 403,
      code: 'insufficient_scope',
    });
  });

  it('checks a service token again once the tenant’s host names change', async () => {
    const token = await serviceToken();
    expect(await asService(apply(), token)).toMatchObject({ ok: true });
    const moved = apply({ customDomains: ['billing.example.com'] });
    const again = asService(moved, token);
    expect(again).toBeInstanceOf(Promise);
    expect(await again).toMatchObject({ ok: true });
  });
});
