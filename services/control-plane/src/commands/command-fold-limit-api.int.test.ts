import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantFoldCache, useTenantFoldCache } from '../config-history/tenant-folds.js';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';
import { resentAfter503, tenantWithRouteHistory } from '../testing/route-history.js';

/**
 * Through the admin API with CONTROL_PLANE_CONFIG_READ_MAX_EVENTS at 10 and
 * CONTROL_PLANE_READ_STATEMENT_TIMEOUT_MS at 300: a command whose tenant config is not folded yet (a
 * control plane just started, or whose cache let it go) folds it from the event log under the config
 * reads' bounds. Past them it answers their 503 (read_limit_exceeded, read_timeout; Retry-After 1) and
 * appends nothing; sent again it goes on from where the fold stopped and is carried out once.
 */

const LIMIT = 10;
const READ_TIMEOUT_MS = 300;
let h: ControlPlaneHarness;

const tenantWithHistory = (subdomain: string) => tenantWithRouteHistory(h, subdomain);

/** Every tenant's fold let go, as in a control plane just started. */
const coldFolds = () => useTenantFoldCache(h.store, createTenantFoldCache());

async function routeCount(tenantId: string): Promise<number> {
  const config = await resentAfter503(() => h.request('GET', `/api/v1/tenants/${tenantId}/config`));
  return (json(config.response)['routes'] as unknown[]).length;
}

function expectReadLimitRefusal(refusal: ApiResponse) {
  expect(refusal.status, JSON.stringify(refusal.body)).toBe(503);
  expect(refusal.headers.get('retry-after')).toBe('1');
  expect(json(refusal)['error']).toMatchObject({
    code: 'read_limit_exceeded',
    details: [{ field: 'config_read_max_events', issue: `at most ${LIMIT} events read per config` }],
  });
}

beforeAll(async () => {
  h = await startControlPlane({
    withReadSide: true,
    configReadMaxEvents: LIMIT,
    readStatementTimeoutMs: READ_TIMEOUT_MS,
  });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('a command whose tenant fold is over the config read bounds', () => {
  it('a counted create answers 503 read_limit_exceeded, appends nothing, then is carried out once', async () => {
    const tenant = await tenantWithHistory('cold-create');
    coldFolds();
    const head = await h.store.headPosition();
    const create = () =>
      h.request('POST', '/api/v1/routes', {
        body: {
          tenant_id: tenant.id,
          origin_id: tenant.originId,
          path_pattern: '/orders/*',
          methods: ['GET'],
          auth_mode: 'public',
        },
      });
    const first = await create();
    expectReadLimitRefusal(first);
    expect(await h.store.headPosition()).toBe(head);

    const { response, refusals } = await resentAfter503(create);
    for (const refusal of refusals) expectReadLimitRefusal(refusal);
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    expect(await routeCount(tenant.id)).toBe(2);
  }, 60_000);

  it('a change checked against the snapshot budget, and an apply, alike', async () => {
    const patched = await tenantWithHistory('cold-patch');
    const applied = await tenantWithHistory('cold-apply');
    const document = await resentAfter503(() =>
      h.request('GET', `/api/v1/tenants/${applied.id}/config/document`),
    );
    expect(document.response.status).toBe(200);
    const body = json(document.response)['document'] as { routes: Array<Record<string, unknown>> };
    const changed = { ...body, routes: body.routes.map((route) => ({ ...route, methods: ['PUT'] })) };
    coldFolds();
    const head = await h.store.headPosition();

    const patch = () =>
      h.request('PATCH', `/api/v1/routes/${patched.routeId}`, { body: { path_pattern: '/people/*' } });
    const apply = () => h.request('POST', `/api/v1/tenants/${applied.id}/config/apply`, { body: changed });
    expectReadLimitRefusal(await patch());
    expectReadLimitRefusal(await apply());
    expect(await h.store.headPosition()).toBe(head);

    expect((await resentAfter503(patch)).response.status).toBe(200);
    const done = await resentAfter503(apply);
    expect(done.response.status, JSON.stringify(done.response.body)).toBe(200);
    const config = await resentAfter503(() => h.request('GET', `/api/v1/tenants/${applied.id}/config`));
    expect((json(config.response)['routes'] as Array<Record<string, unknown>>)[0]?.['methods']).toEqual([
      'PUT',
    ]);
  }, 120_000);

  it('cuts its fold’s reads off after the read statement timeout: 503 read_timeout, nothing appended', async () => {
    const tenant = await tenantWithHistory('cold-timeout');
    coldFolds();
    const head = await h.store.headPosition();
    // The audit log (through which a fold finds the tenant's streams) locked: a read of it waits for the
    // lock, past any timeout. Let go after 20 s at the latest, so that a fold not cut off goes on (and
    // fails the test).
    const locker = new pg.Client({ connectionString: h.db.url });
    await locker.connect();
    await locker.query('begin; lock table read_models.audit_log in access exclusive mode');
    const unlock = setTimeout(() => void locker.query('rollback'), 20_000);
    let refused: ApiResponse;
    try {
      refused = await h.request('POST', '/api/v1/routes', {
        body: {
          tenant_id: tenant.id,
          origin_id: tenant.originId,
          path_pattern: '/orders/*',
          methods: ['GET'],
          auth_mode: 'public',
        },
      });
    } finally {
      clearTimeout(unlock);
      await locker.query('rollback');
      await locker.end();
    }
    expect(refused.status, JSON.stringify(refused.body)).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(json(refused)['error']).toMatchObject({ code: 'read_timeout' });
    expect(await h.store.headPosition()).toBe(head);
    expect(await routeCount(tenant.id)).toBe(1);
  }, 120_000);
});

describe('an apply whose config was folded before it began', () => {
  it('is carried out whole when its later steps’ folds are slow: never cut off between two steps', async () => {
    const tenant = await tenantWithHistory('slow-steps');
    const document = await resentAfter503(() =>
      h.request('GET', `/api/v1/tenants/${tenant.id}/config/document`),
    );
    expect(document.response.status).toBe(200);
    const body = json(document.response)['document'] as { routes: Array<Record<string, unknown>> };
    const [route] = body.routes;
    const changed = {
      ...body,
      routes: [
        { ...route, methods: ['PUT'] },
        { ...route, id: undefined, path_pattern: '/orders/*', methods: ['GET'] },
      ],
    };
    // Every step after the first folds on from the one before it: the read models' checkpoint, read
    // first, is locked past the read timeout, as on a database slow to answer, then let go.
    const locker = new pg.Client({ connectionString: h.db.url });
    await locker.connect();
    await locker.query('begin; lock table projection_checkpoints in access exclusive mode');
    const unlock = setTimeout(() => void locker.query('rollback'), 10 * READ_TIMEOUT_MS);
    let applied: ApiResponse;
    try {
      applied = await h.request('POST', `/api/v1/tenants/${tenant.id}/config/apply`, { body: changed });
    } finally {
      clearTimeout(unlock);
      await locker.query('rollback');
      await locker.end();
    }
    expect(applied.status, JSON.stringify(applied.body)).toBe(200);
    const config = await resentAfter503(() => h.request('GET', `/api/v1/tenants/${tenant.id}/config`));
    const routes = json(config.response)['routes'] as Array<{ path_pattern: string; methods: string[] }>;
    expect(routes.map(({ path_pattern, methods }) => ({ path_pattern, methods }))).toEqual(
      expect.arrayContaining([
        { path_pattern: '/users/*', methods: ['PUT'] },
        { path_pattern: '/orders/*', methods: ['GET'] },
      ]),
    );
    expect(routes).toHaveLength(2);
  }, 120_000);
});
