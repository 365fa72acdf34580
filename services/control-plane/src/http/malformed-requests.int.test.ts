import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * Property test: 1,200 malformed requests (seeded, reproducible) across every command endpoint, sent
 * by a platform admin (who may do everything). Each must get a 4xx with the error shape, and the event
 * store must not grow by a single event.
 */

let cp: ControlPlaneHarness;
let ids: { tenant: string; origin: string; route: string; user: string; key: string };

beforeAll(async () => {
  // 1,200 requests from one admin: the admin API's own rate limits are not what this file tests.
  cp = await startControlPlane({
    bodyLimitBytes: 8192,
    adminRateLimits: { limits: { tenantCommands: null, userRequests: null } },
  });
  const post = async (path: string, body: unknown) =>
    json(await cp.request('POST', path, { body }))['id'] as string;
  const tenant = await post('/api/v1/tenants', { name: 'fuzz', subdomain: 'fuzz', clerk_org_id: 'org_fuzz' });
  const origin = await post('/api/v1/origins', {
    tenant_id: tenant,
    name: 'o',
    url: 'https://o.example.com',
  });
  const route = await post('/api/v1/routes', {
    tenant_id: tenant,
    origin_id: origin,
    path_pattern: '/a/*',
    auth_mode: 'public',
  });
  const user = await post('/api/v1/users', {
    tenant_id: tenant,
    clerk_user_id: 'user_fuzz',
    email: 'f@example.com',
    role: 'owner',
  });
  const key = await post('/api/v1/api-keys', { tenant_id: tenant, name: 'k' });
  ids = { tenant, origin, route, user, key };
});
afterAll(async () => {
  await cp?.close();
});

/** mulberry32: a tiny seeded PRNG so a failure can be reproduced. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Endpoint {
  method: 'POST' | 'PATCH';
  path: () => string;
  valid: () => Record<string, unknown>;
  required: string[];
  /** Field → values that are invalid for that field. */
  bad: Record<string, unknown[]>;
}

