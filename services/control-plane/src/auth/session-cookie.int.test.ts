import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ControlPlaneHarness,
  PLATFORM_ADMIN,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * Regression: the admin API also took the session token from Clerk's `__session` cookie, which a browser
 * attaches to requests other pages make it send. A body-less `text/plain` POST from a page of the same
 * site (a tenant's pages are served under the platform's base domain) needs no CORS preflight, and
 * revoked a signed-in admin's API key.
 */
let cp: ControlPlaneHarness;
let admin: string;
let tenantId: string;
let keyId: string;
let keyPosition: string;

beforeAll(async () => {
  cp = await startControlPlane({ withReadSide: true });
  admin = await cp.token({ userId: PLATFORM_ADMIN });
  const tenant = await cp.request('POST', '/api/v1/tenants', {
    token: admin,
    body: { name: 'Cookie', subdomain: 'cookie-csrf' },
  });
  expect(tenant.status, JSON.stringify(tenant.body)).toBe(201);
  tenantId = (tenant.body as { id: string }).id;
  const key = await cp.request('POST', '/api/v1/api-keys', {
    token: admin,
    body: { tenant_id: tenantId, name: 'k' },
  });
  expect(key.status, JSON.stringify(key.body)).toBe(201);
  keyId = (key.body as { id: string }).id;
  keyPosition = key.headers.get('x-event-position') ?? '';
});
afterAll(async () => {
  await cp?.close();
});

describe('the session cookie', () => {
  const cookie = () => `__session=${admin}; __client_uat=${Math.floor(Date.now() / 1000) - 60}`;

  it('authenticates nothing: a cross-site, body-less POST carrying it is refused 401 and changes nothing', async () => {
    const forged = await cp.request('POST', `/api/v1/api-keys/${keyId}/revoke`, {
      token: null,
      headers: {
        cookie: cookie(),
        origin: 'https://shop.other-tenant.vantageedge.dev',
        'content-type': 'text/plain',
        'sec-fetch-site': 'same-site',
        'sec-fetch-mode': 'no-cors',
      },
    });
    expect(forged.status).toBe(401);
    // The key was not revoked: its admin can still revoke it (a second revoke is refused).
    const revoked = await cp.request('POST', `/api/v1/api-keys/${keyId}/revoke`, { token: admin });
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
    expect((await cp.request('POST', `/api/v1/api-keys/${keyId}/revoke`, { token: admin })).status).not.toBe(
      200,
    );
  });

  it('reads nothing either, while the same token as a Bearer header does', async () => {
    const path = `/api/v1/api-keys?tenant_id=${tenantId}`;
    const headers = () => ({ cookie: cookie(), 'x-min-position': keyPosition });
    expect((await cp.request('GET', path, { token: null, headers: headers() })).status).toBe(401);
    expect((await cp.request('GET', path, { token: admin, headers: headers() })).status).toBe(200);
  });
});
