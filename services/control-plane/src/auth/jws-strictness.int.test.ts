import { hostileJwsVariants, rs256Signer } from '@vantageedge/shared/testing/hostile-jws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ControlPlaneHarness,
  json,
  PLATFORM_ADMIN,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * RFC 7515: a session token whose header marks extensions critical (`crit`; the admin API understands
 * none), whose parts are not unpadded base64url, or that names a member twice is refused as unauthenticated,
 * though it is signed with the instance's own key; nothing it asked for is done.
 */
let cp: ControlPlaneHarness;
beforeAll(async () => {
  cp = await startControlPlane();
});
afterAll(async () => {
  await cp?.close();
});

describe('Clerk session tokens that are not strict compact JWS', () => {
  it('are refused with 401 and create nothing; the token they are made from is taken', async () => {
    const token = await cp.token({ userId: PLATFORM_ADMIN });
    const taken: string[] = [];
    let n = 0;
    for (const [what, hostile] of Object.entries(
      hostileJwsVariants(token, rs256Signer(cp.keys.privateKey)),
    )) {
      const subdomain = `strict-jws-${n++}`;
      const response = await cp.request('POST', '/api/v1/tenants', {
        token: hostile,
        body: { name: subdomain, subdomain },
      });
      if (response.status !== 401) taken.push(`${what}: ${response.status}`);
      else {
        expect(json(response), what).toMatchObject({
          error: { code: 'unauthenticated', details: [{ field: 'authorization' }] },
        });
      }
    }
    expect(taken).toEqual([]);
    // Each subdomain is still free: the token it came with is taken, and creates its tenant.
    for (let i = 0; i < n; i++) {
      const subdomain = `strict-jws-${i}`;
      const created = await cp.request('POST', '/api/v1/tenants', {
        token,
        body: { name: subdomain, subdomain },
      });
      expect(created.status, subdomain).toBe(201);
    }
  });
});
