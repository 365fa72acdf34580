import { newEvent, routeState } from '@vantageedge/projections/snapshots/testing';
import { streamName } from '@vantageedge/shared/domain/events';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConfigReadBudget, useConfigReadBudget } from '../config-history/config-read-budget.js';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * Regression test: a plan (read access: a viewer may send it) reads, before it plans, the event stream of
 * each id its document names that is not live — a deleted resource the document may bring back — one
 * after the other, the whole stream the first time. A viewer's 1,000-route document naming the tenant's
 * deleted routes (each changed 25 times) made the control plane read 1,000 streams, 27,000 events (7.5 s
 * with the tenant's config folded the first time; 1,000 statements, 0.9 s, when sent again), charged
 * only for validating the document: some 250 such plans a minute fit the tenant's config read budget,
 * where a writer's plan of the same document, charged for its rehearsal, fits 8. The reads are charged
 * now, and stop once the budget is in debt.
 */
let cp: ControlPlaneHarness;
let store: EventStore;
let tenantId = '';
let viewer = '';
let clock = 0;
const deletedRoutes: string[] = [];
const ROUTES = 1_000;
/** Enough for validating the 1,000-route document (≈ 2 MB), not for reading 1,000 streams as well. */
const BYTES_PER_MINUTE = 4 * 1024 * 1024;
let streamReads = 0;

function counted(inner: EventStore): EventStore {
  store = new Proxy(inner, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (name !== 'readStream' || typeof value !== 'function') return value;
      return (...args: Parameters<EventStore['readStream']>) => {
        streamReads++;
        return (value as EventStore['readStream']).apply(target, args);
      };
    },
  });
  return store;
}

const document = (ids: readonly string[]) => ({
  tenant: { name: 'Planned', subdomain: 'planned-reads' },
  origins: [{ name: 'api', url: 'https://api.example.com' }],
  routes: ids.map((id, index) => ({ id, origin: 'api', path_pattern: `/r${index}/*`, auth_mode: 'public' })),
});

const plan = (ids: readonly string[]) =>
  cp.request('POST', `/api/v1/tenants/${tenantId}/config/plan`, { token: viewer, body: document(ids) });

beforeAll(async () => {
  cp = await startControlPlane({
    withReadSide: true,
    wrapStore: counted,
    adminRateLimits: { limits: { tenantCommands: null, userRequests: null } },
  });
  useConfigReadBudget(store, createConfigReadBudget({ bytesPerMinute: BYTES_PER_MINUTE, now: () => clock }));
  const tenant = await cp.request('POST', '/api/v1/tenants', {
    body: { name: 'Planned', subdomain: 'planned-reads' },
  });
  tenantId = json(tenant)['id'] as string;
  const origin = await cp.request('POST', '/api/v1/origins', {
    body: { tenant_id: tenantId, name: 'api', url: 'https://api.example.com' },
  });
  const originId = json(origin)['id'] as string;
  await cp.request('POST', '/api/v1/users', {
    body: { tenant_id: tenantId, clerk_user_id: 'user_plan_viewer', email: 'v@example.com', role: 'viewer' },
  });
  for (let i = 0; i < ROUTES; i++) {
    const route = routeState(tenantId, originId, { path_pattern: `/r${i}/*` });
    deletedRoutes.push(route.route_id);
    await cp.store.appendToStream(streamName.route(route.route_id), [
      newEvent('RouteCreated', route),
      newEvent('RouteDeleted', { route_id: route.route_id, tenant_id: tenantId }),
    ]);
  }
  await cp.readModelsCaughtUp();
  viewer = await cp.token({ userId: 'user_plan_viewer' });
  // The tenant's config folded (and kept) once, by a plan naming a few of its deleted routes; then the
  // budget is full again.
  const small = await plan(deletedRoutes.slice(0, 3));
  expect(small.status, JSON.stringify(small.body)).toBe(200);
  clock += 3_600_000;
}, 600_000);

afterAll(async () => {
  await cp?.close();
});

describe('a viewer’s plan naming ids that are not live', () => {
  it('regression: is charged for each stream it reads, and stops reading once the tenant’s budget is in debt', async () => {
    streamReads = 0;
    const answer = await plan(deletedRoutes);
    expect(answer.status, JSON.stringify(answer.body).slice(0, 300)).toBe(429);
    const error = json(answer)['error'] as { code: string; details: Array<{ field: string }> };
    expect(error.code).toBe('admin_rate_limited');
    expect(error.details.map((detail) => detail.field)).toEqual(['tenant_config_read_bytes_per_minute']);
    expect(streamReads).toBeLessThan(ROUTES / 4);
  });
});
