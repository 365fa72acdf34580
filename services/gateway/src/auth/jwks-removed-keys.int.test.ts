import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { clerkSigningKey, oidcSigningKey, type SigningKey } from '../testing/signing-keys.js';
import { buildSnapshot } from '../testing/snapshots.js';

const ISSUER = 'https://idp.rotation.test';
const AUDIENCE = 'rotation-api';
const ORG = 'org_rotation';

const oidcKey = () => oidcSigningKey(ISSUER, AUDIENCE);
const clerkKey = () => clerkSigningKey(ORG);

/**
 * Regression tests: a verified token was served from the verified-token cache until its `exp`, whatever
 * became of the key that signed it. A provider rotating a leaked key out of its JWKS saw the replica
 * fetch the new set, refuse new tokens signed with that key, and keep admitting every token it had
 * already verified with it (for an hour, a day: as long as the provider's tokens live). A cached token
 * is now taken as verified only while the key set it was verified with has withdrawn no key since, and
 * using it refreshes that set as a verification would (once it is past its refresh age).
 */
describe.each([
  ['a tenant’s OIDC provider', 'oidc', oidcKey],
  ['Clerk (CLERK_SECRET_KEY)', 'clerk', clerkKey],
] as const)('a cached token signed with a key %s removed from its JWKS', (_provider, source, newKey) => {
  /** The keys the provider lists now. */
  let listed: SigningKey[] = [];
  let fetches = 0;
  let server: Server;
  let origin: TestOrigin;
  let gateway: TestGateway;

  const call = (token: string) =>
    send(gateway, 'rotation.localhost', '/user/me', { headers: { authorization: `Bearer ${token}` } });

  /** The provider publishes these keys from now on; a token naming a kid it lacks has the gateway fetch them. */
  async function publish(...keys: SigningKey[]) {
    listed = keys;
    const before = fetches;
    const unlisted = await newKey();
    expect((await call(await unlisted.sign('user-unlisted'))).status).toBe(401);
    expect(fetches).toBeGreaterThan(before);
  }

  beforeAll(async () => {
    server = createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: listed.map((key) => key.jwk) }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    origin = await startTestOrigin('origin');
    gateway = await startTestGateway(
      {
        GATEWAY_AUTH_FAILURES_PER_MINUTE: '0',
        ...(source === 'clerk' ? { CLERK_SECRET_KEY: 'sk_test_rotation', CLERK_API_URL: base } : {}),
      },
      // Every use of a set is past its refresh age, and no fetch waits for a cooldown.
      { jwksPolicy: { maxAgeMs: 0, cooldownMs: 0 } },
    );
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'rotation',
        clerkOrgId: ORG,
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [{ origin_id: originId, path_pattern: '/user/*', auth_mode: 'jwt_required' }],
        settings:
          source === 'oidc' ? { oidc: { issuer: ISSUER, audience: AUDIENCE, jwks_url: `${base}/jwks` } } : {},
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
    await new Promise<void>((resolve) => {
      server?.close(() => resolve());
      server?.closeAllConnections();
    });
  });

  it('is refused once the replica fetched the set without its key; one signed with a kept key stays accepted', async () => {
    const [leaked, kept] = [await newKey(), await newKey()];
    await publish(leaked, kept);
    const signedWithLeaked = await leaked.sign('user-leaked');
    const signedWithKept = await kept.sign('user-kept');
    for (const token of [signedWithLeaked, signedWithKept, signedWithLeaked, signedWithKept])
      expect((await call(token)).status).toBe(200);

    await publish(kept);

    const refused = await call(signedWithLeaked);
    expect(refused.status).toBe(401);
    expect(refused.json()).toMatchObject({ error: { code: 'invalid_token' } });
    expect((await call(signedWithKept)).status).toBe(200);
    expect((await call(await kept.sign('user-new'))).status).toBe(200);
  });

  it('has the set refreshed by its own use, as a verification would, and is refused after that refresh', async () => {
    const [leaked, kept] = [await newKey(), await newKey()];
    await publish(leaked, kept);
    const token = await leaked.sign('user-cached');
    expect((await call(token)).status).toBe(200);
    listed = [kept];
    const before = fetches;

    // Served while the set is refreshed in the background (stale-while-revalidate), then refused.
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 50 && statuses.at(-1) !== 401; attempt++) {
      statuses.push((await call(token)).status);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(fetches).toBeGreaterThan(before);
    expect(statuses.at(-1)).toBe(401);
    expect(statuses.every((status) => status === 200 || status === 401)).toBe(true);
  });
});
