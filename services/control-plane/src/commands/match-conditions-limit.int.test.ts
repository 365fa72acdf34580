import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';
import { DEFAULT_TENANT_LIMITS } from './tenant-limits.js';

/**
 * Regression tests: a tenant could give its routes any number of distinct header and query conditions,
 * and a gateway replica tests every one a request's path reaches (1,000 routes `/api/*` with 20 such
 * conditions each held a replica's event loop ≈ 13 ms per request). Conditions routes share count once;
 * growing past TENANT_MAX_MATCH_CONDITIONS is a 422 naming the field, and appends nothing.
 */
describe('distinct match conditions per tenant (control plane)', () => {
  let cp: ControlPlaneHarness;
  let tenant: string;
  let origin: string;

  const post = (path: string, body: unknown) => cp.request('POST', path, { body });
  const idOf = (response: ApiResponse) => json(response)['id'] as string;
  const route = (pattern: string, match: unknown) =>
    post('/api/v1/routes', {
      tenant_id: tenant,
      origin_id: origin,
      path_pattern: pattern,
      auth_mode: 'public',
      match,
    });

  async function caughtUp(response: ApiResponse): Promise<void> {
    const position = response.headers.get('x-event-position')!;
    const read = await cp.request('GET', `/api/v1/tenants/${tenant}`, {
      headers: { 'x-min-position': position },
    });
    expect(read.status).toBe(200);
  }

  function expectLimitExceeded(response: ApiResponse, field: string): void {
    expect(response.status, JSON.stringify(response.body)).toBe(422);
    const error = json(response)['error'] as {
      code: string;
      message: string;
      details: Array<{ field: string }>;
    };
    expect(error.code).toBe('limit_exceeded');
    expect(error.details.map((d) => d.field)).toEqual([field]);
    expect(error.message).toContain('TENANT_MAX_MATCH_CONDITIONS');
  }

  beforeAll(async () => {
    cp = await startControlPlane({
      withReadSide: true,
      tenantLimits: { ...DEFAULT_TENANT_LIMITS, matchConditions: 3 },
    });
    const subdomain = `conditions-${randomUUID().slice(0, 8)}`;
    tenant = idOf(await post('/api/v1/tenants', { name: 'conditions', subdomain }));
    origin = idOf(
      await post('/api/v1/origins', { tenant_id: tenant, name: 'o', url: 'https://o.example.com' }),
    );
  });
  afterAll(async () => {
    await cp?.close();
  });

  it('refuses a route, a PATCH or a config document bringing the tenant past TENANT_MAX_MATCH_CONDITIONS', async () => {
    const versioned = { headers: [{ name: 'X-Version', exact: '2' }] };
    const a = await route('/a/*', { headers: [...versioned.headers, { name: 'x-team', prefix: 'core' }] });
    expect(a.status, JSON.stringify(a.body)).toBe(201);
    // The same condition on another route (header names without case) counts once: 3 distinct.
    const b = await route('/b/*', {
      headers: [{ name: 'x-version', exact: '2' }],
      query: [{ name: 'debug', present: false }],
    });
    expect(b.status, JSON.stringify(b.body)).toBe(201);
    const shared = await route('/c/*', versioned);
    expect(shared.status, JSON.stringify(shared.body)).toBe(201);
    await caughtUp(shared);

    const events = (await cp.allEvents()).length;
    expectLimitExceeded(await route('/d/*', { headers: [{ name: 'x-version', exact: '3' }] }), 'match');
    const added = {
      headers: [{ name: 'x-version', exact: '2' }],
      query: [
        { name: 'debug', present: false },
        { name: 'q', exact: '1' },
      ],
    };
    expectLimitExceeded(
      await cp.request('PATCH', `/api/v1/routes/${idOf(b)}`, { body: { match: added } }),
      'match',
    );
    const read = await cp.request('GET', `/api/v1/tenants/${tenant}/config/document`, {
      headers: { 'x-min-position': (await cp.store.headPosition()).toString() },
    });
    const document = json(read)['document'] as { routes: Array<Record<string, unknown>> };
    const { id: _id, ...template } = document.routes[0]!;
    const over = await post(`/api/v1/tenants/${tenant}/config/apply`, {
      ...document,
      routes: [
        ...document.routes,
        {
          ...template,
          path_pattern: '/e/*',
          match: { hosts: [], headers: [], query: [{ name: 'page', present: true }] },
        },
      ],
    });
    expectLimitExceeded(over, `routes.${document.routes.length}.match`);
    expect((await cp.allEvents()).length).toBe(events);

    // Replacing conditions with one keeps the tenant within the limit.
    const replaced = await cp.request('PATCH', `/api/v1/routes/${idOf(b)}`, {
      body: { match: { query: [{ name: 'q', exact: '1' }] } },
    });
    expect(replaced.status, JSON.stringify(replaced.body)).toBe(200);
  });
});
