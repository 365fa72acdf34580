import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  apiKeyIdentity,
  clerkUserIdentity,
  type Identity,
  oidcUserIdentity,
  serviceIdentity,
} from '../auth/identity.js';
import type { CompiledTenant } from '../config/compiled-tenant.js';
import { GatewayConfigStore } from '../config/gateway-config-store.js';
import { buildSnapshot, type TestRoute } from '../testing/snapshots.js';
import { TenantAdmissions, type WebSocketAdmission } from './websocket-admission.js';

/**
 * Whether a tenant's next version still admits an open WebSocket, judged from what the connection
 * recorded at its upgrade: the Clerk, OIDC, service and scope rules a new upgrade would meet.
 */
const tenantId = randomUUID();
const originId = randomUUID();
const routeId = randomUUID();
const keyId = randomUUID();
const OIDC = { issuer: 'https://id.example.com', audience: 'api', jwks_url: 'https://id.example.com/jwks' };

function tenantWith(
  input: {
    route?: Partial<TestRoute>;
    keyScopes?: string[];
    keyExpiresAt?: string | null;
    clerkUserIds?: string[];
    settings?: Record<string, unknown>;
    /** Origins beside the route's own (a traffic split's). */
    otherOrigins?: string[];
    /** The route's origin's targets (default: one of weight 1). */
    targets?: Array<{ url: string; weight: number }>;
    /** The gateways' CLERK_AUTHORIZED_PARTIES, for a tenant without a list of its own. */
    platformParties?: string[];
  } = {},
): { tenant: CompiledTenant; admissions: TenantAdmissions } {
  const store = new GatewayConfigStore({
    baseDomains: ['localhost'],
    createUpstreamSet: () => ({ acquire: () => undefined, close: async () => {} }),
  });
  store.apply(
    buildSnapshot({
      tenantId,
      subdomain: 'admissions',
      origins: [originId, ...(input.otherOrigins ?? [])].map((id) => ({
        id,
        targets: (id === originId ? input.targets : undefined) ?? ['http://127.0.0.1:9'],
      })),
      routes: [{ id: routeId, origin_id: originId, path_pattern: '/ws/*', ...input.route }],
      apiKeys: [
        {
          id: keyId,
          key_hash: 'a'.repeat(64),
          scopes: input.keyScopes ?? [],
          expires_at: input.keyExpiresAt ?? null,
        },
      ],
      clerkUserIds: input.clerkUserIds ?? [],
      settings: input.settings ?? {},
    }),
  );
  const tenant = store.get(tenantId)!;
  const platformParties = input.platformParties === undefined ? null : new Set(input.platformParties);
  const clerkParties = tenant.auth.authorizedParties ?? platformParties;
  return {
    tenant,
    admissions: new TenantAdmissions(tenant, (host) => store.resolveHost(host), clerkParties),
  };
}

function admitted(identity: Identity, extra: Partial<WebSocketAdmission> = {}): WebSocketAdmission {
  return {
    tenantId,
    host: 'admissions.localhost',
    clientIp: '192.0.2.1',
    page: undefined,
    routeId,
    originId,
    identity,
    ...extra,
  };
}

const now = Date.now();

