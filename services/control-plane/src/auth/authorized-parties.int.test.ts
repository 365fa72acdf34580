import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ControlPlaneHarness,
  PLATFORM_ADMIN,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/** CONTROL_PLANE_AUTHORIZED_PARTIES: a token minted for another site (azp) is refused. */
let cp: ControlPlaneHarness;
beforeAll(async () => {
  cp = await startControlPlane({ authorizedParties: ['https://admin.vantageedge.dev'] });
});
afterAll(async () => {
  await cp?.close();
});

describe('authorized parties', () => {
  it('accepts a token whose azp is listed and refuses one minted for another origin', async () => {
    const body = { name: 'azp', subdomain: 'azp' };
    const foreign = await cp.token({ userId: PLATFORM_ADMIN, azp: 'https://evil.example.com' });
    const refused = await cp.request('POST', '/api/v1/tenants', { token: foreign, body });
    expect(refused.status).toBe(401);
    const listed = await cp.token({ userId: PLATFORM_ADMIN, azp: 'https://admin.vantageedge.dev' });
    expect((await cp.request('POST', '/api/v1/tenants', { token: listed, body })).status).toBe(201);
  });

  it('refuses a token without azp (minted with no Origin) once parties are configured', async () => {
    const withoutAzp = await cp.token({ userId: PLATFORM_ADMIN });
    const response = await cp.request('POST', '/api/v1/tenants', {
      token: withoutAzp,
      body: { name: 'no azp', subdomain: 'azp-none' },
    });
    expect(response.status).toBe(401);
  });
});
