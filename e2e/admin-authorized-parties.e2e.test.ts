import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAllServices, TestSystem } from './harness.js';

/**
 * The tenants' apps sign their users in with the platform's Clerk instance (jwt_required routes take
 * those tokens), so a tenant's own page script can ask Clerk for a token of whoever visits it signed in,
 * a platform admin included: Clerk puts the page's origin in `azp`. The gateways must list the tenants'
 * apps in CLERK_AUTHORIZED_PARTIES; the deployment gives every service one environment (docker-compose's
 * shared block), so the control plane sees that list too, and must still take only the console's tokens.
 */
const CONSOLE = 'https://admin.vantageedge.test';
const TENANT_APP = 'https://app.acme.test';

let system: TestSystem;
let controlPlane = '';
beforeAll(async () => {
  system = await TestSystem.create();
  controlPlane = await system.startControlPlane('control-plane', {
    CLERK_AUTHORIZED_PARTIES: `${CONSOLE},${TENANT_APP}`,
    CONTROL_PLANE_AUTHORIZED_PARTIES: CONSOLE,
  });
  system.controlPlaneUrl = controlPlane;
}, 120_000);

afterAll(async () => {
  await system?.close();
  await stopAllServices();
});

describe("the admin API in the gateways' environment", () => {
  it("refuses a platform admin's token minted for a tenant's app, and creates nothing", async () => {
    const body = { name: 'Taken over', subdomain: 'aap-taken-over' };
    const refused = await system.admin('POST', '/api/v1/tenants', {
      token: await system.token({ azp: TENANT_APP }),
      body,
    });
    expect(refused.status, refused.text).toBe(401);
    expect(refused.body).toMatchObject({
      error: { code: 'unauthenticated', details: [{ field: 'authorization' }] },
    });
    // The same admin through the console: the subdomain is still free (a created tenant would hold it).
    const created = await system.admin('POST', '/api/v1/tenants', {
      token: await system.token({ azp: CONSOLE }),
      body,
    });
    expect(created.status, created.text).toBe(201);
  });
});
