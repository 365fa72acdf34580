import {
  type ClerkTestKeys,
  createClerkTestKeys,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CompiledRoute, CompiledTenant } from '../config/compiled-tenant.js';
import { GatewayConfigStore } from '../config/gateway-config-store.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { Authenticator } from './authenticator.js';

/**
 * A verified token is found again by the Authorization header's text: the header is read the same way
 * as when the token was first verified (`Bearer`, any case, one or more spaces, one token), whatever
 * its size, and a header that merely contains a cached token is not taken for it.
 */
describe('bearer tokens answered from the verified-token cache', () => {
  let keys: ClerkTestKeys;
  let tenant: CompiledTenant;
  let route: CompiledRoute;
  let authenticator: Authenticator;
  let token: string;

  beforeAll(async () => {
    keys = await createClerkTestKeys();
    const store = new GatewayConfigStore({
      baseDomains: ['localhost'],
      createUpstreamSet: () => ({ acquire: () => undefined, close: async () => {} }),
    });
    const originId = '00000000-0000-4000-8000-0000000000ab';
    store.apply(
      buildSnapshot({
        subdomain: 'bearer-cache',
        clerkOrgId: 'org_bearer',
        origins: [{ id: originId, targets: ['http://127.0.0.1:1'] }],
        routes: [{ origin_id: originId, path_pattern: '/*', auth_mode: 'jwt_required' }],
      }),
    );
    tenant = store.resolveHost('bearer-cache.localhost')!;
    route = tenant.routes[0]!;
    authenticator = new Authenticator({ apiKeyPepper: 'x'.repeat(32), clerk: { jwtKey: keys.publicKeyPem } });
    // A session token of about 12 KB, as an identity provider with rich public metadata issues.
    token = await signClerkToken(keys, {
      userId: 'user_bearer',
      orgId: 'org_bearer',
      customClaims: { metadata: { notes: 'n'.repeat(9_000) } },
    });
    expect(token.length).toBeGreaterThan(12_000);
    const first = await authenticator.authenticate(tenant, route, { authorization: `Bearer ${token}` });
    expect(first).toMatchObject({ ok: true, identity: { userId: 'user_bearer' } });
  });

  it.each([
    ['as first sent', () => `Bearer ${token}`],
    ['with the scheme in another case and more spaces', () => `bEARER   ${token}`],
  ])('accepts a verified token %s without verifying it again', (_case, header) => {
    const again = authenticator.authenticate(tenant, route, { authorization: header() });
    expect(again).not.toBeInstanceOf(Promise);
    expect(again).toMatchObject({ ok: true, identity: { userId: 'user_bearer' } });
  });

  it.each([
    ['followed by a space', () => `Bearer ${token} `],
    ['followed by a tab', () => `Bearer ${token}\t`],
    ['after a tab instead of a space', () => `Bearer\t${token}`],
    ['under another scheme', () => `Basic ${token}`],
    ['with no space after the scheme', () => `Bearer${token}`],
  ])('reads no bearer token from a header holding a verified token %s', async (_case, header) => {
    const result = await authenticator.authenticate(tenant, route, { authorization: header() });
    expect(result).toMatchObject({ ok: false, status: 401, code: 'missing_credentials' });
  });
});
