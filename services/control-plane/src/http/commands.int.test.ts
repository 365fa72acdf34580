import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ControlPlaneHarness,
  json,
  startControlPlane,
  TEST_PEPPER,
} from '../testing/control-plane-harness.js';

let cp: ControlPlaneHarness;
beforeAll(async () => {
  cp = await startControlPlane({ bodyLimitBytes: 4096 });
});
afterAll(async () => {
  await cp?.close();
});

async function createTenant(subdomain: string, clerkOrgId?: string) {
  const response = await cp.request('POST', '/api/v1/tenants', {
    body: { name: `${subdomain}-corp`, subdomain, ...(clerkOrgId ? { clerk_org_id: clerkOrgId } : {}) },
  });
  expect(response.status).toBe(201);
  return json(response)['id'] as string;
}

describe('the getting-started curl examples, verbatim', () => {
  it('creates a tenant, an origin, a route and an API key with the example bodies', async () => {
    const tenant = await cp.request('POST', '/api/v1/tenants', {
      rawBody: '{\n"name": "acme-corp",\n"subdomain": "acme",\n"clerk_org_id": "org_xxx"\n}',
      headers: { 'Content-Type': 'application/json' },
    });
    expect(tenant.status).toBe(201);
    const tenantBody = json(tenant);
    expect(tenantBody).toMatchObject({ name: 'acme-corp', subdomain: 'acme', clerk_org_id: 'org_xxx' });
    expect(tenantBody['id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(tenant.headers.get('etag')).toBe('"0"');
    expect(tenant.headers.get('x-event-position')).toMatch(/^\d+$/);
    expect(tenant.headers.get('location')).toBe(`/api/v1/tenants/${tenantBody['id']}`);
    expect(tenantBody['created_at']).toBe(tenantBody['updated_at']);
    const tenantId = tenantBody['id'] as string;

    const origin = await cp.request('POST', '/api/v1/origins', {
      body: {
        tenant_id: tenantId,
        name: 'api-backend',
        url: 'https://api.example.com',
        health_check_path: '/health',
        timeout_seconds: 30,
      },
    });
    expect(origin.status).toBe(201);
    expect(json(origin)).toMatchObject({
      tenant_id: tenantId,
      name: 'api-backend',
      url: 'https://api.example.com',
      targets: [{ url: 'https://api.example.com', weight: 1 }],
      health_check_path: '/health',
      timeout_seconds: 30,
      load_balancing: { algorithm: 'round_robin' },
      circuit_breaker: { enabled: true },
    });
    const originId = json(origin)['id'] as string;

    const route = await cp.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        path_pattern: '/api/users/*',
        origin_id: originId,
        auth_mode: 'jwt_required',
        rate_limit: { requests_per_second: 100, burst: 200 },
        cache_policy: { enabled: true, ttl_seconds: 300, cache_key_pattern: 'path+query' },
      },
    });
    expect(route.status).toBe(201);
    expect(json(route)).toMatchObject({
      tenant_id: tenantId,
      origin_id: originId,
      path_pattern: '/api/users/*',
      auth_mode: 'jwt_required',
      methods: [],
      priority: 0,
      rate_limit: { requests_per_second: 100, burst: 200, algorithm: 'token_bucket' },
      cache_policy: { enabled: true, ttl_seconds: 300, cache_key_pattern: 'path+query' },
    });

    const apiKey = await cp.request('POST', '/api/v1/api-keys', {
      body: {
        tenant_id: tenantId,
        name: 'production-key',
        scopes: ['read', 'write'],
        expires_at: '2025-12-31T23:59:59Z',
      },
    });
    expect(apiKey.status).toBe(201);
    const keyBody = json(apiKey);
    expect(keyBody).toMatchObject({
      tenant_id: tenantId,
      name: 'production-key',
      scopes: ['read', 'write'],
      expires_at: '2025-12-31T23:59:59.000Z',
      revoked_at: null,
    });
    const plaintext = keyBody['key'] as string;
    expect(plaintext).toMatch(/^ve_live_[A-Za-z0-9_-]{32}$/);
    expect(keyBody['key_prefix']).toBe(plaintext.slice(0, 12));
    expect(keyBody).not.toHaveProperty('key_hash');

    // Only the peppered hash is recorded; the plaintext is nowhere in the event store.
    const events = await cp.allEvents();
    const issued = events.find((event) => event.type === 'ApiKeyIssued');
    expect((issued?.data as { key_hash: string } | undefined)?.key_hash).toBe(
      hashApiKey(TEST_PEPPER, plaintext),
    );
    expect(JSON.stringify(events, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))).not.toContain(
      plaintext,
    );
    for (const event of events) {
      expect(event.metadata).toMatchObject({
        actor: 'user_platformadmin',
        tenant_id: tenantId,
        schema_version: 1,
      });
      expect(event.metadata.correlation_id).toBeTruthy();
    }
  });
});

