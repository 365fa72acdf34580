import { randomUUID } from 'node:crypto';
import { startReadModelProjector } from '@vantageedge/projections/read-models/projector';
import type { Projector } from '@vantageedge/projections/runner/projector';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * Regression: X-Min-Position waited before the endpoint checked the caller's access. Any signed-in
 * user without a tenant could make each request poll PostgreSQL every 20 ms for 2 s (a position beyond
 * the newest event is never reached) and read the platform-wide read-model position in the 503. Now
 * the wait runs only after the access check (without access: the answer without the header, at once),
 * a position beyond the newest event is 400, and the waiting requests share one poll.
 */

let cp: ControlPlaneHarness;
let stranger: string;
let tenantAdmin: string;
let tenantId = '';
let routeId = '';
let restarted: Projector | null = null;
const BEYOND = '9999999999';

/** Every statement this process sends to PostgreSQL from now on (the control plane runs in it), counted. */
function countQueries(): () => number {
  const prototype = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = prototype.query;
  let count = 0;
  prototype.query = function (this: unknown, ...args: unknown[]) {
    count++;
    return original.apply(this, args);
  };
  return () => {
    prototype.query = original;
    return count;
  };
}

beforeAll(async () => {
  // The app's wait: these tests see it run out while the projector is stopped.
  cp = await startControlPlane({ withReadSide: true, minPositionWaitMs: 2_000 });
  const tenant = await cp.request('POST', '/api/v1/tenants', {
    body: { name: 'Victim', subdomain: `victim-${Date.now()}`, clerk_org_id: 'org_victim' },
  });
  expect(tenant.status, JSON.stringify(tenant.body)).toBe(201);
  tenantId = json(tenant)['id'] as string;
  tenantAdmin = await cp.token({ userId: 'user_victim_admin', orgId: 'org_victim', orgRole: 'org:admin' });
  stranger = await cp.token({ userId: 'user_nobody_at_all' });
  const route = await cp.request('POST', '/api/v1/routes', {
    token: tenantAdmin,
    body: {
      tenant_id: tenantId,
      origin_id: null,
      path_pattern: '/a/*',
      auth_mode: 'public',
      redirect: { location: '/b' },
    },
  });
  expect(route.status, JSON.stringify(route.body)).toBe(201);
  routeId = json(route)['id'] as string;
  const read = await cp.request('GET', `/api/v1/routes/${routeId}`, {
    token: tenantAdmin,
    headers: { 'x-min-position': route.headers.get('x-event-position') ?? '' },
  });
  expect(read.status, JSON.stringify(read.body)).toBe(200);
});

afterAll(async () => {
  await restarted?.stop();
  await cp?.close();
});

describe('a caller without access', () => {
  const paths = () => [
    `/api/v1/tenants/${randomUUID()}/config/history`,
    `/api/v1/tenants/${tenantId}/config/history`,
    `/api/v1/tenants/${tenantId}/config`,
    `/api/v1/tenants/${tenantId}/config/document`,
    `/api/v1/tenants/${tenantId}/config/diff?from=1`,
    `/api/v1/tenants/${tenantId}/domains`,
    `/api/v1/tenants/${tenantId}`,
    `/api/v1/routes/${routeId}`,
    `/api/v1/routes/${randomUUID()}`,
    `/api/v1/routes?tenant_id=${tenantId}`,
    `/api/v1/routes`,
    '/api/v1/tenants',
    `/api/v1/audit-log?tenant_id=${tenantId}`,
    '/api/v1/audit-log',
  ];

  it('gets the answer it gets without X-Min-Position, at once, with no position in it', async () => {
    for (const path of paths()) {
      const plain = await cp.request('GET', path, { token: stranger });
      const started = Date.now();
      const held = await cp.request('GET', path, { token: stranger, headers: { 'x-min-position': BEYOND } });
      const ms = Date.now() - started;
      expect({ path, status: held.status, body: held.body }).toEqual({
        path,
        status: plain.status,
        body: plain.body,
      });
      expect(held.status, path).not.toBe(503);
      expect(JSON.stringify(held.body), path).not.toMatch(/position/);
      expect(ms, path).toBeLessThan(1000); // the wait was 2 s
    }
  });

  it('cannot make requests poll the database', async () => {
    const path = `/api/v1/tenants/${tenantId}/config/history`;
    const stop = countQueries();
    const responses = await Promise.all(
      Array.from({ length: 10 }, () =>
        cp.request('GET', path, { token: stranger, headers: { 'x-min-position': BEYOND } }),
      ),
    );
    const queries = stop();
    expect(responses.map((response) => response.status)).toEqual(Array(10).fill(404));
    // ~1000 before: each request polled every 20 ms for 2 s. Each read is 3 statements (its read-only
    // transaction with the read statement timeout), ~10 a request.
    expect(queries).toBeLessThan(200);
  });

  it('still gets 400 for a malformed X-Min-Position', async () => {
    const response = await cp.request('GET', `/api/v1/tenants/${tenantId}/config/history`, {
      token: stranger,
      headers: { 'x-min-position': '-1' },
    });
    expect(response.status).toBe(400);
  });
});

