import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * The tenant settings and route fields that decide who may call a tenant's routes: service accounts
 * (each key bound to one service identity and its scopes) and the explicit opt-in of a jwt route to
 * users outside the tenant. Bad input is a 400 naming the field, and changes nothing.
 */
let cp: ControlPlaneHarness;
let tenantId = '';
let originId = '';
let publicJwk: Record<string, unknown> = {};

beforeAll(async () => {
  cp = await startControlPlane();
  const tenant = await cp.request('POST', '/api/v1/tenants', { body: { name: 'Svc', subdomain: 'svc' } });
  expect(tenant.status).toBe(201);
  tenantId = json(tenant)['id'] as string;
  const origin = await cp.request('POST', '/api/v1/origins', {
    body: { tenant_id: tenantId, name: 'o', url: 'http://127.0.0.1:9' },
  });
  originId = json(origin)['id'] as string;
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  publicJwk = { ...publicKey.export({ format: 'jwk' }), kid: 'billing-1', alg: 'ES256' };
});
afterAll(async () => {
  await cp?.close();
});

async function eventCount(): Promise<number> {
  return (await cp.allEvents()).length;
}

describe('service accounts (regression: any service key could sign for any service and scope)', () => {
  it('stores service accounts: each key names its one service and its scopes', async () => {
    const response = await cp.request('PATCH', `/api/v1/tenants/${tenantId}`, {
      body: {
        settings: { service_accounts: [{ id: 'billing-service', keys: [publicJwk], scopes: ['billing'] }] },
      },
    });
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    expect(json(response)['settings']).toMatchObject({
      service_accounts: [{ id: 'billing-service', keys: [{ kid: 'billing-1' }], scopes: ['billing'] }],
    });
  });

  it('accepts RSA keys of 2048 to 4096 bits and keys on P-256 and Ed25519', async () => {
    const keys = [
      { ...rsaPublicJwk(), kid: 'rsa-2048' },
      { ...rsaPublicJwk(), kid: 'rsa-4096', n: oddModulus(4096) },
      { ...publicJwkOn('ec', 'P-256'), kid: 'P-256' },
      { ...generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }), kid: 'ed25519' },
    ];
    const response = await cp.request('PATCH', `/api/v1/tenants/${tenantId}`, {
      body: { settings: { service_accounts: [{ id: 'sizes', keys }] } },
    });
    expect(response.status, JSON.stringify(response.body)).toBe(200);
  });

  it('accepts the key_ops, ext and alg members of keys tokens verify with', async () => {
    const ed25519 = () => generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' });
    const keys = [
      { ...rsaPublicJwk(), kid: 'rs', alg: 'RS256', key_ops: ['verify'], ext: true },
      { ...rsaPublicJwk(), kid: 'ps', alg: 'PS512', key_ops: ['verify', 'encrypt'] },
      { ...publicJwkOn('ec', 'P-256'), kid: 'es', alg: 'ES256', ext: false },
      { ...ed25519(), kid: 'eddsa', alg: 'EdDSA' },
      { ...ed25519(), kid: 'ed', alg: 'Ed25519', key_ops: ['verify'] },
    ];
    const response = await cp.request('PATCH', `/api/v1/tenants/${tenantId}`, {
      body: { settings: { service_accounts: [{ id: 'members', keys }] } },
    });
    expect(response.status, JSON.stringify(response.body)).toBe(200);
  });

  it.each([
    [
      'unbound service_jwks (the retired field)',
      { service_jwks: [publicJwkPlaceholder()] },
      'settings.service_jwks',
      /service_accounts/,
    ],
    [
      'a key without kid',
      { service_accounts: [{ id: 'a', keys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y' }] }] },
      'settings.service_accounts.0.keys.0.kid',
      /kid/,
    ],
    [
      'a private key',
      { service_accounts: [{ id: 'a', keys: [{ kty: 'EC', kid: 'k', d: 'private' }] }] },
      'settings.service_accounts.0.keys.0.d',
      /public key only/,
    ],
    [
      'a symmetric key',
      { service_accounts: [{ id: 'a', keys: [{ kty: 'oct', kid: 'k', k: 'secret' }] }] },
      'settings.service_accounts.0.keys.0.kty',
      /asymmetric/,
    ],
    [
      'a key that does not load',
      { service_accounts: [{ id: 'a', keys: [{ kty: 'EC', kid: 'k', crv: 'P-256', x: 'no', y: 'no' }] }] },
      'settings.service_accounts.0.keys.0',
      /not a usable public key/,
    ],
    [
      // Regression: an RSA key with a long exponent (here 2^64 + 1) makes every verification costly.
      'an RSA key whose exponent is over 2^31 - 1',
      { service_accounts: [{ id: 'a', keys: [{ ...rsaPublicJwk(), kid: 'k', e: 'AQAAAAAAAAAB' }] }] },
      'settings.service_accounts.0.keys.0.e',
      /at most 2147483647/,
    ],
    [
      // Regression: an RSA-8192 key was accepted; each verification with it costs a replica ~10 times
      // an RSA-2048 one, on the CPU every tenant of the replica shares.
      'an RSA key over 4096 bits',
      { service_accounts: [{ id: 'a', keys: [{ ...rsaPublicJwk(), kid: 'k', n: oddModulus(8192) }] }] },
      'settings.service_accounts.0.keys.0.n',
      /2048 to 4096 bits/,
    ],
    [
      'an RSA key under 2048 bits (no token algorithm verifies with it)',
      { service_accounts: [{ id: 'a', keys: [{ ...rsaPublicJwk(), kid: 'k', n: oddModulus(1024) }] }] },
      'settings.service_accounts.0.keys.0.n',
      /2048 to 4096 bits/,
    ],
    [
      'an EC key on a curve no token algorithm uses',
      { service_accounts: [{ id: 'a', keys: [{ ...publicJwkOn('ec', 'secp256k1'), kid: 'k' }] }] },
      'settings.service_accounts.0.keys.0.crv',
      /must be P-256: tokens are never verified with secp256k1/,
    ],
    [
      // Regression: P-384 (ES384) and P-521 (ES512) keys were accepted; each verification with them
      // costs a replica ≈ 0.6 and 1.2 ms of CPU, more than an RSA-8192 one (≈ 0.3 ms, refused), on the
      // CPU every tenant of the replica shares.
      'an EC key on P-384',
      { service_accounts: [{ id: 'a', keys: [{ ...publicJwkOn('ec', 'P-384'), kid: 'k' }] }] },
      'settings.service_accounts.0.keys.0.crv',
      /must be P-256: P-384 makes every verification costly/,
    ],
    [
      'an EC key on P-521',
      { service_accounts: [{ id: 'a', keys: [{ ...publicJwkOn('ec', 'P-521'), kid: 'k' }] }] },
      'settings.service_accounts.0.keys.0.crv',
      /must be P-256: P-521 makes every verification costly/,
    ],
    [
      'an OKP key that is not Ed25519',
      { service_accounts: [{ id: 'a', keys: [{ ...publicJwkOn('ed448'), kid: 'k' }] }] },
      'settings.service_accounts.0.keys.0.crv',
      /Ed25519/,
    ],
    [
      // Regression: jose judges a key's key_ops on every token with a scan that grows with the square
      // of its length: 3,000 operations (within the settings' 32 KB) cost a replica ~10 ms of its event
      // loop per token naming the key.
      'a key listing more operations than RFC 7517 registers',
      {
        service_accounts: [
          {
            id: 'a',
            keys: [
              {
                ...rsaPublicJwk(),
                kid: 'k',
                key_ops: [...Array.from({ length: 3_000 }, (_, i) => `op${i}`), 'verify'],
              },
            ],
          },
        ],
      },
      'settings.service_accounts.0.keys.0.key_ops',
      /at most 8/,
    ],
    [
      'one kid under two services',
      {
        service_accounts: [
          { id: 'a', keys: [{ kty: 'EC', kid: 'shared' }] },
          { id: 'b', keys: [{ kty: 'EC', kid: 'shared' }] },
        ],
      },
      'settings.service_accounts.1.keys.0.kid',
      /belongs to one service/,
    ],
    [
      'a service listed twice',
      {
        service_accounts: [
          { id: 'a', keys: [{ kty: 'EC', kid: 'k1' }] },
          { id: 'a', keys: [{ kty: 'EC', kid: 'k2' }] },
        ],
      },
      'settings.service_accounts.1.id',
      /listed twice/,
    ],
    [
      'a malformed scope',
      { service_accounts: [{ id: 'a', keys: [{ kty: 'EC', kid: 'k' }], scopes: ['two words'] }] },
      'settings.service_accounts.0.scopes.0',
      /letters, digits/,
    ],
  ])('refuses %s with 400 naming the field, changing nothing', async (_name, settings, field, issue) => {
    const before = await eventCount();
    const response = await cp.request('PATCH', `/api/v1/tenants/${tenantId}`, { body: { settings } });
    expect(response.status).toBe(400);
    const details = (json(response)['error'] as { details: Array<{ field: string; issue: string }> }).details;
    expect(details).toEqual(expect.arrayContaining([{ field, issue: expect.stringMatching(issue) }]));
    expect(await eventCount()).toBe(before);
  });

  // Regression: keys the gateways never verify a token with (jose passes over a key whose key_ops
  // leave out verify or are not distinct strings, whose ext is not a boolean, or whose alg is not the
  // token's) were accepted, and every token of the service was then refused 401 at every replica.
  it.each<[name: string, key: () => Record<string, unknown>, member: string, issue: RegExp]>([
    ['key_ops without verify', () => ecKey({ key_ops: ['sign'] }), 'key_ops', /must list verify/],
    [
      'key_ops naming an operation twice',
      () => ecKey({ key_ops: ['verify', 'verify'] }),
      'key_ops',
      /each operation once/,
    ],
    ['key_ops that is not a list', () => ecKey({ key_ops: 'verify' }), 'key_ops', /must be a list/],
    ['an ext that is not a boolean', () => ecKey({ ext: 'true' }), 'ext', /must be true or false/],
    ['an alg of another key type', () => ecKey({ alg: 'RS256' }), 'alg', /must be ES256/],
    ['an alg of another curve', () => ecKey({ alg: 'ES384' }), 'alg', /must be ES256/],
    ['an alg that is an object member', () => ecKey({ alg: 'constructor' }), 'alg', /must be ES256/],
    [
      'an RSA alg of an EC key',
      () => ({ ...rsaPublicJwk(), kid: 'k', alg: 'ES256' }),
      'alg',
      /must be one of RS256, RS384, RS512, PS256, PS384, PS512/,
    ],
  ])('refuses a key with %s: 400 naming the member, changing nothing', async (_name, key, member, issue) => {
    const before = await eventCount();
    const response = await cp.request('PATCH', `/api/v1/tenants/${tenantId}`, {
      body: { settings: { service_accounts: [{ id: 'a', keys: [key()] }] } },
    });
    expect(response.status).toBe(400);
    const details = (json(response)['error'] as { details: Array<{ field: string; issue: string }> }).details;
    expect(details).toEqual([
      { field: `settings.service_accounts.0.keys.0.${member}`, issue: expect.stringMatching(issue) },
    ]);
    expect(await eventCount()).toBe(before);
  });
});

function rsaPublicJwk(): Record<string, unknown> {
  return generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
}

/** A public modulus of exactly `bits` bits (a public key loads whatever its factors). */
function oddModulus(bits: number): string {
  return Buffer.alloc(bits / 8, 0xff).toString('base64url');
}

function publicJwkOn(type: 'ec' | 'ed448', namedCurve?: string): Record<string, unknown> {
  const pair =
    type === 'ec'
      ? generateKeyPairSync('ec', { namedCurve: namedCurve ?? 'P-256' })
      : generateKeyPairSync('ed448');
  return pair.publicKey.export({ format: 'jwk' });
}

/** A P-256 public key (kid k) with `members` beside its own. */
function ecKey(members: Record<string, unknown>): Record<string, unknown> {
  return { ...publicJwkOn('ec', 'P-256'), kid: 'k', ...members };
}

function publicJwkPlaceholder(): Record<string, unknown> {
  return { kty: 'EC', crv: 'P-256', x: 'x', y: 'y' };
}

describe('routes open to any signed-in user (regression: tenants without an org accepted any Clerk user)', () => {
  it('defaults to false and accepts true on jwt routes', async () => {
    const plain = await cp.request('POST', '/api/v1/routes', {
      body: { tenant_id: tenantId, origin_id: originId, path_pattern: '/me/*', auth_mode: 'jwt_required' },
    });
    expect(plain.status).toBe(201);
    expect(json(plain)['allow_any_authenticated_user']).toBe(false);
    const open = await cp.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        origin_id: originId,
        path_pattern: '/community/*',
        auth_mode: 'jwt_or_apikey',
        allow_any_authenticated_user: true,
      },
    });
    expect(open.status).toBe(201);
    expect(json(open)['allow_any_authenticated_user']).toBe(true);
  });

  it('refuses it on a route that takes no user token, also when an update changes the auth mode', async () => {
    const before = await eventCount();
    const created = await cp.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        origin_id: originId,
        path_pattern: '/keys/*',
        auth_mode: 'apikey_required',
        allow_any_authenticated_user: true,
      },
    });
    expect(created.status).toBe(400);
    expect(json(created)['error']).toMatchObject({
      details: [{ field: 'allow_any_authenticated_user', issue: expect.stringContaining('apikey_required') }],
    });
    expect(await eventCount()).toBe(before);

    const route = await cp.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        origin_id: originId,
        path_pattern: '/open/*',
        auth_mode: 'jwt_required',
        allow_any_authenticated_user: true,
      },
    });
    expect(route.status).toBe(201);
    const afterCreate = await eventCount();
    const toService = await cp.request('PATCH', `/api/v1/routes/${json(route)['id']}`, {
      body: { auth_mode: 'service' },
    });
    expect(toService.status).toBe(400);
    expect(await eventCount()).toBe(afterCreate);
    const both = await cp.request('PATCH', `/api/v1/routes/${json(route)['id']}`, {
      body: { auth_mode: 'service', allow_any_authenticated_user: false },
    });
    expect(both.status).toBe(200);
  });

  it('refuses a non-boolean', async () => {
    const response = await cp.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        origin_id: originId,
        path_pattern: '/x/*',
        auth_mode: 'jwt_required',
        allow_any_authenticated_user: 'yes',
      },
    });
    expect(response.status).toBe(400);
    expect(json(response)['error']).toMatchObject({ details: [{ field: 'allow_any_authenticated_user' }] });
  });
});