describe('uniqueness', () => {
  it('50 concurrent creates of one subdomain: one 201, 49 409s, exactly one TenantCreated', async () => {
    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        cp.request('POST', '/api/v1/tenants', { body: { name: `race-${i}`, subdomain: 'race' } }),
      ),
    );
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(49);
    const conflictBody = json(responses.find((r) => r.status === 409)!);
    expect(conflictBody).toMatchObject({
      error: { code: 'conflict', details: [{ field: 'subdomain', issue: 'already taken' }] },
    });
    const created = (await cp.allEvents()).filter(
      (e) => e.type === 'TenantCreated' && (e.data as { subdomain: string }).subdomain === 'race',
    );
    expect(created).toHaveLength(1);
  });

  it('a Clerk org belongs to one tenant; deleting a tenant frees its subdomain', async () => {
    const id = await createTenant('freed', 'org_freed');
    const dupOrg = await cp.request('POST', '/api/v1/tenants', {
      body: { name: 'x', subdomain: 'other-freed', clerk_org_id: 'org_freed' },
    });
    expect(dupOrg.status).toBe(409);
    expect(json(dupOrg)).toMatchObject({ error: { details: [{ field: 'clerk_org_id' }] } });
    expect((await cp.request('DELETE', `/api/v1/tenants/${id}`)).status).toBe(204);
    await createTenant('freed', 'org_freed');
  });
});

