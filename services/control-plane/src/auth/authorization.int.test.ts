import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * Clerk tokens (v1 org_id/org_role claims and v2 `o` claims) verified networklessly, and tenant
 * isolation: an admin of org A gets 404 on every command against tenant B's resources, as for ids
 * that do not exist.
 */
let cp: ControlPlaneHarness;
const ids = { a: '', b: '', originB: '', routeB: '', userB: '', keyB: '' };

beforeAll(async () => {
  cp = await startControlPlane();
  const post = async (path: string, body: unknown) => {
    const response = await cp.request('POST', path, { body });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    return json(response)['id'] as string;
  };
  ids.a = await post('/api/v1/tenants', { name: 'A', subdomain: 'tenant-a', clerk_org_id: 'org_a' });
  ids.b = await post('/api/v1/tenants', { name: 'B', subdomain: 'tenant-b', clerk_org_id: 'org_b' });
  ids.originB = await post('/api/v1/origins', { tenant_id: ids.b, name: 'b', url: 'https://b.example.com' });
  ids.routeB = await post('/api/v1/routes', {
    tenant_id: ids.b,
    origin_id: ids.originB,
    path_pattern: '/b/*',
    auth_mode: 'public',
  });
  ids.userB = await post('/api/v1/users', {
    tenant_id: ids.b,
    clerk_user_id: 'user_bowner',
    email: 'b@example.com',
    role: 'owner',
  });
  ids.keyB = await post('/api/v1/api-keys', { tenant_id: ids.b, name: 'b-key' });
});
afterAll(async () => {
  await cp?.close();
});

describe('authentication', () => {
  it('401 with the error shape for a missing, expired, foreign-key or not-yet-valid token', async () => {
    const { createClerkTestKeys, signClerkToken } = await import('@vantageedge/shared/testing/clerk-tokens');
    const otherKeys = await createClerkTestKeys();
    const tokens = [
      null,
      'not-a-jwt',
      await cp.token({ userId: 'user_platformadmin', expiresInSeconds: -60 }),
      await cp.token({ userId: 'user_platformadmin', notBeforeInSeconds: 600 }),
      await signClerkToken(otherKeys, { userId: 'user_platformadmin' }),
    ];
    for (const token of tokens) {
      const response = await cp.request('POST', '/api/v1/tenants', {
        token,
        body: { name: 'x', subdomain: 'x401' },
      });
      expect(response.status).toBe(401);
      expect(json(response)).toMatchObject({ error: { code: 'unauthenticated' } });
      expect(response.headers.get('www-authenticate')).toBe('Bearer');
    }
    expect(
      (await cp.allEvents()).filter((e) => (e.data as { subdomain?: string }).subdomain === 'x401'),
    ).toEqual([]);
  });

  it('only platform admins create tenants', async () => {
    const orgAdmin = await cp.token({ userId: 'user_aadmin', orgId: 'org_a', orgRole: 'admin' });
    const response = await cp.request('POST', '/api/v1/tenants', {
      token: orgAdmin,
      body: { name: 'x', subdomain: 'not-allowed' },
    });
    expect(response.status).toBe(403);
    expect(json(response)).toMatchObject({ error: { code: 'forbidden' } });
  });
});

