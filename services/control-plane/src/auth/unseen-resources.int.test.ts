import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * What the caller may not see does not exist for it: an admin of tenant A asking for tenant B's
 * tenant or resources gets the very answer it gets for ids no tenant has, so it cannot probe which
 * tenant or resource ids exist. 403 is only for a tenant the caller sees without the role it needs.
 */
let cp: ControlPlaneHarness;
let attacker: string;
let viewerOfA: string;
const b = { tenant: '', origin: '', route: '', key: '', user: '', domain: 'api.hidden-b.example' };
let tenantA = '';
let originOfA = '';

beforeAll(async () => {
  cp = await startControlPlane({ withReadSide: true });
  const post = async (path: string, body: unknown) => {
    const response = await cp.request('POST', path, { body });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    return json(response)['id'] as string;
  };
  tenantA = await post('/api/v1/tenants', { name: 'A', subdomain: 'unseen-a', clerk_org_id: 'org_unseen_a' });
  b.tenant = await post('/api/v1/tenants', {
    name: 'B',
    subdomain: 'unseen-b',
    clerk_org_id: 'org_unseen_b',
  });
  b.origin = await post('/api/v1/origins', { tenant_id: b.tenant, name: 'b', url: 'https://b.example.com' });
  b.route = await post('/api/v1/routes', {
    tenant_id: b.tenant,
    origin_id: b.origin,
    path_pattern: '/b/*',
    auth_mode: 'public',
  });
  b.key = await post('/api/v1/api-keys', { tenant_id: b.tenant, name: 'b-key' });
  b.user = await post('/api/v1/users', {
    tenant_id: b.tenant,
    clerk_user_id: 'user_unseen_b_owner',
    email: 'owner@b.example.com',
    role: 'owner',
  });
  await cp.request('POST', `/api/v1/tenants/${b.tenant}/domains`, {
    body: { domain: b.domain, verified: true },
  });
  originOfA = await post('/api/v1/origins', { tenant_id: tenantA, name: 'a', url: 'https://a.example.com' });
  await post('/api/v1/users', {
    tenant_id: tenantA,
    clerk_user_id: 'user_unseen_a_viewer',
    email: 'viewer@a.example.com',
    role: 'viewer',
  });
  await cp.readModelsCaughtUp();
  attacker = await cp.token({ userId: 'user_unseen_a_admin', orgId: 'org_unseen_a', orgRole: 'admin' });
  viewerOfA = await cp.token({ userId: 'user_unseen_a_viewer' });
});
afterAll(async () => {
  await cp?.close();
});

type Ids = { tenant: string; origin: string; route: string; key: string; user: string };
type Attempt = [method: string, path: (ids: Ids) => string, body?: (ids: Ids) => unknown];

