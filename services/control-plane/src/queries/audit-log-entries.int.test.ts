import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * What the audit log shows of a change is what the tenant's admin wrote: a header a route sets is
 * listed under the name it was given, whatever that name is (only secrets the platform stores are left
 * out, and credential values are shown as <redacted>).
 */

let h: ControlPlaneHarness;
let tenantId: string;
let originId: string;

beforeAll(async () => {
  h = await startControlPlane({ withReadSide: true });
  tenantId = json(
    await h.request('POST', '/api/v1/tenants', { body: { name: 'Audited', subdomain: 'audit-names' } }),
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

async function auditDataOf(routeId: string, position: string): Promise<Record<string, unknown>> {
  const audit = await h.request('GET', `/api/v1/audit-log?tenant_id=${tenantId}&resource_id=${routeId}`, {
    headers: { 'x-min-position': position },
  });
  expect(audit.status).toBe(200);
  const [entry] = json(audit)['data'] as Array<{ data: Record<string, unknown> }>;
  return entry?.data ?? {};
}

describe('GET /api/v1/audit-log: headers a route writes', () => {
  it('lists response headers named like secret fields (key, secret, password) with their values', async () => {
    const created = await h.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        origin_id: originId,
        path_pattern: '/named/*',
        auth_mode: 'public',
        response_headers: {
          set: { secret: 'shown-to-every-client', 'x-frame-options': 'DENY' },
          add: { key: 'k1' },
        },
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const data = await auditDataOf(
      json(created)['id'] as string,
      created.headers.get('x-event-position') ?? '',
    );
    expect(data['response_headers']).toMatchObject({
      set: { secret: 'shown-to-every-client', 'x-frame-options': 'DENY' },
      add: { key: 'k1' },
    });
  });

  it('lists a fixed response’s headers named like secret fields', async () => {
    const created = await h.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        origin_id: null,
        path_pattern: '/fixed',
        auth_mode: 'public',
        fixed_response: { status: 200, headers: { password: 'hunter2' }, body: 'ok' },
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const data = await auditDataOf(
      json(created)['id'] as string,
      created.headers.get('x-event-position') ?? '',
    );
    expect(data['fixed_response']).toMatchObject({ headers: { password: 'hunter2' } });
  });
});
