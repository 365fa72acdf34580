import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foldTenantSnapshot } from '../config-history/tenant-config.js';
import { readTenantEvents } from '../config-history/tenant-events.js';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * A route's query transform can carry a credential to its origin (`query.set.api_key`,
 * `add.access_token`, `set.sig`, …): like credential request headers (credential-headers.int.test.ts)
 * those values are write-only. No read of the admin API returns them, to any role — route GET/list and
 * command answers, the tenant's config, its document, diffs, plans, explain and the audit log show
 * `<redacted>` — while the gateways' snapshot (and the event log) keep the real value. A document or a
 * PATCH carrying the placeholder keeps the stored value; with nothing stored it is a 400 naming the field.
 */

const REDACTED = '<redacted>';
const KEY = 'origin-query-key-0123456789';
const TOKEN = 'origin-query-token-abcdef0123456789';
const ROTATED = 'origin-query-key-rotated-9876543210';

let h: ControlPlaneHarness;
let tenantId: string;
let originId: string;
let routeId: string;
let created: Record<string, unknown>;
let member: string;
let orgAdmin: string;
const positions: Record<string, string> = {};

const position = (response: { headers: Headers }) => response.headers.get('x-event-position') ?? '';
const config = () => `/api/v1/tenants/${tenantId}/config`;
const seesNoSecret = (body: unknown) => {
  const text = JSON.stringify(body);
  expect(text).not.toContain(KEY);
  expect(text).not.toContain(TOKEN);
  expect(text).not.toContain(ROTATED);
};
/** What the gateways are sent: the snapshot projector's fold of the tenant's events. */
async function snapshotRoute(id: string) {
  const events = await readTenantEvents(
    { store: h.store, pool: h.db.pool },
    tenantId,
    await h.store.headPosition(),
  );
  const state = foldTenantSnapshot(events);
  if (state?.status !== 'live') throw new Error('no live snapshot');
  return state.snapshot.routes.find((route) => route.id === id);
}