const explainBody = { method: 'GET', host: 'unseen-b.example.com', path: '/b/x' };
const attempts: Attempt[] = [
  ['GET', (t) => `/api/v1/tenants/${t.tenant}`],
  ['PATCH', (t) => `/api/v1/tenants/${t.tenant}`, () => ({ name: 'renamed' })],
  ['DELETE', (t) => `/api/v1/tenants/${t.tenant}`],
  ['GET', (t) => `/api/v1/tenants/${t.tenant}/domains`],
  ['GET', (t) => `/api/v1/tenants/${t.tenant}/domains/${b.domain}`],
  ['POST', (t) => `/api/v1/tenants/${t.tenant}/domains`, () => ({ domain: 'api.probe.example' })],
  [
    'POST',
    (t) => `/api/v1/tenants/${t.tenant}/domains`,
    () => ({ domain: 'api.assigned.example', verified: true }),
  ],
  ['POST', (t) => `/api/v1/tenants/${t.tenant}/domains/${b.domain}/verify`],
  ['DELETE', (t) => `/api/v1/tenants/${t.tenant}/domains/${b.domain}`],
  ['POST', (t) => `/api/v1/tenants/${t.tenant}/cache/purge`, () => ({})],
  ['GET', (t) => `/api/v1/tenants/${t.tenant}/config`],
  ['GET', (t) => `/api/v1/tenants/${t.tenant}/config/document`],
  ['GET', (t) => `/api/v1/tenants/${t.tenant}/config/diff?from=1`],
  ['GET', (t) => `/api/v1/tenants/${t.tenant}/config/history`],
  ['POST', (t) => `/api/v1/tenants/${t.tenant}/config/plan`, () => ({ tenant: { name: 'x' } })],
  ['POST', (t) => `/api/v1/tenants/${t.tenant}/config/apply`, () => ({ tenant: { name: 'x' } })],
  ['POST', (t) => `/api/v1/tenants/${t.tenant}/config/rollback`, () => ({ to_position: '1' })],
  ['POST', (t) => `/api/v1/tenants/${t.tenant}/explain`, () => explainBody],
  ['GET', (t) => `/api/v1/routes?tenant_id=${t.tenant}`],
  ['GET', (t) => `/api/v1/origins?tenant_id=${t.tenant}`],
  ['GET', (t) => `/api/v1/api-keys?tenant_id=${t.tenant}`],
  ['GET', (t) => `/api/v1/users?tenant_id=${t.tenant}`],
  ['GET', (t) => `/api/v1/audit-log?tenant_id=${t.tenant}`],
  ['GET', (t) => `/api/v1/usage?tenant_id=${t.tenant}`],
  [
    'POST',
    () => '/api/v1/origins',
    (t) => ({ tenant_id: t.tenant, name: 'o', url: 'https://o.example.com' }),
  ],
  [
    'POST',
    () => '/api/v1/routes',
    (t) => ({ tenant_id: t.tenant, origin_id: t.origin, path_pattern: '/x', auth_mode: 'public' }),
  ],
  ['POST', () => '/api/v1/api-keys', (t) => ({ tenant_id: t.tenant, name: 'k' })],
  [
    'POST',
    () => '/api/v1/users',
    (t) => ({ tenant_id: t.tenant, clerk_user_id: 'user_probe', email: 'p@example.com', role: 'owner' }),
  ],
  ['GET', (t) => `/api/v1/routes/${t.route}`],
  ['PATCH', (t) => `/api/v1/routes/${t.route}`, () => ({ auth_mode: 'public' })],
  ['DELETE', (t) => `/api/v1/routes/${t.route}`],
  ['POST', (t) => `/api/v1/routes/${t.route}/cache/purge`],
  ['GET', (t) => `/api/v1/origins/${t.origin}`],
  ['PATCH', (t) => `/api/v1/origins/${t.origin}`, () => ({ url: 'https://evil.example.com' })],
  ['DELETE', (t) => `/api/v1/origins/${t.origin}`],
  ['GET', (t) => `/api/v1/api-keys/${t.key}`],
  ['POST', (t) => `/api/v1/api-keys/${t.key}/rotate`],
  ['POST', (t) => `/api/v1/api-keys/${t.key}/revoke`],
  ['DELETE', (t) => `/api/v1/api-keys/${t.key}`],
  ['GET', (t) => `/api/v1/usage?api_key_id=${t.key}`],
  ['GET', (t) => `/api/v1/users/${t.user}`],
  ['PATCH', (t) => `/api/v1/users/${t.user}`, () => ({ role: 'viewer' })],
  ['DELETE', (t) => `/api/v1/users/${t.user}`],
  // B's resources named from A's own tenant.
  [
    'POST',
    () => '/api/v1/routes',
    (t) => ({ tenant_id: tenantA, origin_id: t.origin, path_pattern: '/y', auth_mode: 'public' }),
  ],
  [
    'POST',
    () => '/api/v1/routes',
    (t) => ({
      tenant_id: tenantA,
      origin_id: originOfA,
      path_pattern: '/z',
      auth_mode: 'public',
      traffic_split: {
        origins: [
          { origin_id: originOfA, weight: 50 },
          { origin_id: t.origin, weight: 50 },
        ],
      },
    }),
  ],
  [
    'POST',
    () => `/api/v1/tenants/${tenantA}/config/plan`,
    (t) => ({
      tenant: { name: 'A', subdomain: 'unseen-a' },
      origins: [{ id: originOfA, name: 'a', url: 'https://a.example.com' }],
      routes: [{ id: t.route, origin_id: originOfA, path_pattern: '/b/*', auth_mode: 'public' }],
    }),
  ],
  ['GET', (t) => `/api/v1/usage?tenant_id=${tenantA}&route_id=${t.route}`],
  ['GET', (t) => `/api/v1/usage?tenant_id=${tenantA}&api_key_id=${t.key}`],
  ['GET', (t) => `/api/v1/audit-log?tenant_id=${tenantA}&resource_id=${t.route}`],
];

