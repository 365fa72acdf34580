import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ControlPlaneHarness,
  json,
  PLATFORM_ADMIN,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * Clerk impersonation sessions (the token's `act` claim names the impersonator): the admin API acts
 * for the signed-in user only. Regression: an impersonation session was taken for the impersonated
 * user, so whoever may impersonate in Clerk (its dashboard's members, holders of the secret key) had
 * every right of a platform admin or tenant owner they picked, and the audit log named that user.
 */
let cp: ControlPlaneHarness;
beforeAll(async () => {
  cp = await startControlPlane();
});
afterAll(async () => {
  await cp?.close();
});

describe('impersonation sessions', () => {
  it('a session impersonating a platform admin creates no tenant and appends nothing', async () => {
    const impersonating = await cp.token({ userId: PLATFORM_ADMIN, actorUserId: 'user_support_agent' });
    const before = (await cp.allEvents()).length;
    const refused = await cp.request('POST', '/api/v1/tenants', {
      token: impersonating,
      body: { name: 'Impersonated', subdomain: 'imp-platform' },
    });
    expect(refused.status).toBe(401);
    expect(json(refused)).toMatchObject({
      error: { code: 'unauthenticated', details: [{ field: 'authorization' }] },
    });
    expect((await cp.allEvents()).length).toBe(before);
  });

  it("a session impersonating a tenant's owner changes nothing on the tenant", async () => {
    const created = await cp.request('POST', '/api/v1/tenants', {
      body: { name: 'Imp owner', subdomain: 'imp-owner' },
    });
    const tenantId = json(created)['id'] as string;
    const owner = await cp.request('POST', '/api/v1/users', {
      body: { tenant_id: tenantId, clerk_user_id: 'user_imp_owner', email: 'o@example.com', role: 'owner' },
    });
    expect(owner.status).toBe(201);
    const impersonating = await cp.token({ userId: 'user_imp_owner', actorUserId: 'user_support_agent' });
    const refused = await cp.request('POST', '/api/v1/api-keys', {
      token: impersonating,
      body: { tenant_id: tenantId, name: 'taken over' },
    });
    expect(refused.status).toBe(401);
    expect(JSON.stringify(refused.body)).not.toContain('"key"');

    // The owner's own session is unaffected.
    const own = await cp.token({ userId: 'user_imp_owner' });
    const issued = await cp.request('POST', '/api/v1/api-keys', {
      token: own,
      body: { tenant_id: tenantId, name: 'own' },
    });
    expect(issued.status).toBe(201);
  });
});