const UUID_BAD = ['not-a-uuid', 42, '', '00000000-0000-0000-0000-00000000000g'];
const ENDPOINTS: Endpoint[] = [
  {
    method: 'POST',
    path: () => '/api/v1/tenants',
    valid: () => ({ name: 'n', subdomain: 'fresh', clerk_org_id: 'org_new' }),
    required: ['name', 'subdomain'],
    bad: {
      name: ['', '   ', 'x'.repeat(101), 7],
      subdomain: ['UPPER', '-lead', 'trail-', 'a.b', 'x'.repeat(64), ''],
      clerk_org_id: ['user_1', 'org_', 'org-1', 5],
      settings: [{ rate_limit: { requests_per_second: -1 } }, { oidc: { issuer: '' } }, 'none'],
    },
  },
  {
    method: 'PATCH',
    path: () => `/api/v1/tenants/${ids.tenant}`,
    valid: () => ({ name: 'renamed' }),
    required: [],
    bad: { name: ['', 3], subdomain: ['Bad_Label'], settings: [{ custom_domains: 'a.com' }] },
  },
  {
    method: 'POST',
    path: () => '/api/v1/users',
    valid: () => ({
      tenant_id: ids.tenant,
      clerk_user_id: 'user_new',
      email: 'n@example.com',
      role: 'member',
    }),
    required: ['tenant_id', 'clerk_user_id', 'email', 'role'],
    bad: {
      tenant_id: UUID_BAD,
      clerk_user_id: ['org_1', 'user_', 1],
      email: ['nope', '@x', 'a@'],
      role: ['god', 'OWNER', null],
    },
  },
  {
    method: 'PATCH',
    path: () => `/api/v1/users/${ids.user}`,
    valid: () => ({ role: 'owner' }),
    required: [],
    bad: { role: ['root', 1, null] },
  },
  {
    method: 'POST',
    path: () => '/api/v1/origins',
    valid: () => ({ tenant_id: ids.tenant, name: 'o2', url: 'https://x.example.com', timeout_seconds: 10 }),
    required: ['tenant_id', 'name', 'url'],
    bad: {
      tenant_id: UUID_BAD,
      url: ['ftp://x.example.com', 'javascript:alert(1)', 'not a url', 'file:///etc/passwd'],
      timeout_seconds: [0, 301, 1.5, '30', -5],
      health_check_path: ['health', 'has space', '/x?y'],
      targets: [[], [{ url: 'gopher://x' }], [{ url: 'https://a.example.com', weight: 0 }]],
      load_balancing: [
        { algorithm: 'random' },
        { algorithm: 'consistent_hash', hash_on: 'header' },
        // Names no request can carry: the hash would silently fall back to the client address.
        { algorithm: 'consistent_hash', hash_on: 'header', hash_key: 'x user' },
        { algorithm: 'consistent_hash', hash_on: 'cookie', hash_key: 'session;id' },
      ],
      circuit_breaker: [{ error_rate_threshold: 2 }, { open_seconds: 0 }],
    },
  },
  {
    method: 'PATCH',
    path: () => `/api/v1/origins/${ids.origin}`,
    valid: () => ({ timeout_seconds: 20 }),
    required: [],
    bad: {
      timeout_seconds: [0, 400],
      url: ['ws://x.example.com'],
      health_check: [{ active: { interval_seconds: 0 } }],
    },
  },
  {
    method: 'POST',
    path: () => '/api/v1/routes',
    valid: () => ({
      tenant_id: ids.tenant,
      origin_id: ids.origin,
      path_pattern: '/b/:id',
      auth_mode: 'jwt_required',
    }),
    required: ['tenant_id', 'origin_id', 'path_pattern', 'auth_mode'],
    bad: {
      origin_id: UUID_BAD,
      path_pattern: ['b', '/a/*/c', '/a//b', '/a/:', '/a/:x/:x', '/a b', ''],
      auth_mode: ['none', 'JWT', 1],
      methods: [['GET', 'GET'], ['FETCH'], 'GET'],
      priority: [1.5, 'high', 1e9],
      rate_limit: [
        { requests_per_second: 0 },
        { requests_per_second: 10, burst: 0 },
        { requests_per_second: 1, algorithm: 'leaky' },
      ],
      cache_policy: [{ ttl_seconds: 0 }, { cache_key_pattern: 'full' }, { enabled: 'yes' }],
      strip_prefix: ['api', 3],
    },
  },
  {
    method: 'PATCH',
    path: () => `/api/v1/routes/${ids.route}`,
    valid: () => ({ priority: 5 }),
    required: [],
    bad: { path_pattern: ['nope'], rate_limit: [{ burst: 2 }], required_scopes: [[''], 'read'] },
  },
  {
    method: 'POST',
    path: () => '/api/v1/api-keys',
    valid: () => ({
      tenant_id: ids.tenant,
      name: 'k2',
      scopes: ['read'],
      expires_at: '2030-01-01T00:00:00Z',
    }),
    required: ['tenant_id', 'name'],
    bad: {
      tenant_id: UUID_BAD,
      scopes: ['read', [1], ['has space']],
      expires_at: ['tomorrow', '2030-13-01T00:00:00Z', 1700000000],
    },
  },
  {
    method: 'POST',
    path: () => `/api/v1/api-keys/${ids.key}/rotate`,
    valid: () => ({ grace_period_seconds: 60 }),
    required: [],
    bad: { grace_period_seconds: [-1, 'soon', 1e12, 1.5] },
  },
  {
    method: 'POST',
    path: () => `/api/v1/api-keys/${ids.key}/revoke`,
    valid: () => ({ reason: 'test' }),
    required: [],
    bad: { reason: [5, 'x'.repeat(501), ['a']] },
  },
];

interface Malformed {
  method: string;
  path: string;
  rawBody: string;
  contentType: string;
  note: string;
}