const unknownIds = (): Ids => ({
  tenant: randomUUID(),
  origin: randomUUID(),
  route: randomUUID(),
  key: randomUUID(),
  user: randomUUID(),
});

async function ask(token: string, [method, path, body]: Attempt, ids: Ids): Promise<ApiResponse> {
  return cp.request(method, path(ids), { token, ...(body ? { body: body(ids) } : {}) });
}

/** The answer with the ids the request named (a filter echoed back) as placeholders. */
function withoutEcho(body: unknown, ids: Ids): unknown {
  let text = JSON.stringify(body);
  for (const [name, id] of Object.entries(ids)) text = text.replaceAll(id, `<${name}>`);
  return JSON.parse(text);
}

const named = (attempt: Attempt, ids: Ids) => `${attempt[0]} ${attempt[1](ids)}`;
const placeholders: Ids = { tenant: '<B>', origin: '<B>', route: '<B>', key: '<B>', user: '<B>' };

describe('another tenant is indistinguishable from no tenant', () => {
  it("B's tenant and resources answer as unknown ids do, and nothing changes", async () => {
    const before = (await cp.allEvents()).length;
    const differences: unknown[] = [];
    for (const attempt of attempts) {
      const hidden = await ask(attacker, attempt, b);
      const ids = unknownIds();
      const unknown = await ask(attacker, attempt, ids);
      const seen = { status: hidden.status, body: withoutEcho(hidden.body, b) };
      if (
        JSON.stringify(seen) !==
        JSON.stringify({ status: unknown.status, body: withoutEcho(unknown.body, ids) })
      ) {
        differences.push({ request: named(attempt, placeholders), b: seen, unknown: unknown.body });
      }
      const text = JSON.stringify(hidden.body);
      if (text.includes(b.tenant) || /unseen-b|org_unseen_b|owner@b/.test(text)) {
        differences.push({ request: named(attempt, placeholders), leaks: text });
      }
    }
    expect(differences).toEqual([]);
    expect((await cp.allEvents()).length).toBe(before);
  });

  it('every request about B answers 404 not_found', async () => {
    const answers: Array<{ request: string; status: number; code: unknown }> = [];
    for (const attempt of attempts) {
      // A's own endpoints, given an id of B, answer about A: as they answer an unknown id.
      if (attempt[1](b).includes(tenantA)) continue;
      const hidden = await ask(attacker, attempt, b);
      const error = json(hidden)['error'] as { code?: unknown } | undefined;
      answers.push({ request: named(attempt, placeholders), status: hidden.status, code: error?.code });
    }
    expect(answers.filter((answer) => answer.status !== 404 || answer.code !== 'not_found')).toEqual([]);
  });
});

describe('a tenant the caller sees without the role it needs', () => {
  it('a viewer of A writing to A gets 403 forbidden', async () => {
    const writes: Array<[string, string, unknown]> = [
      ['PATCH', `/api/v1/tenants/${tenantA}`, { name: 'renamed' }],
      ['POST', '/api/v1/origins', { tenant_id: tenantA, name: 'v', url: 'https://v.example.com' }],
      ['POST', '/api/v1/api-keys', { tenant_id: tenantA, name: 'v' }],
      ['POST', `/api/v1/tenants/${tenantA}/cache/purge`, {}],
      ['POST', `/api/v1/tenants/${tenantA}/domains`, { domain: 'api.viewer.example' }],
      ['POST', `/api/v1/tenants/${tenantA}/config/rollback`, { to_position: '1' }],
    ];
    for (const [method, path, body] of writes) {
      const response = await cp.request(method, path, { token: viewerOfA, body });
      expect(response.status, `${method} ${path}`).toBe(403);
      expect(json(response)).toMatchObject({ error: { code: 'forbidden' } });
    }
    const audit = await cp.request('GET', `/api/v1/audit-log?tenant_id=${tenantA}`, { token: viewerOfA });
    expect(audit.status).toBe(403);
  });

  it('an admin of A deleting A gets 403: deleting tenants is for platform admins', async () => {
    const response = await cp.request('DELETE', `/api/v1/tenants/${tenantA}`, { token: attacker });
    expect(response.status).toBe(403);
    expect(json(response)).toMatchObject({ error: { code: 'forbidden' } });
  });
});
