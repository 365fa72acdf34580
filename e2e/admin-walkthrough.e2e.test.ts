import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  eventually,
  type GatewayReplica,
  startOrigin,
  stopAllServices,
  type TestOrigin,
  TestSystem,
} from './harness.js';

/**
 * The documented admin walkthrough at system level: the admin API's curl examples, verbatim bodies
 * (only `expires_at` moved into the future and the placeholders filled in), against the real control
 * plane process; then the demo's gateway requests against a real gateway process fed through both
 * projectors and Kafka.
 */
let system: TestSystem;
let origin: TestOrigin;
let gateway: GatewayReplica;

beforeAll(async () => {
  system = await TestSystem.create();
  origin = await startOrigin('api-backend');
  await system.startControlSide();
  [gateway] = (await system.startGateways(1)) as [GatewayReplica];
}, 180_000);

afterAll(async () => {
  await system?.close();
  await origin?.close();
  await stopAllServices();
});

const FUTURE = new Date(Date.now() + 365 * 24 * 3600 * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

describe('the documented admin walkthrough, every service its own process', () => {
  it('admin curl examples create the config; the gateway serves public, JWT and API-key routes', async () => {
    // Create Tenant
    const tenant = await system.admin('POST', '/api/v1/tenants', {
      body: `{
"name": "acme-corp",
"subdomain": "acme",
"clerk_org_id": "org_xxx"
}`,
    });
    expect(tenant.status, tenant.text).toBe(201);
    const tenantId = tenant.body['id'] as string;
    expect(tenant.body).toMatchObject({ name: 'acme-corp', subdomain: 'acme', clerk_org_id: 'org_xxx' });

    // Get Tenant (the read side is a separate projector process: read your write via X-Min-Position)
    const got = await system.admin('GET', `/api/v1/tenants/${tenantId}`, {
      headers: { 'X-Min-Position': tenant.headers.get('x-event-position') ?? '0' },
    });
    expect(got.status, got.text).toBe(200);
    expect(got.body).toMatchObject({ id: tenantId, name: 'acme-corp', subdomain: 'acme' });

    // Add Origin (the documented body; url points at the local origin the test started)
    const addedOrigin = await system.admin('POST', '/api/v1/origins', {
      body: `{
"tenant_id": "${tenantId}",
"name": "api-backend",
"url": "${origin.url}",
"health_check_path": "/health",
"timeout_seconds": 30
}`,
    });
    expect(addedOrigin.status, addedOrigin.text).toBe(201);
    const originId = addedOrigin.body['id'] as string;

    // Create Route (verbatim: JWT-protected, rate limited, cached)
    const jwtRoute = await system.admin('POST', '/api/v1/routes', {
      body: `{
"tenant_id": "${tenantId}",
"path_pattern": "/api/users/*",
"origin_id": "${originId}",
"auth_mode": "jwt_required",
"rate_limit": {
"requests_per_second": 100,
"burst": 200
},
"cache_policy": {
"enabled": true,
"ttl_seconds": 300,
"cache_key_pattern": "path+query"
}
}`,
    });
    expect(jwtRoute.status, jwtRoute.text).toBe(201);

    // The demo's other two gateway requests need a public route and an API-key route (the demo flow's
    // /api/public/* and /api/admin/*), created the same way.
    const publicRoute = await system.admin('POST', '/api/v1/routes', {
      body: { tenant_id: tenantId, path_pattern: '/api/public/*', origin_id: originId, auth_mode: 'public' },
    });
    expect(publicRoute.status, publicRoute.text).toBe(201);
    const keyRoute = await system.admin('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        path_pattern: '/api/admin/*',
        origin_id: originId,
        auth_mode: 'apikey_required',
      },
    });
    expect(keyRoute.status, keyRoute.text).toBe(201);

    // Generate API Key (verbatim but for expires_at, which the documented example has in the past)
    const apiKey = await system.admin('POST', '/api/v1/api-keys', {
      body: `{
"tenant_id": "${tenantId}",
"name": "production-key",
"scopes": ["read", "write"],
"expires_at": "${FUTURE}"
}`,
    });
    expect(apiKey.status, apiKey.text).toBe(201);
    const key = apiKey.body['key'] as string;
    expect(key).toEqual(expect.any(String));

    // A second tenant with its own key: that key must not open acme's routes.
    const other = await system.admin('POST', '/api/v1/tenants', {
      body: { name: 'globex', subdomain: 'globex', clerk_org_id: 'org_globex' },
    });
    expect(other.status, other.text).toBe(201);
    const otherKey = await system.admin('POST', '/api/v1/api-keys', {
      body: { tenant_id: other.body['id'], name: 'globex-key', scopes: ['read'], expires_at: FUTURE },
    });
    expect(otherKey.status, otherKey.text).toBe(201);

    // Make Request Through Gateway. Public Route (no auth): once the snapshot has arrived, 200.
    const propagationMs = await eventually(
      'the public route is served by the gateway',
      async () => (await gateway.get('acme', '/api/public/status')).status === 200,
      { system },
    );
    console.info(`[e2e] seed walkthrough: admin commands → gateway serving: ${propagationMs.toFixed(0)} ms`);
    const publicResponse = await gateway.get('acme', '/api/public/status');
    expect(publicResponse.status).toBe(200);
    expect(JSON.parse(publicResponse.body)).toMatchObject({
      origin: 'api-backend',
      path: '/api/public/status',
    });

    // The key must have arrived too (same tenant snapshot, but wait for it explicitly).
    await eventually(
      'the API key is known to the gateway',
      async () => (await gateway.get('acme', '/api/admin/users', { 'x-api-key': key })).status === 200,
      { system },
    );

    // JWT Authentication: a Clerk session token of the tenant's org → 200; without a token → 401.
    const jwt = await system.token({ userId: 'user_acme_dev', orgId: 'org_xxx', orgRole: 'member' });
    const withJwt = await gateway.get('acme', '/api/users/123', { authorization: `Bearer ${jwt}` });
    expect(withJwt.status, withJwt.body).toBe(200);
    expect(JSON.parse(withJwt.body)).toMatchObject({ origin: 'api-backend', path: '/api/users/123' });
    const withoutJwt = await gateway.get('acme', '/api/users/123');
    expect(withoutJwt.status, withoutJwt.body).toBe(401);

    // API Key Authentication: acme's key → 200; globex's key on acme's host → 401.
    const withKey = await gateway.get('acme', '/api/admin/users', { 'x-api-key': key });
    expect(withKey.status, withKey.body).toBe(200);
    const withOtherKey = await gateway.get('acme', '/api/admin/users', {
      'x-api-key': otherKey.body['key'] as string,
    });
    expect(withOtherKey.status, withOtherKey.body).toBe(401);
    const withoutKey = await gateway.get('acme', '/api/admin/users');
    expect(withoutKey.status).toBe(401);
  }, 120_000);
});
