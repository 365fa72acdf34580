import { OFFLINE_CLERK_ISSUER } from '@vantageedge/shared/testing/clerk-tokens';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * A tenant's OIDC provider may not be the platform's Clerk instance (the harness's is
 * OFFLINE_CLERK_ISSUER): the gateways would take every platform user's Clerk token on the tenant's
 * routes as one of its own users' tokens, and forward it to its origin, which could replay it at the
 * admin API. Refused with 400 naming the field, in any spelling of the instance's URL; nothing recorded.
 */

let cp: ControlPlaneHarness;
let tenantId = '';

beforeAll(async () => {
  cp = await startControlPlane();
  const tenant = await cp.request('POST', '/api/v1/tenants', {
    body: { name: 'Clerk issuer', subdomain: 'oidc-clerk-issuer' },
  });
  tenantId = json(tenant)['id'] as string;
});
afterAll(async () => {
  await cp?.close();
});

const OWN_JWKS = 'https://idp.example.com/.well-known/jwks.json';
const CLERK_JWKS = `${OFFLINE_CLERK_ISSUER}/.well-known/jwks.json`;

function expectRefused(response: { status: number; body: unknown }, field: string): void {
  expect(response.status).toBe(400);
  expect(response.body).toMatchObject({
    error: {
      code: 'oidc_provider_is_platform',
      details: [{ field, issue: expect.stringContaining('Clerk') }],
    },
  });
}

describe("a tenant's OIDC provider naming the platform's Clerk instance", () => {
  it.each([
    OFFLINE_CLERK_ISSUER,
    `${OFFLINE_CLERK_ISSUER}/`,
    'https://OFFLINE.Clerk.Accounts.DEV',
    'https://offline.clerk.accounts.dev:443',
    'https://offline.clerk.accounts.dev./',
  ])('refuses the issuer %s and records nothing', async (issuer) => {
    const before = (await cp.allEvents()).length;
    const response = await cp.request('PATCH', `/api/v1/tenants/${tenantId}`, {
      body: { settings: { oidc: { issuer, audience: 'any-audience', jwks_url: OWN_JWKS } } },
    });
    expectRefused(response, 'settings.oidc.issuer');
    expect((await cp.allEvents()).length).toBe(before);
  });

  it.each([CLERK_JWKS, 'https://OFFLINE.clerk.accounts.dev:443/.well-known/jwks.json'])(
    'refuses the jwks_url %s',
    async (jwks_url) => {
      const before = (await cp.allEvents()).length;
      const response = await cp.request('PATCH', `/api/v1/tenants/${tenantId}`, {
        body: { settings: { oidc: { issuer: 'https://idp.example.com', audience: 'api', jwks_url } } },
      });
      expectRefused(response, 'settings.oidc.jwks_url');
      expect((await cp.allEvents()).length).toBe(before);
    },
  );

  it('refuses it when a tenant is created', async () => {
    const response = await cp.request('POST', '/api/v1/tenants', {
      body: {
        name: 'Created with Clerk',
        subdomain: 'oidc-clerk-created',
        settings: { oidc: { issuer: OFFLINE_CLERK_ISSUER, audience: 'api', jwks_url: CLERK_JWKS } },
      },
    });
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({
      error: {
        code: 'oidc_provider_is_platform',
        details: [{ field: 'settings.oidc.issuer' }, { field: 'settings.oidc.jwks_url' }],
      },
    });
  });

  it('refuses it in a config document, plan and apply, naming its place in the document', async () => {
    const body = {
      tenant: {
        name: 'Clerk issuer',
        subdomain: 'oidc-clerk-issuer',
        settings: { oidc: { issuer: OFFLINE_CLERK_ISSUER, audience: 'api', jwks_url: OWN_JWKS } },
      },
      origins: [],
      routes: [],
    };
    const before = (await cp.allEvents()).length;
    for (const action of ['plan', 'apply']) {
      const response = await cp.request('POST', `/api/v1/tenants/${tenantId}/config/${action}`, { body });
      expectRefused(response, 'tenant.settings.oidc.issuer');
    }
    expect((await cp.allEvents()).length).toBe(before);
  });

  it("keeps accepting another Clerk instance (the tenant's own) as its provider", async () => {
    const response = await cp.request('PATCH', `/api/v1/tenants/${tenantId}`, {
      body: {
        settings: {
          oidc: {
            issuer: 'https://tenant-own.clerk.accounts.dev',
            audience: 'api',
            jwks_url: 'https://tenant-own.clerk.accounts.dev/.well-known/jwks.json',
          },
        },
      },
    });
    expect(response.status).toBe(200);
  });
});
