import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * Explain folds the tenant's config from the event log, so it answers for what a command just wrote:
 * whether the tenant exists and who may read it are judged from the same log, not from read models
 * that may be behind (a loaded machine, their projector down).
 */

let h: ControlPlaneHarness;

beforeAll(async () => {
  h = await startControlPlane({ withReadSide: true });
  // The read models stop here: nothing written below reaches them.
  await h.projector?.stop();
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('POST /api/v1/tenants/:id/explain while the read models lag', () => {
  it('explains a tenant and route created a moment ago, to its admin, and still hides it from others', async () => {
    const tenant = await h.request('POST', '/api/v1/tenants', {
      body: { name: 'Fresh', subdomain: 'fresh-explain', clerk_org_id: 'org_fresh_explain' },
    });
    expect(tenant.status).toBe(201);
    const tenantId = json(tenant)['id'] as string;
    const route = await h.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        origin_id: null,
        path_pattern: '/hello',
        auth_mode: 'public',
        fixed_response: { status: 200 },
      },
    });
    expect(route.status, JSON.stringify(route.body)).toBe(201);
    const admin = await h.token({ userId: 'user_fresh_admin', orgId: 'org_fresh_explain', orgRole: 'admin' });
    const request = { method: 'GET', host: 'fresh-explain.vantageedge.dev', path: '/hello' };

    const answer = await h.request('POST', `/api/v1/tenants/${tenantId}/explain`, {
      body: request,
      token: admin,
    });
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect(json(answer)).toMatchObject({
      tenant_id: tenantId,
      route: { id: json(route)['id'], selected: true },
    });

    const stranger = await h.token({ userId: 'user_fresh_stranger' });
    const hidden = await h.request('POST', `/api/v1/tenants/${tenantId}/explain`, {
      body: request,
      token: stranger,
    });
    expect(hidden.status).toBe(404);
    const unknown = await h.request('POST', '/api/v1/tenants/00000000-0000-4000-8000-000000000000/explain', {
      body: request,
    });
    expect(unknown.status).toBe(404);
    expect(json(unknown)['error']).toMatchObject({ details: [{ field: 'id' }] });
  });
});
