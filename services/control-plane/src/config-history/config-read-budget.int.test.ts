import { newEvent, originState, routeState } from '@vantageedge/projections/snapshots/testing';
import { streamName } from '@vantageedge/shared/domain/events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';
import { createConfigReadBudget, REHEARSED_STEP_BYTES, useConfigReadBudget } from './config-read-budget.js';

/**
 * Regression test: a whole-config read costs the control plane's one thread about the tenant's config
 * size (a 13 MB tenant: GET …/config/document ≈ 185 ms, POST …/explain ≈ 265 ms of CPU), and one caller
 * may send 3,000 requests a minute, so one admin of a large tenant kept the admin API of every tenant
 * busy. Here a tenant's reads may go through 1 byte of config a minute (the clock stands still): the
 * first read runs, every other whole-config read of that tenant is refused, another tenant's is not.
 */
let cp: ControlPlaneHarness;
const tenants: string[] = [];
let position = '';

const read = (tenantId: string) => ({
  config: () => cp.request('GET', `/api/v1/tenants/${tenantId}/config`),
  document: () => cp.request('GET', `/api/v1/tenants/${tenantId}/config/document`),
  diff: () => cp.request('GET', `/api/v1/tenants/${tenantId}/config/diff?from=${position}`),
  explain: () =>
    cp.request('POST', `/api/v1/tenants/${tenantId}/explain`, {
      body: { method: 'GET', host: 'example.com', path: '/' },
    }),
  plan: () =>
    cp.request('POST', `/api/v1/tenants/${tenantId}/config/plan`, {
      body: { format: 1, tenant: { name: 'heavy', subdomain: 'heavy-reads' }, origins: [], routes: [] },
    }),
  // A rollback's preview reads two whole configs (now and at the position) and plans between them.
  rollbackPreview: () =>
    cp.request('POST', `/api/v1/tenants/${tenantId}/config/rollback`, {
      body: { to_position: position, dry_run: true },
    }),
});

function expectReadLimited(response: ApiResponse): void {
  expect(response.status, JSON.stringify(response.body)).toBe(429);
  const error = json(response)['error'] as { code: string; details: Array<{ field: string }> };
  expect(error.code).toBe('admin_rate_limited');
  expect(error.details.map((detail) => detail.field)).toEqual(['tenant_config_read_bytes_per_minute']);
  expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
}

/** A new tenant whose one route was changed `changes` times, each change naming `scopes` scopes. */
async function tenantWithRouteChanges(name: string, changes: number, scopes: number): Promise<string> {
  const created = await cp.request('POST', '/api/v1/tenants', {
    body: { name, subdomain: `${name}-reads` },
  });
  expect(created.status).toBe(201);
  const tenantId = json(created)['id'] as string;
  const origin = originState(tenantId);
  const route = routeState(tenantId, origin.origin_id);
  await cp.store.appendToStream(streamName.origin(origin.origin_id), [newEvent('OriginCreated', origin)]);
  await cp.store.appendToStream(
    streamName.route(route.route_id),
    [newEvent('RouteCreated', route)].concat(
      Array.from({ length: changes }, (_, change) =>
        newEvent('RouteUpdated', {
          ...route,
          required_scopes: Array.from({ length: scopes }, (_, n) =>
            `orders:read:${change}:${n}`.padEnd(30, '.'),
          ),
          changed_fields: ['required_scopes'],
        }),
      ),
    ),
  );
  return tenantId;
}

beforeAll(async () => {
  cp = await startControlPlane({ withReadSide: true });
  for (const name of ['heavy', 'other', 'planner']) {
    const created = await cp.request('POST', '/api/v1/tenants', {
      body: { name, subdomain: `${name}-reads` },
    });
    expect(created.status).toBe(201);
    tenants.push(json(created)['id'] as string);
    position = created.headers.get('x-event-position') ?? '';
  }
  await cp.request('GET', `/api/v1/tenants/${tenants[1]}/config`, {
    headers: { 'x-min-position': position },
  });
  useConfigReadBudget(cp.store, createConfigReadBudget({ bytesPerMinute: 1, now: () => 0 }));
}, 60_000);
afterAll(async () => {
  await cp?.close();
});