describe('optimistic concurrency', () => {
  it('PATCH with a stale If-Match is 412 and changes nothing; the current ETag succeeds', async () => {
    const id = await createTenant('etag');
    const first = await cp.request('PATCH', `/api/v1/tenants/${id}`, {
      body: { name: 'renamed' },
      headers: { 'If-Match': '"0"' },
    });
    expect(first.status).toBe(200);
    expect(first.headers.get('etag')).toBe('"1"');
    expect(json(first)).toMatchObject({ name: 'renamed', subdomain: 'etag' });
    const stale = await cp.request('PATCH', `/api/v1/tenants/${id}`, {
      body: { name: 'lost update' },
      headers: { 'If-Match': '"0"' },
    });
    expect(stale.status).toBe(412);
    expect(json(stale)).toMatchObject({ error: { code: 'precondition_failed' } });
    const staleDelete = await cp.request('DELETE', `/api/v1/tenants/${id}`, {
      headers: { 'If-Match': '"0"' },
    });
    expect(staleDelete.status).toBe(412);
    const events = (await cp.store.readStream(`tenant-${id}`)).map((e) => e.type);
    expect(events).toEqual(['TenantCreated', 'TenantUpdated']);
    const updated = (await cp.store.readStream(`tenant-${id}`))[1]?.data as { changed_fields: string[] };
    expect(updated.changed_fields).toEqual(['name']);
  });

  it('a PATCH that changes nothing appends nothing', async () => {
    const id = await createTenant('noop');
    const response = await cp.request('PATCH', `/api/v1/tenants/${id}`, { body: { name: 'noop-corp' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('etag')).toBe('"0"');
    expect(await cp.store.readStream(`tenant-${id}`)).toHaveLength(1);
  });
});

describe('Idempotency-Key', () => {
  it('a retry returns the first response and appends nothing; another body with the key is 422', async () => {
    const headers = { 'Idempotency-Key': 'create-idem-1' };
    const body = { name: 'idem', subdomain: 'idem' };
    const first = await cp.request('POST', '/api/v1/tenants', { body, headers });
    const before = (await cp.allEvents()).length;
    const retry = await cp.request('POST', '/api/v1/tenants', { body, headers });
    expect(first.status).toBe(201);
    expect(retry.status).toBe(201);
    expect(retry.body).toEqual(first.body);
    expect(retry.headers.get('x-event-position')).toBe(first.headers.get('x-event-position'));
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect((await cp.allEvents()).length).toBe(before);

    const reused = await cp.request('POST', '/api/v1/tenants', { body: { ...body, name: 'other' }, headers });
    expect(reused.status).toBe(422);
    expect(json(reused)).toMatchObject({ error: { code: 'idempotency_key_reused' } });
    expect((await cp.allEvents()).length).toBe(before);
  });

  it('replays an issued API key (stored encrypted, not in clear)', async () => {
    const tenantId = await createTenant('idem-key');
    const headers = { 'Idempotency-Key': 'issue-key-1' };
    const body = { tenant_id: tenantId, name: 'k' };
    const first = await cp.request('POST', '/api/v1/api-keys', { body, headers });
    const retry = await cp.request('POST', '/api/v1/api-keys', { body, headers });
    expect(retry.body).toEqual(first.body);
    const key = json(first)['key'] as string;
    const stored = await cp.db.pool.query(
      'select response_body::text as body from control_plane_idempotency_keys',
    );
    expect(stored.rows.map((r: { body: string }) => r.body).join('\n')).not.toContain(key);
  });
});

describe('bad requests change nothing', () => {
  it('unknown fields, bad values, bad JSON, wrong media type and oversized bodies', async () => {
    const before = (await cp.allEvents()).length;
    const unknown = await cp.request('POST', '/api/v1/tenants', {
      body: { name: 'a', subdomain: 'ok', color: 'red' },
    });
    expect(unknown.status).toBe(400);
    expect(json(unknown)).toEqual({
      error: {
        code: 'validation_failed',
        message: expect.any(String),
        details: [{ field: 'color', issue: 'is not a known field' }],
      },
    });
    const bad = await cp.request('POST', '/api/v1/tenants', {
      body: { name: 'a', subdomain: 'Not A Label' },
    });
    expect(bad.status).toBe(400);
    expect(json(bad)).toMatchObject({ error: { details: [{ field: 'subdomain' }] } });
    const badJson = await cp.request('POST', '/api/v1/tenants', {
      rawBody: '{"name":',
      headers: { 'content-type': 'application/json' },
    });
    expect(badJson.status).toBe(400);
    const text = await cp.request('POST', '/api/v1/tenants', {
      rawBody: 'name=a',
      headers: { 'content-type': 'text/plain' },
    });
    expect(text.status).toBe(415);
    expect(json(text)).toMatchObject({ error: { code: 'unsupported_media_type' } });
    const huge = await cp.request('POST', '/api/v1/tenants', {
      body: { name: 'x'.repeat(10_000), subdomain: 'huge' },
    });
    expect(huge.status).toBe(413);
    expect(json(huge)).toMatchObject({ error: { code: 'payload_too_large' } });
    const badUrl = await cp.request('POST', '/api/v1/origins', {
      body: { tenant_id: '00000000-0000-4000-8000-000000000000', name: 'o', url: 'ftp://files.example.com' },
    });
    expect(badUrl.status).toBe(400);
    expect(json(badUrl)).toMatchObject({ error: { details: [{ field: 'url' }] } });
    const missingTenant = await cp.request('POST', '/api/v1/origins', {
      body: { tenant_id: '00000000-0000-4000-8000-000000000000', name: 'o', url: 'https://x.example.com' },
    });
    expect(missingTenant.status).toBe(404);
    for (const response of [unknown, bad, badJson, text, huge, badUrl, missingTenant]) {
      expect(JSON.stringify(response.body)).not.toMatch(/at .*\.(ts|js):\d+/);
    }
    expect((await cp.allEvents()).length).toBe(before);
  });

  it('validates path patterns, timeouts and the origin of a route', async () => {
    const tenantId = await createTenant('validate');
    const other = await createTenant('validate-other');
    const otherOrigin = await cp.request('POST', '/api/v1/origins', {
      body: { tenant_id: other, name: 'o', url: 'https://o.example.com' },
    });
    const timeout = await cp.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'o', url: 'https://x.example.com', timeout_seconds: 301 },
    });
    expect(json(timeout)).toMatchObject({ error: { details: [{ field: 'timeout_seconds' }] } });
    for (const pattern of ['api/users', '/api/*/x', '/api//x', '/api/:id/:id', '/api/us ers']) {
      const route = await cp.request('POST', '/api/v1/routes', {
        body: {
          tenant_id: tenantId,
          origin_id: json(otherOrigin)['id'],
          path_pattern: pattern,
          auth_mode: 'public',
        },
      });
      expect(route.status, pattern).toBe(400);
      expect(json(route)).toMatchObject({ error: { details: [{ field: 'path_pattern' }] } });
    }
    const crossOrigin = await cp.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        origin_id: json(otherOrigin)['id'],
        path_pattern: '/a/:id',
        auth_mode: 'public',
      },
    });
    expect(crossOrigin.status).toBe(400);
    expect(json(crossOrigin)).toMatchObject({ error: { details: [{ field: 'origin_id' }] } });
  });
});

