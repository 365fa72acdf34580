import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';
import { recordRouteAsAnEarlierReleaseDid as recordRoute } from '../testing/recorded-routes.js';

/**
 * A config plan and a rollback's dry run answer what apply and the rollback would: their steps are
 * rehearsed as the real command's are, so a step refusal is the same 4xx with the same error, and
 * still nothing is appended.
 */

let h: ControlPlaneHarness;
let tenantId: string;
let originId: string;
let orgAdmin: string;

const ORG = 'org_config_previews';
const base = () => `/api/v1/tenants/${tenantId}/config`;
const head = async () => (await h.store.headPosition()).toString();
/** Reads answered once the read models hold every event appended so far. */
const caughtUp = async () => ({ headers: { 'x-min-position': await head() } });

/** The error a response answers, without what differs between two requests. */
function errorOf(response: ApiResponse) {
  const { request_id: _requestId, ...error } = json(response)['error'] as Record<string, unknown>;
  return error;
}

async function currentDocument(atPosition?: string) {
  const at = atPosition === undefined ? '' : `?at_position=${atPosition}`;
  return json(await h.request('GET', `${base()}/document${at}`, await caughtUp()))['document'] as {
    tenant: Record<string, unknown>;
    origins: object[];
    routes: Array<{ id?: string } & Record<string, unknown>>;
  };
}

/** A route created as a release before a rule recorded it; answers the event's position. */
const recordRouteAsAnEarlierReleaseDid = (route: Record<string, unknown>) =>
  recordRoute(h.store, tenantId, route);

/** The preview's answer and the real command's, both sent after `start`: nothing may be appended. */
async function previewAndCommand(
  preview: () => Promise<ApiResponse>,
  command: () => Promise<ApiResponse>,
): Promise<[ApiResponse, ApiResponse]> {
  const start = await head();
  const previewed = await preview();
  expect(await head()).toBe(start);
  const commanded = await command();
  expect(await head()).toBe(start);
  return [previewed, commanded];
}

beforeAll(async () => {
  h = await startControlPlane({ withReadSide: true });
  tenantId = json(
    await h.request('POST', '/api/v1/tenants', {
      body: { name: 'Previews', subdomain: 'config-previews', clerk_org_id: ORG },
    }),
  )['id'] as string;
  originId = json(
    await h.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'api', url: 'http://127.0.0.1:9/' },
    }),
  )['id'] as string;
  orgAdmin = await h.token({ userId: 'user_previews_orgadmin', orgId: ORG, orgRole: 'admin' });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('a rollback dry run', () => {
  // Regression: the dry run only planned, so it answered 200 with a plan the rollback refused.
  it('is refused 403 as the rollback is, when an org admin would move the subdomain back', async () => {
    const before = await head();
    const moved = await h.request('PATCH', `/api/v1/tenants/${tenantId}`, {
      body: { subdomain: 'config-previews-moved' },
    });
    expect(moved.status).toBe(200);
    const rollback = (dry_run: boolean) => () =>
      h.request('POST', `${base()}/rollback`, { token: orgAdmin, body: { to_position: before, dry_run } });
    const [preview, real] = await previewAndCommand(rollback(true), rollback(false));
    expect(real.status, JSON.stringify(real.body)).toBe(403);
    expect(errorOf(real)).toMatchObject({ details: [{ field: 'tenant.subdomain' }] });
    expect(preview.status, JSON.stringify(preview.body)).toBe(403);
    expect(errorOf(preview)).toEqual(errorOf(real));

    // The platform admin may: its dry run still answers the plan, and appends nothing.
    const start = await head();
    const allowed = await h.request('POST', `${base()}/rollback`, {
      body: { to_position: before, dry_run: true },
    });
    expect(allowed.status, JSON.stringify(allowed.body)).toBe(200);
    expect(json(allowed)['changes']).toEqual([
      expect.objectContaining({ resource: 'tenant', change: 'changed' }),
    ]);
    expect(await head()).toBe(start);
    const back = await h.request('PATCH', `/api/v1/tenants/${tenantId}`, {
      body: { subdomain: 'config-previews' },
    });
    expect(back.status).toBe(200);
  });

  it('is refused 400 as the rollback is, bringing back a route recorded before a rule', async () => {
    const id = randomUUID();
    const recordedAt = await recordRouteAsAnEarlierReleaseDid({
      id,
      origin_id: originId,
      path_pattern: '/previewed-recorded/*',
      auth_mode: 'public',
      allow_any_authenticated_user: true,
    });
    expect((await h.request('DELETE', `/api/v1/routes/${id}`)).status).toBe(204);
    const rollback = (dry_run: boolean) => () =>
      h.request('POST', `${base()}/rollback`, { body: { to_position: recordedAt, dry_run } });
    const [preview, real] = await previewAndCommand(rollback(true), rollback(false));
    expect(real.status, JSON.stringify(real.body)).toBe(400);
    // Named as in the document of the config the rollback restores.
    const index = (await currentDocument(recordedAt)).routes.findIndex((route) => route.id === id);
    expect(errorOf(real)).toMatchObject({
      code: 'validation_failed',
      details: [{ field: `routes.${index}.allow_any_authenticated_user` }],
    });
    expect(preview.status, JSON.stringify(preview.body)).toBe(400);
    expect(errorOf(preview)).toEqual(errorOf(real));
    expect((await h.request('GET', `/api/v1/routes/${id}`, await caughtUp())).status).toBe(404);
  });
});

