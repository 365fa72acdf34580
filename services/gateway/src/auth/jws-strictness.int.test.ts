import { randomUUID } from 'node:crypto';
import {
  type ClerkTestKeys,
  createClerkTestKeys,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
import { hostileJwsVariants, rs256Signer } from '@vantageedge/shared/testing/hostile-jws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

const USER = 'user_strict_jws';

/**
 * RFC 7515: a JWS whose header marks extensions critical (`crit`) must be refused by a recipient that
 * does not understand them (the gateway understands none), and its three parts are base64url without
 * padding. Tokens signed with the instance's own key but breaking either, or naming a member twice,
 * are refused on jwt_required routes and never reach the origin.
 */
describe('Clerk session tokens that are not strict compact JWS', () => {
  let clerk: ClerkTestKeys;
  let origin: TestOrigin;
  let gateway: TestGateway;

  beforeAll(async () => {
    clerk = await createClerkTestKeys();
    origin = await startTestOrigin('origin');
    gateway = await startTestGateway({ CLERK_JWT_KEY: clerk.publicKeyPem });
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'strict',
        clerkUserIds: [USER],
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [{ origin_id: originId, path_pattern: '/user/*', auth_mode: 'jwt_required' }],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  const call = (token: string) =>
    send(gateway, 'strict.localhost', '/user/x', { headers: { authorization: `Bearer ${token}` } });

  it('serves the token they are made from', async () => {
    expect((await call(await signClerkToken(clerk, { userId: USER }))).status).toBe(200);
  });

  it('refuses each as an invalid token, signed with the right key though it is', async () => {
    const token = await signClerkToken(clerk, { userId: USER });
    const served: string[] = [];
    for (const [what, hostile] of Object.entries(hostileJwsVariants(token, rs256Signer(clerk.privateKey)))) {
      const response = await call(hostile);
      if (response.status !== 401) served.push(`${what}: ${response.status}`);
      else {
        expect(response.json(), what).toMatchObject({ error: { code: 'invalid_token' } });
        expect(String(response.headers['www-authenticate']), what).toMatch(/error="invalid_token"/);
      }
    }
    expect(served).toEqual([]);
  });
});
