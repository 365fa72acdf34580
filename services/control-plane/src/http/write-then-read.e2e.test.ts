import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * The whole admin API: commands (this side), the read-model projector and the query router (the query
 * side). What a command returns is exactly what a query returns once the projector has caught up to the
 * command's X-Event-Position, and org authorization works through the read-model tenant directory.
 */
let cp: ControlPlaneHarness;
beforeAll(async () => {
  cp = await startControlPlane({ withReadSide: true });
});
afterAll(async () => {
  await cp?.close();
});

async function readBack(collection: string, created: { status: number; headers: Headers; body: unknown }) {
  const id = json(created)['id'] as string;
  const position = created.headers.get('x-event-position') ?? '';
  const read = await cp.request('GET', `/api/v1/${collection}/${id}`, {
    headers: { 'X-Min-Position': position },
  });
  expect(read.status, JSON.stringify(read.body)).toBe(200);
  expect(read.headers.get('etag')).toBe(created.headers.get('etag'));
  return read;
}

describe('write, then read your write', () => {
  it('every created resource reads back identically (the shared resource shapes agree)', async () => {
    const tenant = await cp.request('POST', '/api/v1/tenants', {
      body: { name: 'acme-corp', subdomain: 'acme', clerk_org_id: 'org_acme' },
    });
    expect((await readBack('tenants', tenant)).body).toEqual(tenant.body);
    const tenantId = json(tenant)['id'] as string;

    const origin = await cp.request('POST', '/api/v1/origins', {
      body: {
        tenant_id: tenantId,
        name: 'api-backend',
        url: 'https://api.example.com',
        health_check_path: '/health',
        timeout_seconds: 30,
      },
    });
    expect((await readBack('origins', origin)).body).toEqual(origin.body);

    const route = await cp.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        path_pattern: '/api/users/*',
        origin_id: json(origin)['id'],
        auth_mode: 'jwt_required',
        rate_limit: { requests_per_second: 100, burst: 200 },
        cache_policy: { enabled: true, ttl_seconds: 300, cache_key_pattern: 'path+query' },
      },
    });
    expect((await readBack('routes', route)).body).toEqual(route.body);

    const user = await cp.request('POST', '/api/v1/users', {
      body: { tenant_id: tenantId, clerk_user_id: 'user_owner', email: 'o@acme.dev', role: 'owner' },
    });
    expect((await readBack('users', user)).body).toEqual(user.body);

    const key = await cp.request('POST', '/api/v1/api-keys', {
      body: {
        tenant_id: tenantId,
        name: 'production-key',
        scopes: ['read', 'write'],
        expires_at: '2025-12-31T23:59:59Z',
      },
    });
    const { key: plaintext, ...withoutSecret } = json(key);
    const keyRead = await readBack('api-keys', key);
    expect(keyRead.body).toEqual(withoutSecret);
    expect(JSON.stringify(keyRead.body)).not.toContain(String(plaintext));

    // The org's admin (authorized through the read-model directory) updates the route; reads follow.
    const orgAdmin = await cp.token({ userId: 'user_orgadmin', orgId: 'org_acme', orgRole: 'admin' });
    const patched = await cp.request('PATCH', `/api/v1/routes/${json(route)['id']}`, {
      token: orgAdmin,
      body: { priority: 10 },
      headers: { 'If-Match': route.headers.get('etag') ?? '' },
    });
    expect(patched.status).toBe(200);
    expect((await readBack('routes', patched)).body).toEqual(patched.body);

    const deleted = await cp.request('DELETE', `/api/v1/routes/${json(route)['id']}`, { token: orgAdmin });
    expect(deleted.status).toBe(204);
    const gone = await cp.request('GET', `/api/v1/routes/${json(route)['id']}`, {
      headers: { 'X-Min-Position': deleted.headers.get('x-event-position') ?? '' },
    });
    expect(gone.status).toBe(404);
  });
});