describe('the config read budget', () => {
  it('refuses a tenant’s whole-config reads past its bytes per minute with 429 naming the limit, and only that tenant’s', async () => {
    const heavy = read(tenants[0]!);
    expect((await heavy.config()).status).toBe(200);
    for (const again of [
      heavy.config,
      heavy.document,
      heavy.diff,
      heavy.explain,
      heavy.plan,
      heavy.rollbackPreview,
    ]) {
      expectReadLimited(await again());
    }
    expect((await read(tenants[1]!).document()).status).toBe(200);
  });

  it('charges a plan or apply for validating its document, so a tenant cannot plan large documents back to back', async () => {
    // Validating a document costs the control plane's thread far more per byte than reading config
    // (every entry through its schema): a budget of eight of this document's bytes covers one plan.
    const plannerId = tenants[2]!;
    const document = {
      format: 1,
      tenant: { name: 'planner', subdomain: 'planner-reads' },
      origins: [{ name: 'api', url: 'https://api.example.com' }],
      routes: Array.from({ length: 200 }, (_, index) => ({
        origin: 'api',
        path_pattern: `/r${index}/*`,
        auth_mode: 'public',
        match: { headers: [{ name: 'x-version', prefix: `v${index}` }] },
      })),
    };
    const documentBytes = Buffer.byteLength(JSON.stringify(document));
    useConfigReadBudget(
      cp.store,
      createConfigReadBudget({ bytesPerMinute: 8 * documentBytes, now: () => 0 }),
    );
    const plan = (tenantId: string, name: string) =>
      cp.request('POST', `/api/v1/tenants/${tenantId}/config/plan`, {
        body: { ...document, tenant: { name, subdomain: `${name}-reads` } },
      });

    const first = await plan(plannerId, 'planner');
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expectReadLimited(await plan(plannerId, 'planner'));
    const apply = await cp.request('POST', `/api/v1/tenants/${plannerId}/config/apply`, { body: document });
    expectReadLimited(apply);
    expect((await plan(tenants[1]!, 'other')).status).toBe(200);
  });

  it('charges a history read the bytes of the events it folds: fewer, larger events are refused as many small ones', async () => {
    // A small change is charged its fold's floor, 8 KiB; a change naming 1,000 scopes is some 34 KiB of
    // JSON. 64 small changes and 16 large ones are about as many bytes, 16 small ones a quarter of that.
    const manySmall = await tenantWithRouteChanges('many-small', 64, 1);
    const fewLarge = await tenantWithRouteChanges('few-large', 16, 1_000);
    const fewSmall = await tenantWithRouteChanges('few-small', 16, 1);
    useConfigReadBudget(cp.store, createConfigReadBudget({ bytesPerMinute: 384 * 1024, now: () => 0 }));
    // Once the read models index every change, each fold reads them in one page: the budget is looked at
    // again only by the next read.
    const head = (await cp.store.headPosition()).toString();

    for (const [tenantId, refused] of [
      [manySmall, true],
      [fewLarge, true],
      [fewSmall, false],
    ] as const) {
      const first = await cp.request('GET', `/api/v1/tenants/${tenantId}/config`, {
        headers: { 'x-min-position': head },
      });
      expect(first.status, JSON.stringify(first.body)).toBe(200);
      const again = await read(tenantId).document();
      if (refused) expectReadLimited(again);
      else expect(again.status, JSON.stringify(again.body)).toBe(200);
    }
  });

  // A plan or a rollback's dry run runs its steps as the command would (≈ 1 ms of the thread each), so
  // a document cheap to validate, or a rollback between two small configs, still costs its steps.
  it('charges a plan and a rollback dry run for the steps they rehearse', async () => {
    const created = await cp.request('POST', '/api/v1/tenants', {
      body: { name: 'rehearsed', subdomain: 'rehearsed-reads' },
    });
    const tenantId = json(created)['id'] as string;
    const createdAt = created.headers.get('x-event-position') ?? '';
    const document = {
      format: 1,
      tenant: { name: 'rehearsed', subdomain: 'rehearsed-reads' },
      origins: [{ name: 'api', url: 'https://api.example.com' }],
      routes: Array.from({ length: 50 }, (_, index) => ({
        origin: 'api',
        path_pattern: `/r${index}/*`,
        auth_mode: 'public',
      })),
    };
    const steps = 1 + document.routes.length;
    // Half of what rehearsing the steps costs: far more than the document's validation or the configs.
    const budget = () =>
      useConfigReadBudget(
        cp.store,
        createConfigReadBudget({ bytesPerMinute: (steps * REHEARSED_STEP_BYTES) / 2, now: () => 0 }),
      );
    const plan = () => cp.request('POST', `/api/v1/tenants/${tenantId}/config/plan`, { body: document });
    budget();
    expect((await plan()).status).toBe(200);
    expectReadLimited(await plan());

    useConfigReadBudget(cp.store, createConfigReadBudget({ bytesPerMinute: 0 }));
    const applied = await cp.request('POST', `/api/v1/tenants/${tenantId}/config/apply`, { body: document });
    expect(applied.status, JSON.stringify(applied.body)).toBe(200);
    const preview = () =>
      cp.request('POST', `/api/v1/tenants/${tenantId}/config/rollback`, {
        body: { to_position: createdAt, dry_run: true },
      });
    budget();
    const first = await preview();
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(json(first)['changes']).toHaveLength(steps);
    expectReadLimited(await preview());
  });
});
