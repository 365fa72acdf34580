import {
  type ClerkTestKeys,
  createClerkTestKeys,
  signClerkTemplateToken,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CompiledRoute, CompiledTenant } from '../config/compiled-tenant.js';
import { GatewayConfigStore } from '../config/gateway-config-store.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { Authenticator } from './authenticator.js';

/**
 * A Clerk token refused for what it is (a JWT template's, a pending session's) holds a valid signature:
 * presented again, it is answered from the verified-token cache like an accepted one, never verified
 * (an RS256 check, or a JWKS lookup) once per request.
 */
describe('Clerk tokens refused for what they are', () => {
  let keys: ClerkTestKeys;
  let tenant: CompiledTenant;
  let route: CompiledRoute;

  beforeAll(async () => {
    keys = await createClerkTestKeys();
    const store = new GatewayConfigStore({
      baseDomains: ['localhost'],
      createUpstreamSet: () => ({ acquire: () => undefined, close: async () => {} }),
    });
    const originId = '00000000-0000-4000-8000-0000000000aa';
    store.apply(
      buildSnapshot({
        subdomain: 'acme',
        clerkOrgId: 'org_acme',
        origins: [{ id: originId, targets: ['http://127.0.0.1:1'] }],
        routes: [{ origin_id: originId, path_pattern: '/*', auth_mode: 'jwt_required' }],
      }),
    );
    tenant = store.resolveHost('acme.localhost')!;
    route = tenant.routes[0]!;
  });

  const authenticatorWithCache = (tokenCacheSize: number) =>
    new Authenticator({
      apiKeyPepper: 'x'.repeat(32),
      clerk: { jwtKey: keys.publicKeyPem },
      tokenCacheSize,
    });

  it.each([
    [
      'a JWT template',
      () => signClerkTemplateToken(keys, { userId: 'user_1', claims: { org_id: 'org_acme' } }),
    ],
    [
      'a pending session',
      () => signClerkToken(keys, { userId: 'user_1', orgId: 'org_acme', sessionStatus: 'pending' }),
    ],
  ])("answers %s's token again from the cache with the same refusal", async (_kind, sign) => {
    const authenticator = authenticatorWithCache(100);
    const headers = { authorization: `Bearer ${await sign()}` };
    const first = await authenticator.authenticate(tenant, route, headers);
    expect(first).toMatchObject({ ok: false, status: 401, code: 'invalid_token' });
    const again = authenticator.authenticate(tenant, route, headers);
    expect(again).not.toBeInstanceOf(Promise);
    expect(again).toEqual(first);
  });

  it('verifies it on every presentation with the cache off, refusing it each time', async () => {
    const authenticator = authenticatorWithCache(0);
    const headers = { authorization: `Bearer ${await signClerkTemplateToken(keys, { userId: 'user_1' })}` };
    await authenticator.authenticate(tenant, route, headers);
    const again = authenticator.authenticate(tenant, route, headers);
    expect(again).toBeInstanceOf(Promise);
    expect(await again).toMatchObject({ ok: false, status: 401, code: 'invalid_token' });
  });
});
