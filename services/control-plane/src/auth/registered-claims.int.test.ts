import { OFFLINE_CLERK_ISSUER } from '@vantageedge/shared/testing/clerk-tokens';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  PLATFORM_ADMIN,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * A token signed with the instance's key is taken only when its registered claims say it was issued by
 * that instance (CLERK_ISSUER), for the console (CONTROL_PLANE_AUTHORIZED_PARTIES), and is valid now.
 */
let cp: ControlPlaneHarness;
beforeAll(async () => {
  cp = await startControlPlane({ authorizedParties: ['https://admin.vantageedge.dev'] });
});
afterAll(async () => {
  await cp?.close();
});

const CONSOLE = 'https://admin.vantageedge.dev';

const createTenant = (token: string, subdomain: string) =>
  cp.request('POST', '/api/v1/tenants', { token, body: { name: subdomain, subdomain } });

function refusedAsUnauthenticated(response: ApiResponse): void {
  expect(response.status).toBe(401);
  expect(json(response)).toMatchObject({
    error: { code: 'unauthenticated', details: [{ field: 'authorization' }] },
  });
}

describe('registered claims of Clerk session tokens', () => {
  it('accepts a token of the configured issuer, for an authorized party, valid now', async () => {
    const token = await cp.token({ userId: PLATFORM_ADMIN, azp: CONSOLE, issuer: OFFLINE_CLERK_ISSUER });
    expect((await createTenant(token, 'rc-valid')).status).toBe(201);
  });

  it('refuses a token whose iss is another Clerk instance', async () => {
    const token = await cp.token({
      userId: PLATFORM_ADMIN,
      azp: CONSOLE,
      issuer: 'https://other-instance.clerk.accounts.dev',
    });
    refusedAsUnauthenticated(await createTenant(token, 'rc-foreign-iss'));
  });

  it('refuses a token whose azp is not an authorized party', async () => {
    const token = await cp.token({ userId: PLATFORM_ADMIN, azp: 'https://evil.example.com' });
    refusedAsUnauthenticated(await createTenant(token, 'rc-foreign-azp'));
  });

  it('refuses a token that is not valid yet (nbf a minute ahead)', async () => {
    const token = await cp.token({ userId: PLATFORM_ADMIN, azp: CONSOLE, notBeforeInSeconds: 60 });
    refusedAsUnauthenticated(await createTenant(token, 'rc-not-yet'));
  });

  it('refuses a token that expired beyond the clock skew (a minute ago)', async () => {
    const token = await cp.token({ userId: PLATFORM_ADMIN, azp: CONSOLE, expiresInSeconds: -60 });
    refusedAsUnauthenticated(await createTenant(token, 'rc-expired'));
  });

  it('refuses without echoing the token or its claims, nor the values it expected', async () => {
    const foreignIssuer = 'https://other-instance.clerk.accounts.dev';
    const foreignParty = 'https://evil.example.com';
    const tokens = [
      await cp.token({ userId: PLATFORM_ADMIN, azp: CONSOLE, issuer: foreignIssuer }),
      await cp.token({ userId: PLATFORM_ADMIN, azp: foreignParty }),
    ];
    for (const token of tokens) {
      const refused = await createTenant(token, 'rc-echo');
      refusedAsUnauthenticated(refused);
      const answer = JSON.stringify([refused.body, [...refused.headers]]);
      for (const echoed of [
        token.split('.')[1],
        foreignIssuer,
        foreignParty,
        OFFLINE_CLERK_ISSUER,
        CONSOLE,
      ]) {
        expect(answer).not.toContain(echoed);
      }
    }
  });
});
