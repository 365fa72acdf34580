import { randomUUID } from 'node:crypto';
import { routeMatchKey } from '@vantageedge/shared/routing/route-match-key';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { distinctMatchConditions } from '../domain/route-match.js';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';
import { DEFAULT_TENANT_LIMITS } from './tenant-limits.js';
import { createEventLogResourceCounts } from './tenant-resource-counts.js';

/**
 * Regression tests: a route's match is compared with the tenant's other routes (duplicate_route,
 * TENANT_MAX_MATCH_CONDITIONS) before its event is appended to the route's own stream, and that stream
 * is all the append's expected revision covers. Routes changed at once (PATCHes, or a PATCH beside a
 * create) were each compared with the routes as they were before the others, and all passed: a tenant
 * ended up with two routes of one match, one of which the gateway never chooses, or over its limit.
 */
describe('route matches under concurrent commands', () => {
  let cp: ControlPlaneHarness;
  const MATCH_CONDITIONS = 4;

  const idOf = (response: ApiResponse) => json(response)['id'] as string;
  const errorOf = (response: ApiResponse) =>
    json(response)['error'] as { code: string; details: Array<{ field: string }> };
  const patch = (route: string, body: unknown) => cp.request('PATCH', `/api/v1/routes/${route}`, { body });

  interface Tenant {
    id: string;
    origin: string;
  }
  const newTenant = async (): Promise<Tenant> => {
    const subdomain = `match-race-${randomUUID().slice(0, 8)}`;
    const tenant = await cp.request('POST', '/api/v1/tenants', { body: { name: 'match race', subdomain } });
    expect(tenant.status, JSON.stringify(tenant.body)).toBe(201);
    const origin = await cp.request('POST', '/api/v1/origins', {
      body: { tenant_id: idOf(tenant), name: 'o', url: 'https://o.example.com' },
    });
    expect(origin.status, JSON.stringify(origin.body)).toBe(201);
    return { id: idOf(tenant), origin: idOf(origin) };
  };
  const createRoute = (tenant: Tenant, fields: Record<string, unknown>) =>
    cp.request('POST', '/api/v1/routes', {
      body: { tenant_id: tenant.id, origin_id: tenant.origin, auth_mode: 'public', ...fields },
    });
  const newRoutes = async (tenant: Tenant, count: number, prefix: string) => {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const created = await createRoute(tenant, { path_pattern: `/${prefix}-${i}/*` });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      ids.push(idOf(created));
    }
    return ids;
  };

  /** The tenant's live routes as the event log has them (what the gateway snapshot is built from). */
  const liveRoutes = (tenant: Tenant) =>
    createEventLogResourceCounts({ store: cp.store, pool: cp.db.pool }).routes(tenant.id);

  async function expectDistinctMatches(tenant: Tenant): Promise<void> {
    const keys = (await liveRoutes(tenant)).map((route) => routeMatchKey(route));
    expect(keys.length - new Set(keys).size, 'routes sharing a match').toBe(0);
  }

  function expectOneWinner(answers: ApiResponse[], winner: number, code: string, field: string): void {
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status === winner).length, JSON.stringify(statuses)).toBe(1);
    for (const answer of answers.filter((a) => a.status !== winner)) {
      expect(answer.status, JSON.stringify(answer.body)).toBe(code === 'limit_exceeded' ? 422 : 409);
      expect(errorOf(answer).code).toBe(code);
      expect(errorOf(answer).details.map((detail) => detail.field)).toEqual([field]);
    }
  }

  beforeAll(async () => {
    cp = await startControlPlane({
      tenantLimits: { ...DEFAULT_TENANT_LIMITS, matchConditions: MATCH_CONDITIONS },
    });
  });
  afterAll(async () => {
    await cp?.close();
  });

  it('creates one of 10 identical routes sent at once', async () => {
    const tenant = await newTenant();
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => createRoute(tenant, { path_pattern: '/same/*', methods: ['GET'] })),
    );
    expectOneWinner(answers, 201, 'duplicate_route', 'path_pattern');
    expect((await liveRoutes(tenant)).length).toBe(1);
  });

  it('gives a match to one of the routes patched to it at once', async () => {
    const tenant = await newTenant();
    const routes = await newRoutes(tenant, 6, 'patched');
    const answers = await Promise.all(routes.map((route) => patch(route, { path_pattern: '/contested/*' })));
    expectOneWinner(answers, 200, 'duplicate_route', 'path_pattern');
    await expectDistinctMatches(tenant);
  });

  it('gives a match to the route created or the route patched to it at once, not both', async () => {
    const tenant = await newTenant();
    const routes = await newRoutes(tenant, 5, 'beside-create');
    for (const [round, route] of routes.entries()) {
      const path_pattern = `/contested-${round}/*`;
      const answers = await Promise.all([
        patch(route, { path_pattern }),
        createRoute(tenant, { path_pattern }),
      ]);
      const statuses = answers.map((answer) => answer.status);
      expect(statuses.filter((status) => status < 300).length, JSON.stringify(statuses)).toBe(1);
      const refused = answers.find((answer) => answer.status >= 300)!;
      expect(refused.status, JSON.stringify(refused.body)).toBe(409);
      expect(errorOf(refused).code).toBe('duplicate_route');
    }
    await expectDistinctMatches(tenant);
  });

  it('keeps TENANT_MAX_MATCH_CONDITIONS when routes are patched to new conditions at once', async () => {
    const tenant = await newTenant();
    const routes = await newRoutes(tenant, 6, 'conditions');
    const withTwoConditions = (n: number) => ({
      match: {
        headers: [{ name: 'x-variant', exact: `v${n}` }],
        query: [{ name: 'variant', exact: `v${n}` }],
      },
    });
    // Room for two of the six routes' two new conditions each.
    const answers = await Promise.all(routes.map((route, n) => patch(route, withTwoConditions(n))));
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status === 200).length, JSON.stringify(statuses)).toBe(2);
    for (const answer of answers.filter((a) => a.status !== 200)) {
      expect(answer.status, JSON.stringify(answer.body)).toBe(422);
      expect(errorOf(answer).code).toBe('limit_exceeded');
      expect(errorOf(answer).details.map((detail) => detail.field)).toEqual(['match']);
    }
    expect(distinctMatchConditions(await liveRoutes(tenant)).size).toBe(MATCH_CONDITIONS);
  });
});