describe('a caller with access', () => {
  /** 400 validation_failed naming X-Min-Position. */
  function expectBeyondHead(response: ApiResponse, path: string) {
    expect(response.status, `${path}: ${JSON.stringify(response.body)}`).toBe(400);
    const error = json(response)['error'] as {
      code: string;
      details: Array<{ field: string; issue: string }>;
    };
    expect(error.code).toBe('validation_failed');
    expect(error.details).toEqual([
      {
        field: 'X-Min-Position',
        issue: expect.stringMatching(/^is beyond the newest event position \(\d+\)$/),
      },
    ]);
  }

  it('gets 400 for a position beyond the newest event, at once (nothing would ever reach it)', async () => {
    for (const path of [
      `/api/v1/tenants/${tenantId}/config/history`,
      `/api/v1/tenants/${tenantId}/config`,
      `/api/v1/routes/${routeId}`,
      `/api/v1/routes?tenant_id=${tenantId}`,
      '/api/v1/tenants',
      '/api/v1/audit-log',
    ]) {
      const started = Date.now();
      const response = await cp.request('GET', path, {
        token: tenantAdmin,
        headers: { 'x-min-position': BEYOND },
      });
      expectBeyondHead(response, path);
      expect(Date.now() - started, path).toBeLessThan(1000);
    }
    expectBeyondHead(
      await cp.request('GET', '/api/v1/tenants', { headers: { 'x-min-position': BEYOND } }),
      'platform admin',
    );
  });

  it('waits for its own fresh write (one shared poll), 503 when the projector does not get there', async () => {
    await cp.projector?.stop();
    // The projector is stopped: the new route is in the event log, not in the read models.
    const created = await cp.request('POST', '/api/v1/routes', {
      token: tenantAdmin,
      body: {
        tenant_id: tenantId,
        origin_id: null,
        path_pattern: '/c/*',
        auth_mode: 'public',
        redirect: { location: '/d' },
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const position = created.headers.get('x-event-position') ?? '';
    const newRoute = json(created)['id'] as string;
    const path = `/api/v1/routes/${newRoute}`;

    const stop = countQueries();
    const waited = await Promise.all(
      Array.from({ length: 10 }, () =>
        cp.request('GET', path, { token: tenantAdmin, headers: { 'x-min-position': position } }),
      ),
    );
    const queries = stop();
    for (const response of waited) {
      expect(response.status, JSON.stringify(response.body)).toBe(503);
      expect(json(response)['error']).toMatchObject({ code: 'not_caught_up' });
      expect(response.headers.get('retry-after')).toBe('1');
    }
    // One poll every 20 ms for all ten (≈100) plus a few queries each, not ten polls (≈1000).
    expect(queries).toBeLessThan(300);

    // The projector comes back while the request waits: the caller reads its own write.
    const pending = cp.request('GET', path, { token: tenantAdmin, headers: { 'x-min-position': position } });
    await new Promise((resolve) => setTimeout(resolve, 200));
    restarted = startReadModelProjector({ store: cp.store, pool: cp.db.pool });
    const read = await pending;
    expect(read.status, JSON.stringify(read.body)).toBe(200);
    expect(json(read)['path_pattern']).toBe('/c/*');
  });
});
