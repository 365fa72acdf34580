import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantFoldCache, useTenantFoldCache } from '../config-history/tenant-folds.js';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';

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

interface Tenant {
  id: string;
  originId: string;
  routeId: string;
}

/** A tenant whose route changed 30 times: a fold of its config reads more than LIMIT events. */
async function tenantWithHistory(subdomain: string): Promise<Tenant> {
  const created = await h.request('POST', '/api/v1/tenants', { body: { name: subdomain, subdomain } });
  const id = json(created)['id'] as string;
  const origin = await h.request('POST', '/api/v1/origins', {
    body: { tenant_id: id, name: 'api', url: 'http://127.0.0.1:9/' },
  });
  const route = await h.request('POST', '/api/v1/routes', {
    body: {
      tenant_id: id,
      origin_id: json(origin)['id'],
      path_pattern: '/users/*',
      methods: ['GET'],
      auth_mode: 'public',
    },
  });
  const routeId = json(route)['id'] as string;
  for (let n = 0; n < 30; n++) {
    const methods = [n % 2 === 0 ? 'POST' : 'GET'];
    const patched = await h.request('PATCH', `/api/v1/routes/${routeId}`, { body: { methods } });
    expect(patched.status).toBe(200);
  }
  await h.readModelsCaughtUp();
  return { id, originId: json(origin)['id'] as string, routeId };
}

/** Every tenant's fold let go, as in a control plane just started. */
const coldFolds = () => useTenantFoldCache(h.store, createTenantFoldCache());

/** The command, sent again after each 503 (at most 10 times), and the 503s. */
async function untilCarriedOut(send: () => Promise<ApiResponse>) {
  const refusals: ApiResponse[] = [];
  let response = await send();
  while (response.status === 503 && refusals.length < 10) {
    refusals.push(response);
    response = await send();
  }
  return { response, refusals };
}

async function routeCount(tenantId: string): Promise<number> {
  const config = await untilCarriedOut(() => h.request('GET', `/api/v1/tenants/${tenantId}/config`));
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

    const { response, refusals } = await untilCarriedOut(create);
    for (const refusal of refusals) expectReadLimitRefusal(refusal);
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    expect(await routeCount(tenant.id)).toBe(2);
  }, 60_000);

  it('a change checked against the snapshot budget, and an apply, alike', async () => {
    const patched = await tenantWithHistory('cold-patch');
    const applied = await tenantWithHistory('cold-apply');
    const document = await untilCarriedOut(() =>
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

    expect((await untilCarriedOut(patch)).response.status).toBe(200);
    const done = await untilCarriedOut(apply);
    expect(done.response.status, JSON.stringify(done.response.body)).toBe(200);
    const config = await untilCarriedOut(() => h.request('GET', `/api/v1/tenants/${applied.id}/config`));
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