describe('org roles from v1 and v2 Clerk tokens', () => {
  for (const version of [1, 2] as const) {
    it(`v${version}: org admin of A writes A; org member of A reads only`, async () => {
      const admin = await cp.token({ userId: `user_a${version}`, orgId: 'org_a', orgRole: 'admin', version });
      const member = await cp.token({
        userId: `user_m${version}`,
        orgId: 'org_a',
        orgRole: 'member',
        version,
      });
      const body = { tenant_id: ids.a, name: `o${version}`, url: 'https://a.example.com' };
      expect((await cp.request('POST', '/api/v1/origins', { token: admin, body })).status).toBe(201);
      const denied = await cp.request('POST', '/api/v1/origins', { token: member, body });
      expect(denied.status).toBe(403);
      expect(json(denied)).toMatchObject({
        error: { code: 'forbidden', message: expect.stringContaining('read-only') },
      });
    });
  }

  it('a tenant user with role admin writes without an active org; a viewer does not', async () => {
    await cp.request('POST', '/api/v1/users', {
      body: { tenant_id: ids.a, clerk_user_id: 'user_listedadmin', email: 'la@example.com', role: 'admin' },
    });
    await cp.request('POST', '/api/v1/users', {
      body: { tenant_id: ids.a, clerk_user_id: 'user_listedviewer', email: 'lv@example.com', role: 'viewer' },
    });
    const body = { tenant_id: ids.a, name: 'k' };
    const admin = await cp.token({ userId: 'user_listedadmin' });
    const viewer = await cp.token({ userId: 'user_listedviewer' });
    expect((await cp.request('POST', '/api/v1/api-keys', { token: admin, body })).status).toBe(201);
    expect((await cp.request('POST', '/api/v1/api-keys', { token: viewer, body })).status).toBe(403);
  });

  it('only platform admins move a subdomain; org admins rename', async () => {
    const admin = await cp.token({ userId: 'user_a_sub', orgId: 'org_a', orgRole: 'org:admin' });
    const move = await cp.request('PATCH', `/api/v1/tenants/${ids.a}`, {
      token: admin,
      body: { subdomain: 'moved' },
    });
    expect(move.status).toBe(403);
    expect(json(move)).toMatchObject({ error: { details: [{ field: 'subdomain' }] } });
    const rename = await cp.request('PATCH', `/api/v1/tenants/${ids.a}`, {
      token: admin,
      body: { name: 'A2' },
    });
    expect(rename.status).toBe(200);
  });
});

describe('tenant isolation', () => {
  it('an org admin of A gets 404 on every command against tenant B, and nothing changes', async () => {
    const tokenA = await cp.token({ userId: 'user_attacker', orgId: 'org_a', orgRole: 'admin' });
    const before = (await cp.allEvents()).length;
    const attempts: Array<[string, string, unknown]> = [
      ['PATCH', `/api/v1/tenants/${ids.b}`, { name: 'pwned' }],
      ['DELETE', `/api/v1/tenants/${ids.b}`, undefined],
      ['POST', '/api/v1/origins', { tenant_id: ids.b, name: 'evil', url: 'https://evil.example.com' }],
      ['PATCH', `/api/v1/origins/${ids.originB}`, { url: 'https://evil.example.com' }],
      ['DELETE', `/api/v1/origins/${ids.originB}`, undefined],
      [
        'POST',
        '/api/v1/routes',
        { tenant_id: ids.b, origin_id: ids.originB, path_pattern: '/x', auth_mode: 'public' },
      ],
      [
        'POST',
        '/api/v1/routes',
        { tenant_id: ids.a, origin_id: ids.originB, path_pattern: '/x', auth_mode: 'public' },
      ],
      ['PATCH', `/api/v1/routes/${ids.routeB}`, { auth_mode: 'public' }],
      ['DELETE', `/api/v1/routes/${ids.routeB}`, undefined],
      [
        'POST',
        '/api/v1/users',
        { tenant_id: ids.b, clerk_user_id: 'user_attacker', email: 'a@x.io', role: 'owner' },
      ],
      ['PATCH', `/api/v1/users/${ids.userB}`, { role: 'viewer' }],
      ['DELETE', `/api/v1/users/${ids.userB}`, undefined],
      ['POST', '/api/v1/api-keys', { tenant_id: ids.b, name: 'stolen' }],
      ['POST', `/api/v1/api-keys/${ids.keyB}/rotate`, undefined],
      ['POST', `/api/v1/api-keys/${ids.keyB}/revoke`, undefined],
      ['DELETE', `/api/v1/api-keys/${ids.keyB}`, undefined],
    ];
    for (const [method, path, body] of attempts) {
      const response = await cp.request(method, path, {
        token: tokenA,
        ...(body !== undefined ? { body } : {}),
      });
      expect(response.status, `${method} ${path}`).toBe(404);
      expect(json(response)).toMatchObject({ error: { code: 'not_found' } });
    }
    expect((await cp.allEvents()).length).toBe(before);
  });
});
