import { randomUUID } from 'node:crypto';
import {
  type ClerkTestKeys,
  createClerkTestKeys,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * Regression tests: who may see a route's answers — any Clerk user or the tenant's own, the sites its
 * CORS policy names, nobody (a block) — was not weighed when another reading of a path (letter case,
 * which Express, ASP.NET and IIS ignore; a `;` parameter, which Tomcat drops) matched a route beside
 * the one matched as written. So a user of any org reached `/api/Admin/users` of an origin whose
 * `/api/admin/*` is for the tenant's members only, `/api/Internal/x` reached the origin past the 403
 * `fixed_response` of `/api/internal/*`, and a partner site allowed on `/api/*` read `/api/Private/x`.
 */
let origin: TestOrigin;
let gateway: TestGateway;
let clerk: ClerkTestKeys;
const READINGS = ['/Admin/users', '/ADMIN/users', '/admin;x=1/users'];
const PARTNER = 'https://partner.example';

beforeAll(async () => {
  origin = await startTestOrigin('origin');
  clerk = await createClerkTestKeys();
  gateway = await startTestGateway({ CLERK_JWT_KEY: clerk.publicKeyPem });
  const originId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'members',
      clerkOrgId: 'org_acme',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [
        {
          origin_id: originId,
          path_pattern: '/api/*',
          auth_mode: 'jwt_required',
          allow_any_authenticated_user: true,
        },
        { origin_id: originId, path_pattern: '/api/admin/*', auth_mode: 'jwt_required' },
      ],
    }),
  );
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'partnered',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [
        {
          origin_id: originId,
          path_pattern: '/api/*',
          cors: { allow_origins: [PARTNER], allow_credentials: true },
        },
        { origin_id: originId, path_pattern: '/api/private/*' },
      ],
    }),
  );
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'blocked',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [
        { origin_id: originId, path_pattern: '/api/*' },
        {
          origin_id: null,
          path_pattern: '/api/internal/*',
          fixed_response: { status: 403, body: 'internal', content_type: 'text/plain' },
        },
      ],
    }),
  );
});

afterAll(async () => {
  await gateway?.close();
  await origin?.close();
});

const bearer = async (orgId: string) => ({
  headers: { authorization: `Bearer ${await signClerkToken(clerk, { userId: `user_${orgId}`, orgId })}` },
});

describe('a path another reading of which reaches a members-only route beside one open to any user', () => {
  it('gets the members-only route: a user of another org is refused, a member is served', async () => {
    const before = origin.seen.length;
    const stranger = await bearer('org_strangers_own');
    for (const reading of ['/admin/users', ...READINGS]) {
      const refused = await send(gateway, 'members.localhost', `/api${reading}`, stranger);
      expect(refused.status, reading).toBe(403);
      expect(refused.json()).toMatchObject({ error: { code: 'wrong_organization' } });
    }
    expect(origin.seen.length).toBe(before);
    const member = await bearer('org_acme');
    for (const reading of READINGS)
      expect((await send(gateway, 'members.localhost', `/api${reading}`, member)).status, reading).toBe(200);
    // Paths no other reading of which is a members-only one stay open to any user.
    expect((await send(gateway, 'members.localhost', '/api/posts', stranger)).status).toBe(200);
  });
});

describe('a path another reading of which reaches a route that answers itself', () => {
  it('gets that answer, never the origin', async () => {
    const before = origin.seen.length;
    for (const reading of ['/internal/x', '/Internal/x', '/INTERNAL/x', '/internal;a=1/x']) {
      const blocked = await send(gateway, 'blocked.localhost', `/api${reading}`);
      expect(blocked.status, reading).toBe(403);
      expect(blocked.text).toBe('internal');
    }
    expect(origin.seen.length).toBe(before);
    expect((await send(gateway, 'blocked.localhost', '/api/posts')).status).toBe(200);
  });
});

describe('a path another reading of which reaches a route without the CORS policy of the one it matches', () => {
  it('gets no CORS answer for the sites the other route names: the partner cannot read it', async () => {
    const fromPartner = { headers: { origin: PARTNER, cookie: 'session=1' } };
    const allowed = await send(gateway, 'partnered.localhost', '/api/posts', fromPartner);
    expect(allowed.headers['access-control-allow-origin']).toBe(PARTNER);
    for (const reading of ['/private/x', '/Private/x', '/PRIVATE/x', '/private;a=1/x']) {
      const read = await send(gateway, 'partnered.localhost', `/api${reading}`, fromPartner);
      expect(read.status, reading).toBe(200);
      expect(read.headers['access-control-allow-origin'], reading).toBeUndefined();
    }
  });
});
