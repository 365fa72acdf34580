import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * A route's match conditions and its traffic split's overrides unlock a route or an origin: whoever
 * sends `x-internal-secret: <value>` reaches what the condition hides. Their values are for those who
 * may change the route (tenant owners/admins, org admins, platform admins); a caller with read access
 * only (members, viewers, other org roles) sees each condition and override with its value
 * `<redacted>` in every read that shows the route's config.
 */

const REDACTED = '<redacted>';
const HEADER_SECRET = 'hdr-exact-5ecret-0123456789';
const PREFIX_SECRET = 'hdr-prefix-5ecret-abcdef';
const QUERY_SECRET = 'query-exact-5ecret-9876';
const OVERRIDE_SECRET = 'override-5ecret-fedcba';
const SECRETS = [HEADER_SECRET, PREFIX_SECRET, QUERY_SECRET, OVERRIDE_SECRET];

let h: ControlPlaneHarness;
let tenantId: string;
let routeId: string;
let splitRouteId: string;
let tenantCreatedAt: string;
let viewer: string;
let orgMember: string;
let tenantAdmin: string;

const seesNoMatchValue = (body: unknown) => {
  const text = JSON.stringify(body);
  for (const secret of SECRETS) expect(text).not.toContain(secret);
};

const REDACTED_MATCH = {
  headers: [
    { name: 'x-internal-secret', exact: REDACTED },
    { name: 'x-stage', prefix: REDACTED },
    { name: 'x-debug', present: true },
  ],
  query: [{ name: 'preview', exact: REDACTED }],
};