beforeAll(async () => {
  h = await startControlPlane({ withReadSide: true });
  tenantId = json(
    await h.request('POST', '/api/v1/tenants', {
      body: { name: 'QueryCreds', subdomain: 'query-creds', clerk_org_id: 'org_qcreds' },
    }),
  )['id'] as string;
  originId = json(
    await h.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'upstream', url: 'http://127.0.0.1:9/' },
    }),
  )['id'] as string;
  const route = await h.request('POST', '/api/v1/routes', {
    body: {
      tenant_id: tenantId,
      origin_id: originId,
      path_pattern: '/q/*',
      methods: ['GET'],
      auth_mode: 'public',
      query: {
        set: { api_key: KEY, format: 'json' },
        add: { access_token: TOKEN },
        remove: ['key'],
      },
    },
  });
  expect(route.status).toBe(201);
  created = json(route);
  routeId = created['id'] as string;
  positions['created'] = position(route);
  member = await h.token({ userId: 'user_qcreds_member', orgId: 'org_qcreds', orgRole: 'org:member' });
  orgAdmin = await h.token({ userId: 'user_qcreds_admin', orgId: 'org_qcreds', orgRole: 'org:admin' });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('credential query parameters of a route are write-only', () => {
  it('are redacted in the create answer', () => {
    seesNoSecret(created);
    expect(created['query']).toEqual({
      set: { api_key: REDACTED, format: 'json' },
      add: { access_token: REDACTED },
      remove: ['key'],
    });
  });

  it.each([
    ['an org member', () => member],
    ['an org admin', () => orgAdmin],
    ['a platform admin', () => h.adminToken],
  ])('are redacted in route GET and list for %s', async (_who, token) => {
    const headers = { 'x-min-position': positions['created'] ?? '' };
    const one = await h.request('GET', `/api/v1/routes/${routeId}`, { token: token(), headers });
    const list = await h.request('GET', `/api/v1/routes?tenant_id=${tenantId}`, { token: token(), headers });
    expect([one.status, list.status]).toEqual([200, 200]);
    seesNoSecret(one.body);
    seesNoSecret(list.body);
    expect(json(one)['query']).toEqual({
      set: { api_key: REDACTED, format: 'json' },
      add: { access_token: REDACTED },
      remove: ['key'],
    });
  });

  it('the routes read model stores them redacted', async () => {
    const { rows } = await h.db.pool.query<{ policies: unknown }>(
      `select policies from read_models.routes where id = $1`,
      [routeId],
    );
    expect(rows).toHaveLength(1);
    seesNoSecret(rows);
  });

  it.each([
    ['an org member', () => member],
    ['a platform admin', () => h.adminToken],
  ])('are redacted in the tenant config, at a position and as a document for %s', async (_who, token) => {
    const now = await h.request('GET', config(), { token: token() });
    const then = await h.request('GET', `${config()}?at_position=${positions['created']}`, {
      token: token(),
    });
    const document = await h.request('GET', `${config()}/document`, { token: token() });
    expect([now.status, then.status, document.status]).toEqual([200, 200, 200]);
    for (const body of [now.body, then.body, document.body]) seesNoSecret(body);
    const routes = (json(document)['document'] as { routes: Array<Record<string, unknown>> }).routes;
    expect(routes[0]?.['query']).toMatchObject({
      set: { api_key: REDACTED, format: 'json' },
      add: { access_token: REDACTED },
    });
  });

  it('are redacted in the audit log (the projection stores them redacted)', async () => {
    const audit = await h.request('GET', `/api/v1/audit-log?tenant_id=${tenantId}&resource_type=route`, {
      headers: { 'x-min-position': positions['created'] ?? '' },
    });
    expect(audit.status).toBe(200);
    seesNoSecret(audit.body);
    const { rows } = await h.db.pool.query<{ data: unknown }>(
      `select data from read_models.audit_log where tenant_id = $1`,
      [tenantId],
    );
    expect(rows.length).toBeGreaterThan(0);
    seesNoSecret(rows);
  });

  it('are redacted in explain', async () => {
    const answer = await h.request('POST', `/api/v1/tenants/${tenantId}/explain`, {
      token: member,
      body: { method: 'GET', host: 'query-creds.vantageedge.dev', path: '/q/1' },
    });
    expect(answer.status).toBe(200);
    seesNoSecret(answer.body);
    expect((json(answer)['policies'] as Record<string, unknown>)['query']).toMatchObject({
      set: { api_key: REDACTED, format: 'json' },
      add: { access_token: REDACTED },
    });
  });

  it('a plan answers a guessed credential value alike whether the guess is right or wrong; applied, the value is kept', async () => {
    const dumped = json(await h.request('GET', `${config()}/document`, { token: member }));
    const withApiKey = (value: string) => {
      const document = structuredClone(dumped['document']) as { routes: Array<Record<string, unknown>> };
      const route = document.routes[0] as Record<string, unknown>;
      const query = route['query'] as { set: Record<string, string> };
      route['query'] = { ...query, set: { ...query.set, api_key: value } };
      return document;
    };
    const right = await h.request('POST', `${config()}/plan`, { token: member, body: withApiKey(KEY) });
    const wrong = await h.request('POST', `${config()}/plan`, { token: member, body: withApiKey('a-guess') });
    expect([right.status, wrong.status]).toEqual([200, 200]);
    seesNoSecret(right.body);
    expect(json(right)['changes']).toEqual(json(wrong)['changes']);
    const fields = (json(right)['changes'] as Array<{ fields: unknown[] }>).flatMap(
      (change) => change.fields,
    );
    expect(fields).toEqual([{ field: 'query.set.api_key', from: REDACTED, to: REDACTED }]);
    const apply = await h.request('POST', `${config()}/apply`, { token: orgAdmin, body: withApiKey(KEY) });
    expect(apply.status).toBe(200);
    seesNoSecret(apply.body);
    expect((await snapshotRoute(routeId))?.query?.set).toEqual({ api_key: KEY, format: 'json' });
  });

  it('a dumped document applies back unchanged: the plan is empty and the gateways keep the value', async () => {
    const dumped = json(await h.request('GET', `${config()}/document`, { token: orgAdmin }));
    const document = dumped['document'];
    const plan = await h.request('POST', `${config()}/plan`, { token: orgAdmin, body: document });
    expect(plan.status).toBe(200);
    expect(json(plan)['changes']).toEqual([]);
    const apply = await h.request('POST', `${config()}/apply`, { token: orgAdmin, body: document });
    expect(apply.status).toBe(200);
    expect(json(apply)['changes']).toEqual([]);
    const route = await snapshotRoute(routeId);
    expect(route?.query).toEqual({
      set: { api_key: KEY, format: 'json' },
      add: { access_token: TOKEN },
      remove: ['key'],
    });
  });

  it('an edited document keeps the placeholder’s value and changes the rest; the plan never shows the secret', async () => {
    const dumped = json(await h.request('GET', `${config()}/document`, { token: orgAdmin }));
    const document = dumped['document'] as { routes: Array<Record<string, unknown>> };
    const route = document.routes[0] as Record<string, unknown>;
    route['query'] = { ...(route['query'] as object), set: { api_key: REDACTED, format: 'xml' } };
    const plan = await h.request('POST', `${config()}/plan`, { token: orgAdmin, body: document });
    expect(plan.status).toBe(200);
    seesNoSecret(plan.body);
    const changes = json(plan)['changes'] as Array<{ fields: Array<{ field: string }> }>;
    expect(changes.flatMap((change) => change.fields.map((field) => field.field))).toEqual([
      'query.set.format',
    ]);
    const apply = await h.request('POST', `${config()}/apply`, { token: orgAdmin, body: document });
    expect(apply.status).toBe(200);
    seesNoSecret(apply.body);
    expect((await snapshotRoute(routeId))?.query?.set).toEqual({ api_key: KEY, format: 'xml' });
  });

  it('a PATCH with the placeholder keeps the value; a new value replaces it and the diff shows no secret', async () => {
    const kept = await h.request('PATCH', `/api/v1/routes/${routeId}`, {
      token: orgAdmin,
      body: { query: { set: { api_key: REDACTED }, add: { access_token: REDACTED } } },
    });
    expect(kept.status).toBe(200);
    seesNoSecret(kept.body);
    expect(json(kept)['query']).toEqual({
      set: { api_key: REDACTED },
      add: { access_token: REDACTED },
      remove: [],
    });
    positions['kept'] = position(kept);
    expect((await snapshotRoute(routeId))?.query).toEqual({
      set: { api_key: KEY },
      add: { access_token: TOKEN },
      remove: [],
    });
    const rotated = await h.request('PATCH', `/api/v1/routes/${routeId}`, {
      token: orgAdmin,
      body: { query: { set: { api_key: ROTATED } } },
    });
    expect(rotated.status).toBe(200);
    seesNoSecret(rotated.body);
    expect((await snapshotRoute(routeId))?.query?.set).toEqual({ api_key: ROTATED });
    const diff = await h.request('GET', `${config()}/diff?from=${positions['kept']}`, { token: member });
    expect(diff.status).toBe(200);
    seesNoSecret(diff.body);
    const fields = (
      json(diff)['changes'] as Array<{ fields: Array<{ field: string; from: unknown; to: unknown }> }>
    ).flatMap((change) => change.fields);
    expect(fields).toContainEqual({ field: 'query.set.api_key', from: REDACTED, to: REDACTED });
  });

  it('a rollback restores the real value from the events, and shows it to no one', async () => {
    const rollback = await h.request('POST', `${config()}/rollback`, {
      token: orgAdmin,
      body: { to_position: positions['created'] },
    });
    expect(rollback.status).toBe(200);
    seesNoSecret(rollback.body);
    expect((await snapshotRoute(routeId))?.query).toEqual({
      set: { api_key: KEY, format: 'json' },
      add: { access_token: TOKEN },
      remove: ['key'],
    });
  });

  it('the placeholder where nothing is stored is a 400 naming the field', async () => {
    const create = await h.request('POST', '/api/v1/routes', {
      token: orgAdmin,
      body: {
        tenant_id: tenantId,
        origin_id: originId,
        path_pattern: '/new/*',
        auth_mode: 'public',
        query: { set: { sig: REDACTED } },
      },
    });
    expect(create.status).toBe(400);
    expect(json(create)['error']).toMatchObject({
      code: 'validation_failed',
      details: [{ field: 'query.set.sig' }],
    });
    const patch = await h.request('PATCH', `/api/v1/routes/${routeId}`, {
      token: orgAdmin,
      body: { query: { set: { client_secret: REDACTED } } },
    });
    expect(patch.status).toBe(400);
    expect(json(patch)['error']).toMatchObject({
      code: 'validation_failed',
      details: [{ field: 'query.set.client_secret' }],
    });
    const dumped = json(await h.request('GET', `${config()}/document`, { token: orgAdmin }));
    const document = dumped['document'] as { routes: Array<Record<string, unknown>> };
    document.routes.push({
      origin: 'upstream',
      path_pattern: '/other/*',
      auth_mode: 'public',
      query: { add: { 'X-Amz-Signature': REDACTED } },
    });
    for (const step of ['plan', 'apply']) {
      const answer = await h.request('POST', `${config()}/${step}`, { token: orgAdmin, body: document });
      expect(answer.status).toBe(400);
      expect(json(answer)['error']).toMatchObject({
        code: 'validation_failed',
        details: [{ field: 'routes.1.query.add.X-Amz-Signature' }],
      });
    }
  });

  it('rows projected before the rule are redacted when read (audit log, routes read model)', async () => {
    const raw = { set: { api_key: KEY }, add: { access_token: TOKEN }, remove: [] };
    // The rows are written as an earlier release left them once the projector has nothing left to
    // project over them (the route's later updates would replace its policies).
    await h.readModelsCaughtUp();
    await h.db.pool.query(
      `update read_models.routes set policies = jsonb_set(policies, '{query}', $2::jsonb) where id = $1`,
      [routeId, JSON.stringify(raw)],
    );
    await h.db.pool.query(
      `update read_models.audit_log set data = jsonb_set(data, '{query}', $2::jsonb)
        where tenant_id = $1 and resource_type = 'route'`,
      [tenantId, JSON.stringify(raw)],
    );
    const one = await h.request('GET', `/api/v1/routes/${routeId}`, { token: h.adminToken });
    const list = await h.request('GET', `/api/v1/routes?tenant_id=${tenantId}`, { token: h.adminToken });
    const audit = await h.request('GET', `/api/v1/audit-log?tenant_id=${tenantId}&resource_type=route`);
    expect([one.status, list.status, audit.status]).toEqual([200, 200, 200]);
    for (const body of [one.body, list.body, audit.body]) seesNoSecret(body);
    expect(json(one)['query']).toEqual({
      set: { api_key: REDACTED },
      add: { access_token: REDACTED },
      remove: [],
    });
  });

  it('the event log keeps the real value (the source of truth)', async () => {
    const events = await h.allEvents();
    const createdEvent = events.find(
      (event) => event.type === 'RouteCreated' && event.stream === `route-${routeId}`,
    );
    expect(JSON.stringify(createdEvent?.data)).toContain(KEY);
  });
});
