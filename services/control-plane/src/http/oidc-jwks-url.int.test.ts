import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * Regression test for an OIDC key-set URL with credentials (user:password@): it was stored, and every
 * gateway's fetch of it failed (a fetch refuses a URL with credentials), so no OIDC token of the tenant
 * was ever accepted. It is refused with 400 naming the field, and nothing is recorded.
 */

let cp: ControlPlaneHarness;
let tenantId = '';

beforeAll(async () => {
  cp = await startControlPlane({ withReadSide: true });
  const tenant = await cp.request('POST', '/api/v1/tenants', {
    body: { name: 'Oidc', subdomain: 'oidc-url' },
  });
  tenantId = json(tenant)['id'] as string;
});
afterAll(async () => {
  await cp?.close();
});

const oidc = (jwks_url: string) => ({ issuer: 'https://issuer.example', audience: 'api', jwks_url });

describe('settings.oidc.jwks_url', () => {
  it.each(['https://user:secret@issuer.example/jwks', 'https://user@issuer.example/jwks'])(
    'refuses %s and records nothing',
    async (url) => {
      const before = (await cp.allEvents()).length;
      const response = await cp.request('PATCH', `/api/v1/tenants/${tenantId}`, {
        body: { settings: { oidc: oidc(url) } },
      });
      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({
        error: {
          code: 'validation_failed',
          details: [{ field: 'settings.oidc.jwks_url', issue: expect.stringContaining('credentials') }],
        },
      });
      expect((await cp.allEvents()).length).toBe(before);
    },
  );

  it('keeps accepting a key-set URL with a port and a query', async () => {
    const response = await cp.request('PATCH', `/api/v1/tenants/${tenantId}`, {
      body: { settings: { oidc: oidc('https://issuer.example:8443/jwks?tenant=a') } },
    });
    expect(response.status).toBe(200);
  });
});