beforeAll(async () => {
  h = await startControlPlane({ withReadSide: true });
  const tenant = await h.request('POST', '/api/v1/tenants', {
    body: { name: 'Hidden', subdomain: 'match-readers', clerk_org_id: 'org_match_readers' },
  });
  tenantId = json(tenant)['id'] as string;
  tenantCreatedAt = tenant.headers.get('x-event-position') ?? '';
  const origin = async (name: string) =>
    json(
      await h.request('POST', '/api/v1/origins', {
        body: { tenant_id: tenantId, name, url: 'http://127.0.0.1:9/' },
      }),
    )['id'] as string;
  const stable = await origin('stable');
  const canary = await origin('canary');
  const route = await h.request('POST', '/api/v1/routes', {
    body: {
      tenant_id: tenantId,
      origin_id: stable,
      path_pattern: '/internal/*',
      methods: ['GET'],
      auth_mode: 'public',
      match: {
        headers: [
          { name: 'x-internal-secret', exact: HEADER_SECRET },
          { name: 'x-stage', prefix: PREFIX_SECRET },
          { name: 'x-debug', present: true },
        ],
        query: [{ name: 'preview', exact: QUERY_SECRET }],
      },
    },
  });
  expect(route.status, JSON.stringify(route.body)).toBe(201);
  routeId = json(route)['id'] as string;
  const split = await h.request('POST', '/api/v1/routes', {
    body: {
      tenant_id: tenantId,
      origin_id: stable,
      path_pattern: '/split/*',
      methods: ['GET'],
      auth_mode: 'public',
      traffic_split: {
        origins: [
          { origin_id: stable, weight: 100 },
          { origin_id: canary, weight: 0 },
        ],
        overrides: [{ header: 'x-canary', value: OVERRIDE_SECRET, origin_id: canary }],
      },
    },
  });
  expect(split.status, JSON.stringify(split.body)).toBe(201);
  splitRouteId = json(split)['id'] as string;
  for (const [userId, role] of [
    ['user_match_viewer', 'viewer'],
    ['user_match_admin', 'admin'],
  ] as const) {
    const user = await h.request('POST', '/api/v1/users', {
      body: { tenant_id: tenantId, clerk_user_id: userId, email: `${role}@match.example`, role },
    });
    expect(user.status, JSON.stringify(user.body)).toBe(201);
  }
  await h.readModelsCaughtUp();
  viewer = await h.token({ userId: 'user_match_viewer' });
  tenantAdmin = await h.token({ userId: 'user_match_admin' });
  orgMember = await h.token({
    userId: 'user_match_org_member',
    orgId: 'org_match_readers',
    orgRole: 'org:member',
  });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('match condition and split override values are for those who may change the route', () => {
  it('GET of the route: redacted for a viewer and an org member, shown to a tenant admin', async () => {
    for (const token of [viewer, orgMember]) {
      const route = await h.request('GET', `/api/v1/routes/${routeId}`, { token });
      expect(route.status).toBe(200);
      seesNoMatchValue(route.body);
      expect(json(route)['match']).toMatchObject(REDACTED_MATCH);
      const split = await h.request('GET', `/api/v1/routes/${splitRouteId}`, { token });
      seesNoMatchValue(split.body);
      expect(json(split)['traffic_split']).toMatchObject({
        overrides: [{ header: 'x-canary', value: REDACTED }],
      });
    }
    const asAdmin = json(await h.request('GET', `/api/v1/routes/${routeId}`, { token: tenantAdmin }));
    expect(asAdmin['match']).toMatchObject({
      headers: [{ exact: HEADER_SECRET }, { prefix: PREFIX_SECRET }, { present: true }],
      query: [{ exact: QUERY_SECRET }],
    });
    const splitAsAdmin = json(
      await h.request('GET', `/api/v1/routes/${splitRouteId}`, { token: tenantAdmin }),
    );
    expect(splitAsAdmin['traffic_split']).toMatchObject({ overrides: [{ value: OVERRIDE_SECRET }] });
  });

  // Regression test: the redacted route a reader got carried the revision's ETag, so a writer (the
  // reader once promoted, in the same browser) revalidating that copy got 304 and kept <redacted>.
  it("a reader's copy of the route is never current for a writer, nor a writer's for a reader", async () => {
    const asViewer = await h.request('GET', `/api/v1/routes/${routeId}`, { token: viewer });
    const asAdmin = await h.request('GET', `/api/v1/routes/${routeId}`, { token: tenantAdmin });
    const viewerTag = asViewer.headers.get('etag') as string;
    const adminTag = asAdmin.headers.get('etag') as string;
    const revalidated = await h.request('GET', `/api/v1/routes/${routeId}`, {
      token: tenantAdmin,
      headers: { 'If-None-Match': viewerTag },
    });
    expect(revalidated.status).toBe(200);
    expect(JSON.stringify(revalidated.body)).toContain(HEADER_SECRET);
    const byViewer = await h.request('GET', `/api/v1/routes/${routeId}`, {
      token: viewer,
      headers: { 'If-None-Match': adminTag },
    });
    expect(byViewer.status).toBe(200);
    seesNoMatchValue(byViewer.body);
    // Each still revalidates its own copy.
    for (const [token, tag] of [
      [viewer, viewerTag],
      [tenantAdmin, adminTag],
    ] as const) {
      const again = await h.request('GET', `/api/v1/routes/${routeId}`, {
        token,
        headers: { 'If-None-Match': tag },
      });
      expect(again.status).toBe(304);
    }
    // The reader's tag is one of ours: sent back as If-Match, the answer is the reader's 403.
    const write = await h.request('PATCH', `/api/v1/routes/${routeId}`, {
      token: viewer,
      body: { priority: 1 },
      headers: { 'If-Match': viewerTag },
    });
    expect(write.status).toBe(403);
  });

  it('route lists: redacted for a viewer, with or without ?tenant_id', async () => {
    for (const path of ['/api/v1/routes', `/api/v1/routes?tenant_id=${tenantId}`]) {
      const list = await h.request('GET', path, { token: viewer });
      expect(list.status).toBe(200);
      const routes = json(list)['data'] as Array<Record<string, unknown>>;
      expect(routes.map((route) => route['id'])).toContain(routeId);
      seesNoMatchValue(list.body);
    }
    const asAdmin = await h.request('GET', `/api/v1/routes?tenant_id=${tenantId}`, { token: tenantAdmin });
    expect(JSON.stringify(asAdmin.body)).toContain(HEADER_SECRET);
  });

  it("the tenant's config, its document and diffs: redacted for a viewer", async () => {
    const base = `/api/v1/tenants/${tenantId}/config`;
    for (const path of [base, `${base}/document`, `${base}/diff?from=${tenantCreatedAt}`]) {
      const answer = await h.request('GET', path, { token: viewer });
      expect(answer.status, path).toBe(200);
      seesNoMatchValue(answer.body);
      expect(JSON.stringify(answer.body), path).toContain(REDACTED);
    }
    const asAdmin = await h.request('GET', `${base}/document`, { token: tenantAdmin });
    expect(JSON.stringify(asAdmin.body)).toContain(HEADER_SECRET);
  });

  // Regression test: the tenant's config and its document carried the config version's ETag whoever
  // read them, so a writer revalidating a copy read as a reader (the reader once promoted, in the same
  // browser) got 304 and kept <redacted>, and a reader revalidating a writer's copy was told it current.
  it("a reader's copy of the tenant's config is never current for a writer, nor a writer's for a reader", async () => {
    const base = `/api/v1/tenants/${tenantId}/config`;
    // As a browser revalidates its copy (fetch would add Cache-Control: no-cache otherwise).
    const ifNoneMatch = (tag: string) => ({ 'If-None-Match': tag, 'Cache-Control': 'max-age=0' });
    for (const path of [base, `${base}/document`]) {
      const viewerTag = (await h.request('GET', path, { token: viewer })).headers.get('etag') as string;
      const adminTag = (await h.request('GET', path, { token: tenantAdmin })).headers.get('etag') as string;
      const revalidated = await h.request('GET', path, {
        token: tenantAdmin,
        headers: ifNoneMatch(viewerTag),
      });
      expect(revalidated.status, path).toBe(200);
      expect(JSON.stringify(revalidated.body), path).toContain(HEADER_SECRET);
      const byViewer = await h.request('GET', path, { token: viewer, headers: ifNoneMatch(adminTag) });
      expect(byViewer.status, path).toBe(200);
      seesNoMatchValue(byViewer.body);
      // Each still revalidates its own copy.
      for (const [token, tag] of [
        [viewer, viewerTag],
        [tenantAdmin, adminTag],
      ] as const) {
        const again = await h.request('GET', path, { token, headers: ifNoneMatch(tag) });
        expect(again.status, path).toBe(304);
      }
    }
  });

  it('the API reference documents what the config reads answer: an ETag where they send one, 304 where they answer it', async () => {
    const reference = json(await h.request('GET', '/openapi.json', { token: null })) as {
      paths: Record<string, { get: { responses: Record<string, { headers?: Record<string, unknown> }> } }>;
    };
    const base = `/api/v1/tenants/${tenantId}/config`;
    for (const [path, documented] of [
      [base, '/api/v1/tenants/{id}/config'],
      [`${base}/document`, '/api/v1/tenants/{id}/config/document'],
      [`${base}/diff?from=${tenantCreatedAt}`, '/api/v1/tenants/{id}/config/diff'],
    ] as const) {
      const responses = reference.paths[documented]?.get.responses ?? {};
      const read = await h.request('GET', path, { token: viewer });
      expect(read.status, path).toBe(200);
      const etag = read.headers.get('etag');
      expect(responses['200']?.headers?.['ETag'] !== undefined, `${documented}: ETag documented`).toBe(
        etag !== null,
      );
      if (etag === null) continue;
      const again = await h.request('GET', path, { token: viewer, headers: { 'If-None-Match': etag } });
      expect(again.status, path).toBe(304);
      expect(Object.keys(responses), documented).toContain('304');
    }
  });

  it('a plan changing the conditions: redacted for a viewer', async () => {
    const dumped = json(
      await h.request('GET', `/api/v1/tenants/${tenantId}/config/document`, { token: viewer }),
    );
    const document = structuredClone(dumped['document']) as { routes: Array<Record<string, unknown>> };
    for (const route of document.routes) {
      route['match'] = { headers: [{ name: 'x-internal-secret', exact: 'a new value' }], query: [] };
      route['traffic_split'] = null;
    }
    const plan = await h.request('POST', `/api/v1/tenants/${tenantId}/config/plan`, {
      token: viewer,
      body: document,
    });
    expect(plan.status, JSON.stringify(plan.body)).toBe(200);
    expect(JSON.stringify(plan.body)).toContain('match');
    seesNoMatchValue(plan.body);
  });

  it("explain's traffic split overrides: redacted for a viewer", async () => {
    const answer = await h.request('POST', `/api/v1/tenants/${tenantId}/explain`, {
      token: viewer,
      body: {
        method: 'GET',
        host: 'match-readers.vantageedge.dev',
        path: '/split/x',
      },
    });
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    seesNoMatchValue(answer.body);
    expect(json(answer)['policies']).toMatchObject({
      traffic_split: { overrides: [{ header: 'x-canary', value: REDACTED }] },
    });
  });
});

describe('the placeholder a reader sees is no value a writer can store', () => {
  it("applying a reader's document (or a PATCH) with a redacted condition or override: 400 naming the field, nothing changed", async () => {
    const dumped = json(
      await h.request('GET', `/api/v1/tenants/${tenantId}/config/document`, { token: viewer }),
    );
    const before = (await h.allEvents()).length;
    const apply = await h.request('POST', `/api/v1/tenants/${tenantId}/config/apply`, {
      token: tenantAdmin,
      body: dumped['document'],
    });
    expect(apply.status, JSON.stringify(apply.body)).toBe(400);
    const fields = (json(apply)['error'] as { details: Array<{ field: string }> }).details.map(
      (detail) => detail.field,
    );
    expect(fields.some((field) => field.endsWith('match.headers.0.exact'))).toBe(true);
    for (const [body, field] of [
      [{ match: { headers: [{ name: 'x-internal-secret', exact: REDACTED }] } }, 'match.headers.0.exact'],
      [{ match: { query: [{ name: 'preview', prefix: REDACTED }] } }, 'match.query.0.prefix'],
    ] as const) {
      const patch = await h.request('PATCH', `/api/v1/routes/${routeId}`, { token: tenantAdmin, body });
      expect(patch.status, JSON.stringify(patch.body)).toBe(400);
      expect(json(patch)).toMatchObject({ error: { code: 'validation_failed', details: [{ field }] } });
    }
    const split = json(await h.request('GET', `/api/v1/routes/${splitRouteId}`, { token: tenantAdmin }));
    const overrides = (split['traffic_split'] as { overrides: Array<Record<string, unknown>> }).overrides;
    const patch = await h.request('PATCH', `/api/v1/routes/${splitRouteId}`, {
      token: tenantAdmin,
      body: {
        traffic_split: {
          ...(split['traffic_split'] as object),
          overrides: overrides.map((override) => ({ ...override, value: REDACTED })),
        },
      },
    });
    expect(patch.status, JSON.stringify(patch.body)).toBe(400);
    expect(json(patch)).toMatchObject({
      error: { code: 'validation_failed', details: [{ field: 'traffic_split.overrides.0.value' }] },
    });
    expect((await h.allEvents()).length).toBe(before);
  });
});
