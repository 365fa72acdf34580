import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foldTenantSnapshot } from '../config-history/tenant-config.js';
import { readTenantEvents } from '../config-history/tenant-events.js';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * Credentials a route sends to its origin (`request_headers.set.authorization`, `add.x-api-key`, …) are
 * write-only: no read of the admin API returns them, to any role — route GET/list and command answers,
 * the tenant's config, its document, diffs, plans, explain and the audit log show `<redacted>` — while
 * the gateways' snapshot (and the event log) keep the real value. A document or a PATCH carrying the
 * placeholder keeps the stored value; the placeholder with nothing stored is a 400 naming the field.
 */

const REDACTED = '<redacted>';
const SECRET = 'Bearer origin-secret-0123456789';
const API_KEY = 'origin-api-key-abcdef0123456789';
const ROTATED = 'Bearer origin-secret-rotated-9876543210';

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
  expect(text).not.toContain(SECRET);
  expect(text).not.toContain(API_KEY);
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
      body: { name: 'Creds', subdomain: 'creds-redact', clerk_org_id: 'org_creds' },
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
      path_pattern: '/x/*',
      methods: ['GET'],
      auth_mode: 'public',
      request_headers: {
        set: { Authorization: SECRET, 'x-tenant': 'creds' },
        add: { 'X-Api-Key': API_KEY },
        remove: ['cookie'],
      },
    },
  });
  expect(route.status).toBe(201);
  created = json(route);
  routeId = created['id'] as string;
  positions['created'] = position(route);
  member = await h.token({ userId: 'user_creds_member', orgId: 'org_creds', orgRole: 'org:member' });
  orgAdmin = await h.token({ userId: 'user_creds_admin', orgId: 'org_creds', orgRole: 'org:admin' });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('credential headers of a route are write-only', () => {
  it('are redacted in the create answer', () => {
    seesNoSecret(created);
    expect(created['request_headers']).toEqual({
      set: { Authorization: REDACTED, 'x-tenant': 'creds' },
      add: { 'X-Api-Key': REDACTED },
      remove: ['cookie'],
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
    expect(json(one)['request_headers']).toMatchObject({
      set: { Authorization: REDACTED, 'x-tenant': 'creds' },
      add: { 'X-Api-Key': REDACTED },
    });
  });

  it.each([
    ['an org member', () => member],
    ['an org admin', () => orgAdmin],
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
    expect(routes[0]?.['request_headers']).toMatchObject({
      set: { Authorization: REDACTED },
      add: { 'X-Api-Key': REDACTED },
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
      body: { method: 'GET', host: 'creds-redact.vantageedge.dev', path: '/x/1' },
    });
    expect(answer.status).toBe(200);
    seesNoSecret(answer.body);
    expect((json(answer)['policies'] as Record<string, unknown>)['request_headers']).toMatchObject({
      set: { Authorization: REDACTED },
    });
  });

  it('a plan answers a guessed credential value alike whether the guess is right or wrong, to every role', async () => {
    const dumped = json(await h.request('GET', `${config()}/document`, { token: member }));
    const withAuthorization = (value: string) => {
      const document = structuredClone(dumped['document']) as { routes: Array<Record<string, unknown>> };
      const route = document.routes[0] as Record<string, unknown>;
      const headers = route['request_headers'] as { set: Record<string, string> };
      route['request_headers'] = { ...headers, set: { ...headers.set, Authorization: value } };
      return document;
    };
    const changedFields = (plan: ApiResponse) =>
      (json(plan)['changes'] as Array<{ fields: Array<{ field: string }> }>).flatMap((change) =>
        change.fields.map((field) => field.field),
      );
    for (const token of [member, orgAdmin]) {
      const right = await h.request('POST', `${config()}/plan`, { token, body: withAuthorization(SECRET) });
      const wrong = await h.request('POST', `${config()}/plan`, {
        token,
        body: withAuthorization('Bearer a-guess'),
      });
      expect([right.status, wrong.status]).toEqual([200, 200]);
      seesNoSecret(right.body);
      expect(changedFields(right)).toEqual(['request_headers.set.Authorization']);
      expect(json(right)['changes']).toEqual(json(wrong)['changes']);
    }
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
    expect(route?.request_headers?.set).toMatchObject({ Authorization: SECRET });
    expect(route?.request_headers?.add).toMatchObject({ 'X-Api-Key': API_KEY });
  });

  it('an edited document keeps the placeholder’s value and changes the rest; the plan never shows the secret', async () => {
    const dumped = json(await h.request('GET', `${config()}/document`, { token: orgAdmin }));
    const document = dumped['document'] as { routes: Array<Record<string, unknown>> };
    const route = document.routes[0] as Record<string, unknown>;
    route['request_headers'] = {
      ...(route['request_headers'] as object),
      set: { Authorization: REDACTED, 'x-tenant': 'acme' },
    };
    const plan = await h.request('POST', `${config()}/plan`, { token: orgAdmin, body: document });
    expect(plan.status).toBe(200);
    seesNoSecret(plan.body);
    const changes = json(plan)['changes'] as Array<{ fields: Array<{ field: string }> }>;
    expect(changes.flatMap((change) => change.fields.map((field) => field.field))).toEqual([
      'request_headers.set.x-tenant',
    ]);
    const apply = await h.request('POST', `${config()}/apply`, { token: orgAdmin, body: document });
    expect(apply.status).toBe(200);
    seesNoSecret(apply.body);
    positions['edited'] = position(apply);
    expect((await snapshotRoute(routeId))?.request_headers?.set).toEqual({
      Authorization: SECRET,
      'x-tenant': 'acme',
    });
  });

  it('a PATCH with the placeholder keeps the value; a new value replaces it and the diff shows no secret', async () => {
    const kept = await h.request('PATCH', `/api/v1/routes/${routeId}`, {
      token: orgAdmin,
      body: { request_headers: { set: { authorization: REDACTED }, add: { 'x-api-key': REDACTED } } },
    });
    expect(kept.status).toBe(200);
    seesNoSecret(kept.body);
    positions['kept'] = position(kept);
    expect((await snapshotRoute(routeId))?.request_headers).toMatchObject({
      set: { authorization: SECRET },
      add: { 'x-api-key': API_KEY },
    });
    const rotated = await h.request('PATCH', `/api/v1/routes/${routeId}`, {
      token: orgAdmin,
      body: { request_headers: { set: { authorization: ROTATED } } },
    });
    expect(rotated.status).toBe(200);
    seesNoSecret(rotated.body);
    expect((await snapshotRoute(routeId))?.request_headers?.set).toEqual({ authorization: ROTATED });
    const diff = await h.request('GET', `${config()}/diff?from=${positions['kept']}`, { token: member });
    expect(diff.status).toBe(200);
    seesNoSecret(diff.body);
    const fields = (
      json(diff)['changes'] as Array<{ fields: Array<{ field: string; from: unknown; to: unknown }> }>
    ).flatMap((change) => change.fields);
    expect(fields).toContainEqual({
      field: 'request_headers.set.authorization',
      from: REDACTED,
      to: REDACTED,
    });
  });

  it('a rollback restores the real value from the events, and shows it to no one', async () => {
    const rollback = await h.request('POST', `${config()}/rollback`, {
      token: orgAdmin,
      body: { to_position: positions['created'] },
    });
    expect(rollback.status).toBe(200);
    seesNoSecret(rollback.body);
    expect((await snapshotRoute(routeId))?.request_headers).toMatchObject({
      set: { Authorization: SECRET },
      add: { 'X-Api-Key': API_KEY },
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
        request_headers: { set: { authorization: REDACTED } },
      },
    });
    expect(create.status).toBe(400);
    expect(json(create)['error']).toMatchObject({
      code: 'validation_failed',
      details: [{ field: 'request_headers.set.authorization' }],
    });
    const patch = await h.request('PATCH', `/api/v1/routes/${routeId}`, {
      token: orgAdmin,
      body: { request_headers: { set: { 'x-session-token': REDACTED } } },
    });
    expect(patch.status).toBe(400);
    expect(json(patch)['error']).toMatchObject({
      code: 'validation_failed',
      details: [{ field: 'request_headers.set.x-session-token' }],
    });
    const dumped = json(await h.request('GET', `${config()}/document`, { token: orgAdmin }));
    const document = dumped['document'] as { routes: Array<Record<string, unknown>> };
    document.routes.push({
      origin: 'upstream',
      path_pattern: '/other/*',
      auth_mode: 'public',
      request_headers: { add: { 'proxy-token': REDACTED } },
    });
    for (const step of ['plan', 'apply']) {
      const answer = await h.request('POST', `${config()}/${step}`, { token: orgAdmin, body: document });
      expect(answer.status).toBe(400);
      expect(json(answer)['error']).toMatchObject({
        code: 'validation_failed',
        details: [{ field: 'routes.1.request_headers.add.proxy-token' }],
      });
    }
  });

  it('a credential value refused is never quoted back, not even the part a refusal names', async () => {
    const FRAGMENT = 'Xk9qPartOfTheSecret';
    const value = `Bearer tok\${${FRAGMENT}}en`;
    const dumped = json(await h.request('GET', `${config()}/document`, { token: orgAdmin }));
    const document = dumped['document'] as { routes: Array<Record<string, unknown>> };
    document.routes.push({
      origin: 'upstream',
      path_pattern: '/quoted/*',
      auth_mode: 'public',
      request_headers: { add: { 'x-api-key': value } },
    });
    const refused: Array<[string, string, unknown, string]> = [
      [
        'POST',
        '/api/v1/routes',
        {
          tenant_id: tenantId,
          origin_id: originId,
          path_pattern: '/quoted/*',
          auth_mode: 'public',
          request_headers: { set: { authorization: value } },
        },
        'request_headers.set.authorization',
      ],
      ['PATCH', `/api/v1/routes/${routeId}`, { query: { set: { api_key: value } } }, 'query.set.api_key'],
      ['POST', `${config()}/plan`, document, 'routes.1.request_headers.add.x-api-key'],
      ['POST', `${config()}/apply`, document, 'routes.1.request_headers.add.x-api-key'],
    ];
    const before = await h.store.headPosition();
    for (const [method, path, body, field] of refused) {
      const answer = await h.request(method, path, { token: orgAdmin, body });
      expect(answer.status, path).toBe(400);
      expect(json(answer)['error'], path).toMatchObject({
        code: 'validation_failed',
        details: [{ field, issue: expect.stringContaining('the variables are') }],
      });
      expect(JSON.stringify(answer.body), path).not.toContain(FRAGMENT);
    }
    expect(await h.store.headPosition()).toBe(before);
    // Any other header's refusal names the variable, which is no secret there.
    const plain = await h.request('PATCH', `/api/v1/routes/${routeId}`, {
      token: orgAdmin,
      body: { request_headers: { set: { 'x-client': `\${${FRAGMENT}}` } } },
    });
    expect(plain.status).toBe(400);
    expect(JSON.stringify(plain.body)).toContain(`\${${FRAGMENT}}`);
  });

  it('the event log keeps the real value (the source of truth)', async () => {
    const events = await h.allEvents();
    const createdEvent = events.find(
      (event) => event.type === 'RouteCreated' && event.stream === `route-${routeId}`,
    );
    expect(JSON.stringify(createdEvent?.data)).toContain(SECRET);
  });

  // Keys sent under names with neither token nor secret in them: Cloudflare's X-Auth-Key, Parse's
  // X-Parse-Master-Key, Datadog's DD-APPLICATION-KEY, and the header spellings of the query's access_key;
  // X.Api.Key and X.Functions.Key are X-Api-Key and X-Functions-Key to PHP origins.
  it.each([
    'X-Auth-Key',
    'X-Parse-Master-Key',
    'DD-APPLICATION-KEY',
    'X-Access-Key',
    'X-App-Key',
    'X.Api.Key',
    'X.Functions.Key',
  ])('a %s value is redacted for a member too', async (name) => {
    const value = `${name.toLowerCase()}-value-0123456789abcdef`;
    const route = await h.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        origin_id: originId,
        path_pattern: `/${name.toLowerCase()}/*`,
        methods: ['GET'],
        auth_mode: 'public',
        request_headers: { set: { [name]: value, 'x-cache-key': 'kept' } },
      },
    });
    expect(route.status).toBe(201);
    const read = await h.request('GET', `/api/v1/routes/${json(route)['id']}`, {
      token: member,
      headers: { 'x-min-position': position(route) },
    });
    expect(read.status).toBe(200);
    expect(JSON.stringify([route.body, read.body])).not.toContain(value);
    expect(json(read)['request_headers']).toMatchObject({
      set: { [name]: REDACTED, 'x-cache-key': 'kept' },
    });
  });
});
