import {
  type ClerkTestKeys,
  createClerkTestKeys,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/** A Clerk-shaped token carrying the development-only claim, as `make dev-token` signs it. */
async function devToken(keys: ClerkTestKeys, userId: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    sid: 'sess_dev',
    iss: 'https://offline.clerk.accounts.dev',
    v: 2,
    vantageedge_dev: true,
  })
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: keys.kid })
    .setSubject(userId)
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + 300)
    .sign(keys.privateKey);
}

/** Development tokens (make dev-token) work only on a gateway started in dev mode (VANTAGEEDGE_DEV_MODE). */
describe('gateway and development tokens', () => {
  let origin: TestOrigin;
  let keys: ClerkTestKeys;
  let normal: TestGateway;
  let devMode: TestGateway;

  beforeAll(async () => {
    keys = await createClerkTestKeys();
    origin = await startTestOrigin('origin');
    normal = await startTestGateway({ CLERK_JWT_KEY: keys.publicKeyPem });
    devMode = await startTestGateway({ CLERK_JWT_KEY: keys.publicKeyPem, VANTAGEEDGE_DEV_MODE: 'true' });
    for (const gateway of [normal, devMode]) {
      gateway.store.apply(
        buildSnapshot({
          subdomain: 'demo',
          // The demo tenant has no Clerk org: its jwt route accepts the users in its user list.
          clerkUserIds: ['user_dev_admin', 'user_real'],
          origins: [{ id: 'a8f0c1de-5a8f-4a43-9a55-2f3a4f1d0c01', targets: [origin.url] }],
          routes: [
            {
              origin_id: 'a8f0c1de-5a8f-4a43-9a55-2f3a4f1d0c01',
              path_pattern: '/users/*',
              auth_mode: 'jwt_required',
            },
          ],
        }),
      );
    }
  });

  afterAll(async () => {
    await normal?.close();
    await devMode?.close();
    await origin?.close();
  });

  it('refuses a development token outside dev mode, naming why', async () => {
    const response = await send(normal, 'demo.localhost', '/users/1', {
      headers: { authorization: `Bearer ${await devToken(keys, 'user_dev_admin')}` },
    });
    expect(response.status).toBe(401);
    expect(String(response.headers['www-authenticate'])).toContain('only accepted in dev mode');
    expect(origin.seen.some((r) => r.url === '/users/1')).toBe(false);
  });

  it('accepts the same development token in dev mode', async () => {
    const response = await send(devMode, 'demo.localhost', '/users/1', {
      headers: { authorization: `Bearer ${await devToken(keys, 'user_dev_admin')}` },
    });
    expect(response.status).toBe(200);
  });

  it('accepts an ordinary Clerk token in both modes', async () => {
    const token = await signClerkToken(keys, { userId: 'user_real' });
    for (const gateway of [normal, devMode]) {
      const response = await send(gateway, 'demo.localhost', '/users/2', {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(response.status).toBe(200);
    }
  });
});