// Regression (cache/auth review): cacheable_statuses accepted 206 and 304 (and 1xx), so a Range request's
// part or a conditional request's 304 was stored and served to every client.
describe('cache policy validation', () => {
  it('refuses statuses that are not a complete response in cacheable_statuses, naming the field', async () => {
    const tenantId = await createTenant('cacheable-statuses');
    const origin = await cp.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'o', url: 'https://o.example.com' },
    });
    const before = (await cp.allEvents()).length;
    const route = (statuses: number[]) =>
      cp.request('POST', '/api/v1/routes', {
        body: {
          tenant_id: tenantId,
          origin_id: json(origin)['id'],
          path_pattern: `/c${statuses.join('-')}/*`,
          auth_mode: 'public',
          cache_policy: { mode: 'override', cacheable_statuses: statuses },
        },
      });
    for (const status of [100, 103, 206, 304, 412, 416]) {
      const refused = await route([200, status]);
      expect(refused.status, String(status)).toBe(400);
      expect(json(refused)).toMatchObject({
        error: { code: 'validation_failed', details: [{ field: 'cache_policy.cacheable_statuses.1' }] },
      });
    }
    expect((await cp.allEvents()).length).toBe(before);
    const accepted = await route([200, 204, 301, 404, 410]);
    expect(accepted.status).toBe(201);
    const patched = await cp.request('PATCH', `/api/v1/routes/${json(accepted)['id']}`, {
      body: { cache_policy: { cacheable_statuses: [206] } },
    });
    expect(patched.status).toBe(400);
    expect(json(patched)).toMatchObject({
      error: { details: [{ field: 'cache_policy.cacheable_statuses.0' }] },
    });
  });
});

