import { randomBytes } from 'node:crypto';
import { createTestCa, issueTestCertificate } from '@vantageedge/shared/testing/test-certificates';
import { keyRing } from '@vantageedge/shared/tls/private-key-envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * GET /api/v1/tenants/:id/config (at any position), …/config/document, …/config/diff and
 * …/config/history through the real admin API: commands append, the configs are folded from the log.
 */

let h: ControlPlaneHarness;
let tenantId: string;
let originId: string;
let usersRoute: string;
let postsRoute: string;
const positions: Record<string, string> = {};

const position = (response: { headers: Headers }) => response.headers.get('x-event-position') ?? '';

beforeAll(async () => {
  h = await startControlPlane({
    withReadSide: true,
    certificateKeyRing: keyRing(randomBytes(32).toString('base64')),
  });
  const tenant = await h.request('POST', '/api/v1/tenants', {
    body: { name: 'Acme', subdomain: 'acme-config' },
  });
  tenantId = json(tenant)['id'] as string;
  const origin = await h.request('POST', '/api/v1/origins', {
    body: { tenant_id: tenantId, name: 'users-api', url: 'http://127.0.0.1:9/' },
  });
  originId = json(origin)['id'] as string;
  const users = await h.request('POST', '/api/v1/routes', {
    body: {
      tenant_id: tenantId,
      origin_id: originId,
      path_pattern: '/users/*',
      methods: ['GET'],
      auth_mode: 'public',
    },
  });
  usersRoute = json(users)['id'] as string;
  const posts = await h.request('POST', '/api/v1/routes', {
    body: {
      tenant_id: tenantId,
      origin_id: originId,
      path_pattern: '/posts/*',
      auth_mode: 'apikey_required',
    },
  });
  postsRoute = json(posts)['id'] as string;
  positions['before'] = position(posts);
  const key = await h.request('POST', '/api/v1/api-keys', { body: { tenant_id: tenantId, name: 'ci' } });
  expect(key.status).toBe(201);
  const limited = await h.request('PATCH', `/api/v1/routes/${usersRoute}`, {
    body: { rate_limit: { requests_per_second: 5 } },
  });
  const deleted = await h.request('DELETE', `/api/v1/routes/${postsRoute}`);
  positions['after'] = position(deleted);
  expect([limited.status, deleted.status]).toEqual([200, 204]);
  // The reads find the tenant in the read models: wait until they hold it (and everything above).
  await h.readModelsCaughtUp();
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('GET /api/v1/tenants/:id/config', () => {
  it('answers the config after the given event, versioned by the tenant’s last event up to it', async () => {
    const response = await h.request(
      'GET',
      `/api/v1/tenants/${tenantId}/config?at_position=${positions['before']}`,
    );
    expect(response.status).toBe(200);
    const body = json(response);
    expect(body).toMatchObject({
      tenant_id: tenantId,
      position: positions['before'],
      version: positions['before'],
    });
    expect(response.headers.get('etag')).toBe(`"${positions['before']}"`);
    // In match order: of equal priority, specificity and conditions, the route naming fewer methods first.
    expect((body['routes'] as Array<{ path_pattern: string }>).map((route) => route.path_pattern)).toEqual([
      '/users/*',
      '/posts/*',
    ]);
    expect(body['api_keys']).toEqual([]);
    expect(body['tenant']).toMatchObject({ id: tenantId, name: 'Acme', subdomain: 'acme-config' });
  });

  it('defaults to now, lists active keys without their hashes', async () => {
    const body = json(await h.request('GET', `/api/v1/tenants/${tenantId}/config`));
    expect(body['version']).toBe(positions['after']);
    expect((body['routes'] as Array<{ id: string }>).map((route) => route.id)).toEqual([usersRoute]);
    expect(body['api_keys']).toEqual([
      { id: expect.any(String), name: 'ci', scopes: [], expires_at: null, quota: null },
    ]);
    expect(JSON.stringify(body)).not.toContain('key_hash');
  });

  it('404 before the tenant existed, 400 beyond the newest event or for a malformed position', async () => {
    const early = await h.request('GET', `/api/v1/tenants/${tenantId}/config?at_position=0`);
    expect(early.status).toBe(404);
    expect(json(early)['error']).toMatchObject({ details: [{ field: 'at_position' }] });
    const beyond = await h.request('GET', `/api/v1/tenants/${tenantId}/config?at_position=99999999`);
    expect(beyond.status).toBe(400);
    expect(json(beyond)['error']).toMatchObject({
      code: 'validation_failed',
      details: [{ field: 'at_position' }],
    });
    for (const bad of ['-1', 'abc', '1.5', '99999999999999999999']) {
      const response = await h.request('GET', `/api/v1/tenants/${tenantId}/config?at_position=${bad}`);
      expect(response.status, bad).toBe(400);
    }
    expect((await h.request('GET', `/api/v1/tenants/${tenantId}/config?at=1`)).status).toBe(400);
  });

  it('is 404 for a caller without access and for an unknown tenant', async () => {
    const stranger = await h.token({ userId: 'user_stranger' });
    expect((await h.request('GET', `/api/v1/tenants/${tenantId}/config`, { token: stranger })).status).toBe(
      404,
    );
    expect(
      (await h.request('GET', '/api/v1/tenants/00000000-0000-4000-8000-000000000000/config')).status,
    ).toBe(404);
    expect((await h.request('GET', '/api/v1/tenants/not-a-uuid/config')).status).toBe(404);
  });
});

describe('GET /api/v1/tenants/:id/config/diff and /document', () => {
  it('names the route deleted and the rate limit added between two positions', async () => {
    const response = await h.request(
      'GET',
      `/api/v1/tenants/${tenantId}/config/diff?from=${positions['before']}&to=${positions['after']}`,
    );
    expect(response.status).toBe(200);
    const body = json(response);
    expect(body['from']).toEqual({ position: positions['before'], version: positions['before'] });
    expect(body['to']).toEqual({ position: positions['after'], version: positions['after'] });
    const changes = body['changes'] as Array<Record<string, unknown>>;
    expect(changes.map((change) => [change['resource'], change['change'], change['id']])).toEqual([
      ['route', 'changed', usersRoute],
      ['route', 'removed', postsRoute],
      ['api_key', 'added', expect.any(String)],
    ]);
    expect(changes[0]?.['fields']).toEqual([
      {
        field: 'rate_limit',
        from: null,
        to: {
          algorithm: 'token_bucket',
          requests_per_second: 5,
          scope: 'route',
          accuracy: 'exact',
          on_store_failure: 'open',
        },
      },
    ]);
  });

  it('answers a document that names origins by name and every resource by id', async () => {
    const response = await h.request(
      'GET',
      `/api/v1/tenants/${tenantId}/config/document?at_position=${positions['before']}`,
    );
    expect(response.status).toBe(200);
    const document = json(response)['document'] as Record<string, unknown>;
    expect(document['format']).toBe(1);
    expect(document['tenant']).toMatchObject({ id: tenantId, name: 'Acme', subdomain: 'acme-config' });
    expect(document['origins']).toEqual([expect.objectContaining({ id: originId, name: 'users-api' })]);
    expect(document['routes']).toEqual([
      expect.objectContaining({ id: usersRoute, origin: 'users-api', path_pattern: '/users/*' }),
      expect.objectContaining({ id: postsRoute, origin: 'users-api', path_pattern: '/posts/*' }),
    ]);
    expect(document).not.toHaveProperty('api_keys');
  });
});

describe('GET /api/v1/tenants/:id/config/history', () => {
  it('lists the config changes newest first, with a one-line summary, in pages', async () => {
    const first = await h.request('GET', `/api/v1/tenants/${tenantId}/config/history?limit=2`, {
      headers: { 'x-min-position': positions['after'] ?? '' },
    });
    expect(first.status).toBe(200);
    const page = json(first) as { data: Array<Record<string, unknown>>; next_cursor: string | null };
    expect(page.data.map((entry) => [entry['event_type'], entry['summary']])).toEqual([
      ['RouteDeleted', 'route deleted'],
      ['RouteUpdated', 'route GET /users/* changed (rate_limit)'],
    ]);
    expect(page.data[0]?.['position']).toBe(positions['after']);
    const rest = json(
      await h.request('GET', `/api/v1/tenants/${tenantId}/config/history?cursor=${page.next_cursor}`),
    ) as { data: Array<Record<string, unknown>> };
    expect(rest.data.map((entry) => entry['event_type'])).toEqual([
      'ApiKeyIssued',
      'RouteCreated',
      'RouteCreated',
      'OriginCreated',
      'TenantCreated',
    ]);
  });

  it('needs write access, like the audit log', async () => {
    // A tenant of its own: the other tests read Acme's config and history as the set-up left them.
    const tenant = await h.request('POST', '/api/v1/tenants', {
      body: { name: 'Acme Viewers', subdomain: 'acme-config-viewers' },
    });
    const tenantId = json(tenant)['id'] as string;
    const added = await h.request('POST', '/api/v1/users', {
      body: { tenant_id: tenantId, clerk_user_id: 'user_viewer', email: 'v@acme.test', role: 'viewer' },
    });
    expect(added.status).toBe(201);
    const viewer = await h.token({ userId: 'user_viewer' });
    const headers = { 'x-min-position': position(added) };
    expect(
      (await h.request('GET', `/api/v1/tenants/${tenantId}/config`, { token: viewer, headers })).status,
    ).toBe(200);
    expect(
      (await h.request('GET', `/api/v1/tenants/${tenantId}/config/history`, { token: viewer, headers }))
        .status,
    ).toBe(403);
  });
});

describe('GET /schemas/tenant-config.json', () => {
  it('serves the document’s JSON Schema without a token', async () => {
    const response = await fetch(`${h.baseUrl}/schemas/tenant-config.json`);
    expect(response.status).toBe(200);
    const schema = (await response.json()) as { properties: Record<string, unknown>; required: string[] };
    expect(Object.keys(schema.properties)).toEqual(['format', 'tenant', 'origins', 'routes', 'select_tags']);
    expect(schema.required).toEqual(['tenant']);
  });
});

describe('certificates in the config diff and history', () => {
  it('names a certificate uploaded or deleted between two positions, as the config at each lists it', async () => {
    // A tenant of its own: the other tests read Acme's config and history as the set-up left them.
    const tenant = await h.request('POST', '/api/v1/tenants', {
      body: { name: 'Acme Certificates', subdomain: 'acme-config-certificates' },
    });
    const tenantId = json(tenant)['id'] as string;
    const claimed = await h.request('POST', `/api/v1/tenants/${tenantId}/domains`, {
      body: { domain: 'api.acme-config.test', verified: true },
    });
    expect(claimed.status).toBe(201);
    const before = position(claimed);
    const ca = await createTestCa();
    const certificate = await issueTestCertificate(ca, { dnsNames: ['api.acme-config.test'] });
    const uploaded = await h.request('POST', '/api/v1/certificates', {
      body: {
        tenant_id: tenantId,
        domains: ['api.acme-config.test'],
        certificate_pem: certificate.chainPem,
        private_key_pem: certificate.privateKeyPem,
      },
    });
    expect(uploaded.status, JSON.stringify(uploaded.body)).toBe(201);
    const certificateId = json(uploaded)['id'] as string;
    const afterUpload = position(uploaded);
    const deleted = await h.request('DELETE', `/api/v1/certificates/${certificateId}`);
    expect(deleted.status).toBe(204);
    const afterDelete = position(deleted);
    await h.readModelsCaughtUp();

    const served = json(
      await h.request('GET', `/api/v1/tenants/${tenantId}/config?at_position=${afterUpload}`),
    );
    expect((served['certificates'] as Array<{ id: string }>).map((entry) => entry.id)).toEqual([
      certificateId,
    ]);
    const diff = async (from: string, to: string) => {
      const response = await h.request(
        'GET',
        `/api/v1/tenants/${tenantId}/config/diff?from=${from}&to=${to}`,
      );
      expect(response.status).toBe(200);
      return json(response)['changes'] as Array<Record<string, unknown>>;
    };
    const added = await diff(before, afterUpload);
    expect(
      added.map((change) => [change['resource'], change['change'], change['id'], change['name']]),
    ).toEqual([['certificate', 'added', certificateId, 'api.acme-config.test']]);
    expect(added[0]?.['after']).toMatchObject({ fingerprint_sha256: certificate.fingerprint256 });
    expect(JSON.stringify(added)).not.toMatch(/PRIVATE KEY|private_key/);
    const removed = await diff(afterUpload, afterDelete);
    expect(removed.map((change) => [change['resource'], change['change'], change['id']])).toEqual([
      ['certificate', 'removed', certificateId],
    ]);

    // The versions the gateways served are each a change in the history.
    const history = await h.request('GET', `/api/v1/tenants/${tenantId}/config/history?limit=2`, {
      headers: { 'x-min-position': afterDelete },
    });
    const entries = (json(history) as { data: Array<Record<string, unknown>> }).data;
    expect(entries.map((entry) => [entry['position'], entry['event_type'], entry['summary']])).toEqual([
      [afterDelete, 'CertificateDeleted', 'certificate removed'],
      [afterUpload, 'CertificateUploaded', 'certificate for api.acme-config.test uploaded'],
    ]);
  });
});