describe('a config plan', () => {
  // Regression: plan only compared the document with the config, so it answered 200 for a document
  // whose steps apply refuses.
  it('is refused 400 as apply is, for a route whose host is not the tenant’s', async () => {
    const document = await currentDocument();
    document.origins.push({ name: 'hosts-api', url: 'http://127.0.0.1:9/' });
    document.routes.push({
      origin: 'hosts-api',
      path_pattern: '/previewed-hosts/*',
      auth_mode: 'public',
      match: { hosts: ['elsewhere.example.com'] },
    });
    const send = (command: string) => () => h.request('POST', `${base()}/${command}`, { body: document });
    const [plan, apply] = await previewAndCommand(send('plan'), send('apply'));
    expect(apply.status, JSON.stringify(apply.body)).toBe(400);
    expect(errorOf(apply)).toMatchObject({
      details: [{ field: `routes.${document.routes.length - 1}.match.hosts.0` }],
    });
    expect(plan.status, JSON.stringify(plan.body)).toBe(400);
    expect(errorOf(plan)).toEqual(errorOf(apply));
  });

  it('is refused 403 as apply is, when an org admin changes the subdomain', async () => {
    const document = await currentDocument();
    document.tenant = { ...document.tenant, subdomain: 'config-previews-planned' };
    const send = (command: string) => () =>
      h.request('POST', `${base()}/${command}`, { token: orgAdmin, body: document });
    const [plan, apply] = await previewAndCommand(send('plan'), send('apply'));
    expect(apply.status, JSON.stringify(apply.body)).toBe(403);
    expect(errorOf(apply)).toMatchObject({ details: [{ field: 'tenant.subdomain' }] });
    expect(plan.status, JSON.stringify(plan.body)).toBe(403);
    expect(errorOf(plan)).toEqual(errorOf(apply));
  });

  it('that passes still answers its changes, appending nothing', async () => {
    const document = await currentDocument();
    document.routes.push({ origin_id: originId, path_pattern: '/previewed-ok/*', auth_mode: 'public' });
    const start = await head();
    const plan = await h.request('POST', `${base()}/plan`, { token: orgAdmin, body: document });
    expect(plan.status, JSON.stringify(plan.body)).toBe(200);
    expect(json(plan)['changes']).toEqual([expect.objectContaining({ resource: 'route', change: 'added' })]);
    expect(await head()).toBe(start);
  });
});