describe('cache key validation', () => {
  // Regression: vary_headers accepted headers the gateway writes for the origin (X-Real-IP, identity
  // headers); the key read the client's own value while the origin answered the gateway's, so one
  // client's per-address or per-user answer was served to every other client.
  it('refuses vary_headers naming a header the gateway writes for the origin, naming the field', async () => {
    const tenantId = await createTenant('vary-gateway-headers');
    const origin = await cp.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'o', url: 'https://o.example.com' },
    });
    const before = (await cp.allEvents()).length;
    const route = (name: string) =>
      cp.request('POST', '/api/v1/routes', {
        body: {
          tenant_id: tenantId,
          origin_id: json(origin)['id'],
          path_pattern: `/v-${name}/*`,
          auth_mode: 'public',
          cache_policy: { cache_key_pattern: 'path+query+headers', vary_headers: ['accept-language', name] },
        },
      });
    // Also spelled with `_` or `.`: CGI-style origins read X_Real_IP as the gateway's X-Real-IP.
    for (const name of [
      'X-Real-IP',
      'x-forwarded-for',
      'X-VantageEdge-User-Id',
      'X_Real_IP',
      'x.forwarded.for',
    ]) {
      const refused = await route(name);
      expect(refused.status, name).toBe(400);
      expect(json(refused)).toMatchObject({
        error: { code: 'validation_failed', details: [{ field: 'cache_policy.vary_headers.1' }] },
      });
    }
    expect((await cp.allEvents()).length).toBe(before);
    expect((await route('x-api-key')).status).toBe(201);
  });
});

describe('API key rotation and revocation', () => {
  it('rotate issues a new key and gives the old one a grace period; revoke ends a key', async () => {
    const tenantId = await createTenant('rotate');
    const issued = json(
      await cp.request('POST', '/api/v1/api-keys', {
        body: { tenant_id: tenantId, name: 'ci', scopes: ['read'] },
      }),
    );
    const rotated = await cp.request('POST', `/api/v1/api-keys/${issued['id']}/rotate`, {
      body: { grace_period_seconds: 3600 },
    });
    expect(rotated.status).toBe(201);
    const fresh = json(rotated);
    expect(fresh['key']).not.toBe(issued['key']);
    expect(fresh).toMatchObject({ name: 'ci', scopes: ['read'], tenant_id: tenantId });
    const oldEvents = await cp.store.readStream(`apikey-${issued['id']}`);
    expect(oldEvents.map((e) => e.type)).toEqual(['ApiKeyIssued', 'ApiKeyRotated']);
    const rotation = oldEvents[1]?.data as { replaced_by: string; old_key_expires_at: string };
    expect(rotation.replaced_by).toBe(fresh['id']);
    const graceMs = Date.parse(rotation.old_key_expires_at) - Date.now();
    expect(graceMs).toBeGreaterThan(3500_000);
    expect(graceMs).toBeLessThanOrEqual(3600_000);

    const again = await cp.request('POST', `/api/v1/api-keys/${issued['id']}/rotate`);
    expect(again.status).toBe(409);

    const revoked = await cp.request('POST', `/api/v1/api-keys/${fresh['id']}/revoke`, {
      body: { reason: 'leaked' },
    });
    expect(revoked.status).toBe(200);
    expect(json(revoked)['revoked_at']).toEqual(expect.any(String));
    expect((await cp.request('POST', `/api/v1/api-keys/${fresh['id']}/revoke`)).status).toBe(409);
    expect((await cp.request('POST', `/api/v1/api-keys/${fresh['id']}/rotate`)).status).toBe(409);
  });
});

