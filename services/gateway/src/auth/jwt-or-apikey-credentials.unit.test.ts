import { generateApiKey, hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import {
  type ClerkTestKeys,
  createClerkTestKeys,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { CompiledRoute, CompiledTenant } from '../config/compiled-tenant.js';
import { GatewayConfigStore } from '../config/gateway-config-store.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { Authenticator } from './authenticator.js';

const PEPPER = 'p'.repeat(32);

/**
 * A `jwt_or_apikey` route reads a bearer JWT (without X-API-Key) as a user token and anything else as
 * an API key. A token verified before is answered from the verified-token cache straight from the
 * header's text, as on `jwt_required` routes: no pattern is run over a header of several KB.
 */
describe('credentials on a jwt_or_apikey route', () => {
  let keys: ClerkTestKeys;
  let tenant: CompiledTenant;
  let route: CompiledRoute;
  let authenticator: Authenticator;
  let token: string;
  const apiKey = generateApiKey();

  beforeAll(async () => {
    keys = await createClerkTestKeys();
    const store = new GatewayConfigStore({
      baseDomains: ['localhost'],
      createUpstreamSet: () => ({ acquire: () => undefined, close: async () => {} }),
    });
    const originId = '00000000-0000-4000-8000-0000000000ac';
    store.apply(
      buildSnapshot({
        subdomain: 'jwt-or-key',
        clerkOrgId: 'org_either',
        origins: [{ id: originId, targets: ['http://127.0.0.1:1'] }],
        routes: [{ origin_id: originId, path_pattern: '/*', auth_mode: 'jwt_or_apikey' }],
        apiKeys: [{ id: '00000000-0000-4000-8000-0000000000ad', key_hash: hashApiKey(PEPPER, apiKey) }],
      }),
    );
    tenant = store.resolveHost('jwt-or-key.localhost')!;
    route = tenant.routes[0]!;
    authenticator = new Authenticator({ apiKeyPepper: PEPPER, clerk: { jwtKey: keys.publicKeyPem } });
    token = await signClerkToken(keys, {
      userId: 'user_either',
      orgId: 'org_either',
      customClaims: { metadata: { notes: 'n'.repeat(6_000) } },
    });
    const first = await authenticator.authenticate(tenant, route, { authorization: `Bearer ${token}` });
    expect(first).toMatchObject({ ok: true, identity: { userId: 'user_either' } });
  });

  afterEach(() => {
    vi.restoreAllMocks();
  });

  it.each([
    ['Bearer', () => `Bearer ${token}`],
    ['bearer', () => `bearer ${token}`],
    ['BEARER with extra spaces', () => `BEARER    ${token}`],
  ])(
    'answers a verified token sent as %s from the cache, without reading the header with a pattern',
    (_case, header) => {
      const patterns = vi.spyOn(RegExp.prototype, 'exec');
      const again = authenticator.authenticate(tenant, route, { authorization: header() });
      const patternRuns = patterns.mock.calls.length;
      vi.restoreAllMocks();
      expect(again).not.toBeInstanceOf(Promise);
      expect(again).toMatchObject({ ok: true, identity: { userId: 'user_either', orgId: 'org_either' } });
      expect(patternRuns).toBe(0);
    },
  );

  it.each([
    ['no Authorization', {}],
    ['an empty bearer', { authorization: 'Bearer ' }],
    ['a bearer followed by a space', { authorization: 'Bearer abc ' }],
    ['another scheme', { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }],
  ])('asks for a token or an API key when the request has %s', async (_case, headers) => {
    const result = await authenticator.authenticate(tenant, route, headers);
    expect(result).toMatchObject({ ok: false, status: 401, code: 'missing_credentials' });
    if (!result.ok)
      expect(result.challenge).toBe(
        'Bearer realm="vantageedge", ApiKey realm="vantageedge", header="X-API-Key"',
      );
  });

  it.each([
    ['X-API-Key', { 'x-api-key': apiKey }],
    ['a bearer API key', { authorization: `bearer  ${apiKey}` }],
    ['X-API-Key beside a verified bearer token', { 'x-api-key': apiKey, authorization: 'Bearer TOKEN' }],
  ])('accepts an API key sent as %s', async (_case, headers) => {
    const withToken = Object.fromEntries(
      Object.entries(headers).map(([name, value]) => [name, value.replace('TOKEN', token)]),
    );
    const result = await authenticator.authenticate(tenant, route, withToken);
    expect(result).toMatchObject({
      ok: true,
      identity: { apiKeyId: '00000000-0000-4000-8000-0000000000ad' },
    });
  });

  it('reads a bearer value that is no JWT as an API key, and refuses an unknown one', async () => {
    const result = await authenticator.authenticate(tenant, route, {
      authorization: 'Bearer ve_live_unknown',
    });
    expect(result).toMatchObject({ ok: false, status: 401, code: 'invalid_api_key' });
  });
});