describe('TenantAdmissions', () => {
  it('withdraws an anonymous connection once its public route requires a key', () => {
    const anonymous: Identity = { kind: 'anonymous', scopes: [] };
    expect(tenantWith().admissions.withdrawal(admitted(anonymous), now)).toBeUndefined();
    const keyed = tenantWith({ route: { auth_mode: 'apikey_required' } });
    expect(keyed.admissions.withdrawal(admitted(anonymous), now)).toBe('auth_changed');
  });

  it('tells a key the new version left out after its expiry (expired) from one revoked', () => {
    const route = { auth_mode: 'apikey_required' as const };
    const gone = apiKeyIdentity(randomUUID(), []);
    const { admissions } = tenantWith({ route });
    expect(admissions.withdrawal(admitted(gone, { credentialsExpireAtMs: now - 1 }), now)).toBe(
      'key_expired',
    );
    expect(admissions.withdrawal(admitted(gone, { credentialsExpireAtMs: now + 60_000 }), now)).toBe(
      'key_revoked',
    );
    expect(admissions.withdrawal(admitted(gone), now)).toBe('key_revoked');
  });

  it('judges a key’s scopes as the new version grants them', () => {
    const key = admitted(apiKeyIdentity(keyId, []));
    const route = { auth_mode: 'apikey_required' as const, required_scopes: ['chat:write'] };
    expect(tenantWith({ route }).admissions.withdrawal(key, now)).toBe('auth_changed');
    expect(tenantWith({ route, keyScopes: ['chat:write'] }).admissions.withdrawal(key, now)).toBeUndefined();
  });

  it('withdraws a Clerk user the tenant’s user list no longer has', () => {
    const user = admitted(clerkUserIdentity('user_1', undefined, []));
    const route = { auth_mode: 'jwt_required' as const };
    expect(tenantWith({ route, clerkUserIds: ['user_1'] }).admissions.withdrawal(user, now)).toBeUndefined();
    expect(tenantWith({ route, clerkUserIds: ['user_2'] }).admissions.withdrawal(user, now)).toBe(
      'auth_changed',
    );
  });

  it('withdraws a Clerk user whose token’s app (azp) the tenant’s or the gateways’ list no longer takes', () => {
    const route = { auth_mode: 'jwt_required' as const };
    const clerkUser = { route, clerkUserIds: ['user_1'] };
    const fromApp = admitted(clerkUserIdentity('user_1', undefined, []), {
      authorizedParty: 'https://app.test',
    });
    const withoutAzp = admitted(clerkUserIdentity('user_1', undefined, []));
    const takes = (parties: string[]) => ({ ...clerkUser, settings: { authorized_parties: parties } });

    expect(tenantWith(takes(['https://app.test'])).admissions.withdrawal(fromApp, now)).toBeUndefined();
    expect(tenantWith(takes(['https://other.test'])).admissions.withdrawal(fromApp, now)).toBe(
      'auth_changed',
    );
    expect(tenantWith(takes(['https://app.test'])).admissions.withdrawal(withoutAzp, now)).toBe(
      'auth_changed',
    );
    // The tenant's list dropped: the gateways' applies, or none.
    expect(
      tenantWith({ ...clerkUser, platformParties: ['https://other.test'] }).admissions.withdrawal(
        fromApp,
        now,
      ),
    ).toBe('auth_changed');
    expect(tenantWith(clerkUser).admissions.withdrawal(withoutAzp, now)).toBeUndefined();
  });

  it('withdraws an OIDC subject once the tenant trusts another provider', () => {
    const provider = { issuer: OIDC.issuer, audience: OIDC.audience };
    const user = admitted(oidcUserIdentity(OIDC.issuer, 'sub-1', []), { oidcProvider: provider });
    const route = { auth_mode: 'jwt_required' as const };
    expect(tenantWith({ route, settings: { oidc: OIDC } }).admissions.withdrawal(user, now)).toBeUndefined();
    const replaced = { oidc: { ...OIDC, issuer: 'https://other.example.com' } };
    expect(tenantWith({ route, settings: replaced }).admissions.withdrawal(user, now)).toBe('auth_changed');
  });

  it('takes a key’s expiry as the new version sets it, a token’s as it said, none on a public route', () => {
    const keyed = { auth_mode: 'apikey_required' as const };
    const key = admitted(apiKeyIdentity(keyId, []), { credentialsExpireAtMs: now + 60_000 });
    const moved = tenantWith({ route: keyed, keyExpiresAt: new Date(now + 5_000).toISOString() });
    expect(moved.admissions.credentialsExpireAtMs(key)).toBe(now + 5_000);
    expect(tenantWith({ route: keyed }).admissions.credentialsExpireAtMs(key)).toBeUndefined();

    const user = admitted(clerkUserIdentity('user_1', undefined, []), {
      credentialsExpireAtMs: now + 60_000,
    });
    const jwt = tenantWith({ route: { auth_mode: 'jwt_required' }, clerkUserIds: ['user_1'] });
    expect(jwt.admissions.credentialsExpireAtMs(user)).toBe(now + 60_000);
    expect(tenantWith().admissions.credentialsExpireAtMs(user)).toBeUndefined();
  });

  it('withdraws a service whose account the tenant removed', () => {
    const service = admitted(serviceIdentity('svc-gone', []));
    expect(tenantWith({ route: { auth_mode: 'service' } }).admissions.withdrawal(service, now)).toBe(
      'auth_changed',
    );
  });

  it('judges a service’s scopes as the new version grants its account them', () => {
    const jwk = { ...generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }), kid: 'svc-1-key' };
    const granting = (scopes: string[]) => ({ service_accounts: [{ id: 'svc-1', keys: [jwk], scopes }] });
    const service = admitted(serviceIdentity('svc-1', ['chat:write']));
    const route = { auth_mode: 'service' as const, required_scopes: ['chat:write'] };
    const granted = tenantWith({ route, settings: granting(['chat:write', 'chat:read']) });
    expect(granted.admissions.withdrawal(service, now)).toBeUndefined();
    const reduced = tenantWith({ route, settings: granting(['chat:read']) });
    expect(reduced.admissions.withdrawal(service, now)).toBe('auth_changed');
  });

  it('withdraws a service whose token’s key its account no longer lists, or another service does', () => {
    const newJwk = (kid: string) => ({
      ...generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }),
      kid,
    });
    const [signing, other] = [newJwk('svc-1-signing'), newJwk('svc-1-other')];
    const route = { auth_mode: 'service' as const };
    const accounts = (...list: Array<{ id: string; keys: object[] }>) => ({ service_accounts: list });
    const first = tenantWith({ route, settings: accounts({ id: 'svc-1', keys: [signing, other] }) });
    const serviceKey = first.tenant.auth.serviceAccounts.get('svc-1-signing')?.keyDigest;
    const service = admitted(serviceIdentity('svc-1', []), { serviceKey });
    expect(first.admissions.withdrawal(service, now)).toBeUndefined();
    const keyRemoved = tenantWith({ route, settings: accounts({ id: 'svc-1', keys: [other] }) });
    expect(keyRemoved.admissions.withdrawal(service, now)).toBe('signing_key_withdrawn');
    // The same key material under its kid, now registered for another service.
    const moved = tenantWith({
      route,
      settings: accounts({ id: 'svc-1', keys: [other] }, { id: 'svc-2', keys: [signing] }),
    });
    expect(moved.admissions.withdrawal(service, now)).toBe('signing_key_withdrawn');
  });

  it('keeps a connection on an origin the route’s traffic split sends to, withdraws it once none does', () => {
    const canaryId = randomUUID();
    const onCanary = admitted({ kind: 'anonymous', scopes: [] }, { originId: canaryId });
    const splitWith = (weight: number, overrides: unknown[] = []) =>
      tenantWith({
        otherOrigins: [canaryId],
        route: {
          traffic_split: {
            origins: [
              { origin_id: originId, weight: 100 },
              { origin_id: canaryId, weight },
            ],
            overrides,
          },
        },
      }).admissions;
    expect(splitWith(5).withdrawal(onCanary, now)).toBeUndefined();
    const override = { header: 'x-canary', value: 'always', origin_id: canaryId };
    expect(splitWith(0, [override]).withdrawal(onCanary, now)).toBeUndefined();
    expect(splitWith(0).withdrawal(onCanary, now)).toBe('origin_changed');
    expect(tenantWith({ otherOrigins: [canaryId] }).admissions.withdrawal(onCanary, now)).toBe(
      'origin_changed',
    );
  });

  it('keeps a connection open when the tenant drains a target of its origin (weight 0)', () => {
    const open = admitted({ kind: 'anonymous', scopes: [] });
    const drained = tenantWith({
      targets: [
        { url: 'http://127.0.0.1:9', weight: 0 },
        { url: 'http://127.0.0.2:9', weight: 1 },
      ],
    });
    expect(drained.admissions.withdrawal(open, now)).toBeUndefined();
  });
});
