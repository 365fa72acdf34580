import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';
import { recordRouteAsAnEarlierReleaseDid as recordRoute } from '../testing/recorded-routes.js';

/**
 * A route a config apply or rollback brings back under its old id meets the rules between a route's
 * fields as a created one does (route-policy-rules.ts, allow_any_authenticated_user on jwt modes only):
 * a document may write any field, and a recorded route may predate a rule.
 */

let h: ControlPlaneHarness;
let tenantId: string;
let originId: string;

const base = () => `/api/v1/tenants/${tenantId}/config`;
const head = async () => (await h.store.headPosition()).toString();
/** Reads answered once the read models hold every event appended so far. */
const caughtUp = async () => ({ headers: { 'x-min-position': await head() } });

async function currentDocument() {
  return json(await h.request('GET', `${base()}/document`, await caughtUp()))['document'] as {
    routes: object[];
  };
}

async function deletedRoute(pathPattern: string): Promise<string> {
  const id = json(
    await h.request('POST', '/api/v1/routes', {
      body: { tenant_id: tenantId, origin_id: originId, path_pattern: pathPattern, auth_mode: 'public' },
    }),
  )['id'] as string;
  expect((await h.request('DELETE', `/api/v1/routes/${id}`)).status).toBe(204);
  return id;
}

/** A route created as a release before a rule recorded it; answers the event's position. */
const recordRouteAsAnEarlierReleaseDid = (route: Record<string, unknown>) =>
  recordRoute(h.store, tenantId, route);

beforeAll(async () => {
  h = await startControlPlane({ withReadSide: true });
  tenantId = json(
    await h.request('POST', '/api/v1/tenants', { body: { name: 'Acme', subdomain: 'acme-restore-rules' } }),
  )['id'] as string;
  originId = json(
    await h.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'api', url: 'http://127.0.0.1:9/' },
    }),
  )['id'] as string;
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('a deleted route brought back by a config document', () => {
  // Regression: the restore appended the route as sent, so a document answered 200 with what the
  // route commands answer 400.
  it.each([
    [
      'both fixed_response and redirect',
      {
        fixed_response: { status: 503 },
        redirect: { status: 302, location: 'https://elsewhere.example/' },
      },
      'redirect',
    ],
    [
      'allow_any_authenticated_user on a public route',
      { allow_any_authenticated_user: true },
      'allow_any_authenticated_user',
    ],
    [
      'both strip_prefix and rewrite_path',
      { strip_prefix: '/a', rewrite_path: { from_prefix: '/a', to_prefix: '/b' } },
      'rewrite_path',
    ],
  ])('is refused with %s as a created one is, and nothing is appended', async (_, fields, field) => {
    const pathPattern = `/restored-${randomUUID().slice(0, 8)}/*`;
    const created = await h.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        origin_id: originId,
        path_pattern: pathPattern,
        auth_mode: 'public',
        ...fields,
      },
    });
    expect(created.status).toBe(400);
    expect(json(created)['error']).toMatchObject({ details: [{ field }] });

    const id = await deletedRoute(pathPattern);
    const document = await currentDocument();
    document.routes.push({
      id,
      origin_id: originId,
      path_pattern: pathPattern,
      auth_mode: 'public',
      ...fields,
    });
    const start = await head();
    const applied = await h.request('POST', `${base()}/apply`, { body: document });
    expect(applied.status, JSON.stringify(applied.body)).toBe(400);
    expect(json(applied)['error']).toMatchObject({ code: 'validation_failed', details: [{ field }] });
    expect(await head()).toBe(start);
    expect((await h.request('GET', `/api/v1/routes/${id}`, await caughtUp())).status).toBe(404);
  });
});

describe('a rollback to a route recorded before a rule', () => {
  it('is refused before its marker, naming the field the route breaks', async () => {
    const id = randomUUID();
    const recordedAt = await recordRouteAsAnEarlierReleaseDid({
      id,
      origin_id: originId,
      path_pattern: '/recorded/*',
      auth_mode: 'public',
      allow_any_authenticated_user: true,
    });
    expect((await h.request('DELETE', `/api/v1/routes/${id}`)).status).toBe(204);
    const start = await head();
    const rollback = await h.request('POST', `${base()}/rollback`, { body: { to_position: recordedAt } });
    expect(rollback.status, JSON.stringify(rollback.body)).toBe(400);
    expect(json(rollback)['error']).toMatchObject({ details: [{ field: 'allow_any_authenticated_user' }] });
    expect(await head()).toBe(start);
    expect((await h.request('GET', `/api/v1/routes/${id}`, await caughtUp())).status).toBe(404);
  });
});

describe('a rollback to routes recorded the same', () => {
  // Regression: a rollback's route steps skip the match check each route command makes (the document is
  // checked as a whole, as an apply's is), and a rollback's document was not: it brought back a route the
  // gateway could never choose.
  it('is refused 409 duplicate_route, its preview too, and nothing is appended', async () => {
    const kept = randomUUID();
    const twin = randomUUID();
    const route = { origin_id: originId, path_pattern: '/twins/*', auth_mode: 'public' };
    await recordRouteAsAnEarlierReleaseDid({ id: kept, ...route });
    const recordedAt = await recordRouteAsAnEarlierReleaseDid({ id: twin, ...route });
    expect((await h.request('DELETE', `/api/v1/routes/${twin}`)).status).toBe(204);
    const start = await head();
    for (const dry_run of [true, false]) {
      const rollback = await h.request('POST', `${base()}/rollback`, {
        body: { to_position: recordedAt, dry_run },
      });
      expect(rollback.status, JSON.stringify(rollback.body)).toBe(409);
      expect(json(rollback)['error']).toMatchObject({ code: 'duplicate_route' });
    }
    expect(await head()).toBe(start);
    expect((await h.request('GET', `/api/v1/routes/${twin}`, await caughtUp())).status).toBe(404);
  });
});
