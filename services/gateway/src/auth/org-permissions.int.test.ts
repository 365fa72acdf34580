import { randomUUID } from 'node:crypto';
import { type ClerkTestKeys, createClerkTestKeys } from '@vantageedge/shared/testing/clerk-tokens';
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

const PERMISSION = 'org:invoices:manage';

/** A user route that requires PERMISSION. */
const scoped = (originId: string, path: string, extra: Record<string, unknown> = {}) => ({
  origin_id: originId,
  path_pattern: path,
  auth_mode: 'jwt_required' as const,
  required_scopes: [PERMISSION],
  ...extra,
});

/**
 * Regression test: a Clerk v1 session token lists the user's permissions in its active organization
 * (`org_permissions`), and the gateway counted them as the token's scopes wherever it was accepted. On a
 * route open to users outside the tenant's org (`require_tenant_org: false`, `allow_any_authenticated_user`)
 * or at a tenant without an org (its user list), anyone could create an org of their own, hold every
 * permission in it, and pass the route's `required_scopes` — and the origin was told those scopes. An
 * org's permissions now count only at the tenant whose org it is.
 */
describe("a Clerk organization's permissions are scopes only at that organization's tenant", () => {
  let origin: TestOrigin;
  let gateway: TestGateway;
  let clerk: ClerkTestKeys;

  /** A v1 session token: the active org's id and the user's permissions in it. */
  async function v1Token(userId: string, orgId: string, permissions: string[]): Promise<string> {
    return new SignJWT({
      iss: 'https://offline.clerk.accounts.dev',
      sid: `sess_${randomUUID().replaceAll('-', '')}`,
      org_id: orgId,
      org_role: 'org:admin',
      org_slug: orgId,
      org_permissions: permissions,
    })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: clerk.kid })
      .setSubject(userId)
      .setIssuedAt()
      .setNotBefore(Math.floor(Date.now() / 1000))
      .setExpirationTime('5m')
      .sign(clerk.privateKey);
  }

  const call = (host: string, path: string, token: string) =>
    send(gateway, `${host}.localhost`, path, { headers: { authorization: `Bearer ${token}` } });

  beforeAll(async () => {
    origin = await startTestOrigin('origin');
    clerk = await createClerkTestKeys();
    gateway = await startTestGateway({ CLERK_JWT_KEY: clerk.publicKeyPem });
    const acmeOrigin = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        tenantId: randomUUID(),
        subdomain: 'acme',
        clerkOrgId: 'org_acme',
        origins: [{ id: acmeOrigin, targets: [origin.url] }],
        routes: [
          scoped(acmeOrigin, '/members/*'),
          scoped(acmeOrigin, '/any-org/*', { require_tenant_org: false }),
          scoped(acmeOrigin, '/anyone/*', { allow_any_authenticated_user: true }),
          scoped(acmeOrigin, '/open/*', { require_tenant_org: false, required_scopes: [] }),
        ],
      }),
    );
    const initechOrigin = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        tenantId: randomUUID(),
        subdomain: 'initech',
        clerkOrgId: null,
        clerkUserIds: ['user_initech'],
        origins: [{ id: initechOrigin, targets: [origin.url] }],
        routes: [scoped(initechOrigin, '/invoices/*')],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  it("grants the route's scope to a member holding the permission in the tenant's org", async () => {
    const member = await v1Token('user_member', 'org_acme', [PERMISSION]);
    for (const path of ['/members/x', '/any-org/x', '/anyone/x']) {
      const response = await call('acme', path, member);
      expect(response.status, `${path}: ${response.text}`).toBe(200);
      const headers = response.json()['headers'] as Record<string, string>;
      expect(headers['x-vantageedge-scopes']).toBe(PERMISSION);
    }
    const withoutIt = await call('acme', '/members/x', await v1Token('user_member', 'org_acme', []));
    expect(withoutIt.status).toBe(403);
    expect(withoutIt.json()).toMatchObject({ error: { code: 'insufficient_scope' } });
  });

  it("does not take another org's permissions for the tenant's, where a route admits users of other orgs", async () => {
    const stranger = await v1Token('user_stranger', 'org_strangers_own', [PERMISSION]);
    const before = origin.seen.length;
    for (const path of ['/any-org/x', '/anyone/x']) {
      const response = await call('acme', path, stranger);
      expect(response.status, `${path}: ${response.text}`).toBe(403);
      expect(response.json()).toMatchObject({ error: { code: 'insufficient_scope' } });
    }
    expect(origin.seen.length).toBe(before);
    // Still admitted where the route asks for no scope, and the origin is told none of that org's.
    const open = await call('acme', '/open/x', stranger);
    expect(open.status, open.text).toBe(200);
    const headers = open.json()['headers'] as Record<string, string>;
    expect(headers['x-vantageedge-org-id']).toBe('org_strangers_own');
    expect(headers['x-vantageedge-scopes'] ?? '').not.toContain(PERMISSION);
  });

  it("does not take the permissions of a user's own org for a tenant without an org", async () => {
    const user = await v1Token('user_initech', 'org_users_own', [PERMISSION]);
    const response = await call('initech', '/invoices/x', user);
    expect(response.status, response.text).toBe(403);
    expect(response.json()).toMatchObject({ error: { code: 'insufficient_scope' } });
  });

  it("judges a token remembered from before again once the tenant's org changes", async () => {
    const tenantId = randomUUID();
    const originId = randomUUID();
    const umbrella = (version: number, clerkOrgId: string) =>
      buildSnapshot({
        tenantId,
        version,
        subdomain: 'umbrella',
        clerkOrgId,
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [scoped(originId, '/any-org/*', { require_tenant_org: false })],
      });
    gateway.store.apply(umbrella(1, 'org_umbrella'));
    const token = await v1Token('user_u', 'org_umbrella', [PERMISSION]);
    expect((await call('umbrella', '/any-org/x', token)).status).toBe(200);
    // The tenant now has another org: the old org's permissions are no longer this tenant's.
    gateway.store.apply(umbrella(2, 'org_umbrella_new'));
    const after = await call('umbrella', '/any-org/x', token);
    expect(after.status, after.text).toBe(403);
    expect(after.json()).toMatchObject({ error: { code: 'insufficient_scope' } });
  });
});