function generate(count: number, seed: number): Malformed[] {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const cases: Malformed[] = [];
  for (let i = 0; i < count; i++) {
    const endpoint = pick(ENDPOINTS);
    const body = endpoint.valid();
    const notes: string[] = [];
    let raw: string | null = null;
    let contentType = 'application/json';
    const kinds = ['unknown', 'bad', 'bad', 'missing', 'shape', 'json', 'media', 'deep'] as const;
    const mutations = 1 + Math.floor(random() * 2);
    for (let m = 0; m < mutations; m++) {
      const kind = pick(kinds);
      if (kind === 'unknown') {
        const field = pick(['extra', 'id', 'tenant', 'created_at', '__proto__x', 'key_hash', 'Name']);
        body[field] = pick([1, 'x', null, {}]);
        notes.push(`unknown ${field}`);
      } else if (kind === 'bad') {
        const [field, values] = pick(Object.entries(endpoint.bad));
        body[field] = pick(values);
        notes.push(`bad ${field}`);
      } else if (kind === 'missing' && endpoint.required.length > 0) {
        const field = pick(endpoint.required);
        delete body[field];
        notes.push(`missing ${field}`);
      } else if (kind === 'deep') {
        const field = pick(Object.keys(endpoint.bad));
        body[field] = { $bad: [[null]] };
        notes.push(`deep ${field}`);
      } else if (kind === 'shape') {
        raw = pick(['[]', '[{}]', '"text"', '42', 'true', 'null', '[1,2,3]']);
        notes.push(`shape ${raw}`);
      } else if (kind === 'json') {
        raw = pick(['{', '{"name":}', "{'a':1}", '{"a":1}}', '\u0000', '{"a":1,}', '{"a": NaN}']);
        notes.push('broken json');
      } else if (kind === 'media') {
        contentType = pick([
          'text/plain',
          'application/x-www-form-urlencoded',
          'application/xml',
          'multipart/form-data; boundary=x',
        ]);
        notes.push(`media ${contentType}`);
      } else {
        body['unexpected'] = true;
        notes.push('unknown unexpected');
      }
    }
    cases.push({
      method: endpoint.method,
      path: endpoint.path(),
      rawBody: raw ?? JSON.stringify(body),
      contentType,
      note: notes.join(', '),
    });
  }
  return cases;
}

describe('malformed requests', () => {
  it('1,200 malformed bodies across all command endpoints: only 4xx, and nothing is appended', async () => {
    const before = await cp.store.headPosition();
    const eventsBefore = (await cp.allEvents()).length;
    const cases = [
      ...generate(1200, 20261127),
      // Oversized bodies on every endpoint.
      ...ENDPOINTS.map((e) => ({
        method: e.method,
        path: e.path(),
        rawBody: JSON.stringify({ ...e.valid(), name: 'x'.repeat(10_000) }),
        contentType: 'application/json',
        note: 'oversized',
      })),
    ];
    const statuses = new Map<number, number>();
    for (let i = 0; i < cases.length; i += 25) {
      const batch = cases.slice(i, i + 25);
      const responses = await Promise.all(
        batch.map((c) =>
          cp.request(c.method, c.path, { rawBody: c.rawBody, headers: { 'content-type': c.contentType } }),
        ),
      );
      responses.forEach((response, j) => {
        const c = batch[j]!;
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        expect(
          response.status,
          `${c.method} ${c.path} [${c.note}] ${c.rawBody.slice(0, 200)}`,
        ).toBeGreaterThanOrEqual(400);
        expect(response.status, `${c.method} ${c.path} [${c.note}] ${c.rawBody.slice(0, 200)}`).toBeLessThan(
          500,
        );
        const body = json(response);
        expect(body).toMatchObject({ error: { code: expect.any(String), message: expect.any(String) } });
      });
    }
    expect(await cp.store.headPosition()).toBe(before);
    expect((await cp.allEvents()).length).toBe(eventsBefore);
    // Every kind of refusal showed up: validation, media type, size.
    expect([...statuses.keys()].sort()).toEqual(expect.arrayContaining([400, 413, 415]));
  }, 180_000);
});