describe('users', () => {
  it('a tenant keeps at least one owner', async () => {
    const tenantId = await createTenant('owners');
    const owner = json(
      await cp.request('POST', '/api/v1/users', {
        body: { tenant_id: tenantId, clerk_user_id: 'user_owner1', email: 'o1@example.com', role: 'owner' },
      }),
    );
    const dup = await cp.request('POST', '/api/v1/users', {
      body: { tenant_id: tenantId, clerk_user_id: 'user_owner1', email: 'o1@example.com', role: 'admin' },
    });
    expect(dup.status).toBe(409);
    expect(json(dup)).toMatchObject({ error: { details: [{ field: 'clerk_user_id' }] } });

    const demote = await cp.request('PATCH', `/api/v1/users/${owner['id']}`, { body: { role: 'admin' } });
    expect(demote.status).toBe(409);
    expect((await cp.request('DELETE', `/api/v1/users/${owner['id']}`)).status).toBe(409);

    const second = json(
      await cp.request('POST', '/api/v1/users', {
        body: { tenant_id: tenantId, clerk_user_id: 'user_owner2', email: 'o2@example.com', role: 'owner' },
      }),
    );
    // Two concurrent demotions of the two owners: one wins, one is refused.
    const [a, b] = await Promise.all([
      cp.request('PATCH', `/api/v1/users/${owner['id']}`, { body: { role: 'member' } }),
      cp.request('PATCH', `/api/v1/users/${second['id']}`, { body: { role: 'member' } }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
  });
});

describe('readiness without PostgreSQL', () => {
  let broken: ControlPlaneHarness;
  beforeAll(async () => {
    broken = await startControlPlane({
      connectThrough: (url) => {
        const wrong = new URL(url);
        wrong.password = 'not-the-password';
        return wrong.toString();
      },
    });
  });
  afterAll(async () => {
    await broken?.close();
  });

  // Regression test: /readyz (public, unauthenticated) answered each failed check's driver message.
  it('says which check failed and nothing of its error', async () => {
    const ready = await broken.request('GET', '/readyz', { token: null });
    expect(ready.status).toBe(503);
    expect(json(ready)).toEqual({
      status: 'not_ready',
      checks: { postgres: 'unavailable', event_store: 'unavailable' },
    });
  });
});

describe('operations endpoints', () => {
  it('serves healthz, readyz, the OpenAPI document and its docs page, and no metrics', async () => {
    expect((await cp.request('GET', '/healthz', { token: null })).status).toBe(200);
    const ready = await cp.request('GET', '/readyz', { token: null });
    expect(ready.status).toBe(200);
    expect(json(ready)).toMatchObject({ checks: { postgres: 'ok', event_store: 'ok' } });
    // Metrics are on a listener of their own (main.ts), not on the admin API tenant admins reach.
    expect((await cp.request('GET', '/metrics', { token: null })).status).toBe(404);
    expect(await cp.metrics.metrics()).toContain('vantageedge_control_plane_commands_total');
    const doc = json(await cp.request('GET', '/openapi.json', { token: null }));
    expect(doc['openapi']).toBe('3.1.0');
    const schemas = (
      doc['components'] as {
        schemas: Record<string, { properties?: Record<string, unknown>; additionalProperties?: unknown }>;
      }
    ).schemas;
    expect(Object.keys(schemas['CreateTenant']?.properties ?? {})).toEqual([
      'name',
      'subdomain',
      'clerk_org_id',
      'settings',
    ]);
    expect(schemas['CreateRoute']?.additionalProperties).toBe(false);
    expect(Object.keys(doc['paths'] as object)).toContain('/api/v1/api-keys/{id}/rotate');
    expect(Object.keys(doc['paths'] as object)).toEqual(
      expect.arrayContaining([
        '/api/v1/tenants/{id}/domains',
        '/api/v1/tenants/{id}/domains/{domain}/verify',
      ]),
    );
    expect(Object.keys(schemas['CustomDomain']?.properties ?? {})).toContain('verification');
    expect(Object.keys(schemas['CreateRoute']?.properties ?? {})).toContain('allow_any_authenticated_user');
    const docs = await cp.request('GET', '/docs', { token: null });
    expect(String(docs.body)).toContain('/openapi.json');
    expect(String(docs.body)).not.toMatch(/<script[^>]+src=/);
  });
});
