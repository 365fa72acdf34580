import { signClerkTemplateToken } from '@vantageedge/shared/testing/clerk-tokens';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  PLATFORM_ADMIN,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * The admin API takes Clerk session tokens only. A Clerk instance signs its JWT templates' tokens (the
 * ones an app fetches for Hasura, Supabase or any third-party service) with the same key: such a token
 * names no session, so it outlives the session's sign-out or revocation, often by an hour, and says
 * nothing of the session's status; whoever it was given to must not be able to act as its user here.
 */
let cp: ControlPlaneHarness;
let tenantId = '';
beforeAll(async () => {
  cp = await startControlPlane();
  const created = await cp.request('POST', '/api/v1/tenants', {
    body: { name: 'Kinds', subdomain: 'stk-kinds', clerk_org_id: 'org_stk_kinds' },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  tenantId = json(created)['id'] as string;
});
afterAll(async () => {
  await cp?.close();
});

const createTenant = (token: string, subdomain: string) =>
  cp.request('POST', '/api/v1/tenants', { token, body: { name: subdomain, subdomain } });

const issueKey = (token: string, name: string) =>
  cp.request('POST', '/api/v1/api-keys', { token, body: { tenant_id: tenantId, name } });

const refusedAsUnauthenticated = (response: ApiResponse) => {
  expect(response.status).toBe(401);
  expect(json(response)).toMatchObject({
    error: { code: 'unauthenticated', details: [{ field: 'authorization' }] },
  });
};

describe('session tokens only', () => {
  it('refuses a JWT template token without a category tag, and appends nothing', async () => {
    const hasura = await signClerkTemplateToken(cp.keys, {
      userId: PLATFORM_ADMIN,
      tagged: false,
      claims: { 'https://hasura.io/jwt/claims': { 'x-hasura-user-id': PLATFORM_ADMIN } },
    });
    const before = (await cp.allEvents()).length;
    refusedAsUnauthenticated(await createTenant(hasura, 'stk-template-untagged'));
    expect((await cp.allEvents()).length).toBe(before);
  });

  it("refuses a template token carrying a copy of the org claims as the org's admin", async () => {
    const withOrg = await signClerkTemplateToken(cp.keys, {
      userId: 'user_stk_template',
      tagged: false,
      claims: { org_id: 'org_stk_kinds', org_role: 'org:admin' },
    });
    refusedAsUnauthenticated(await issueKey(withOrg, 'from a template'));
  });

  it('refuses a JWT template token tagged as one', async () => {
    const tagged = await signClerkTemplateToken(cp.keys, { userId: PLATFORM_ADMIN });
    expect((await createTenant(tagged, 'stk-template-tagged')).status).toBe(401);
  });

  it('accepts a session token of the same user', async () => {
    const session = await cp.token({ userId: PLATFORM_ADMIN });
    expect((await createTenant(session, 'stk-session')).status).toBe(201);
  });
});

describe('session status', () => {
  it('refuses a pending session (sign-in tasks left) even for its org admin', async () => {
    const pending = await cp.token({
      userId: 'user_stk_pending',
      orgId: 'org_stk_kinds',
      orgRole: 'admin',
      sessionStatus: 'pending',
    });
    const response = await issueKey(pending, 'pending');
    refusedAsUnauthenticated(response);
    expect(JSON.stringify(response.body)).toContain('pending');
  });

  it('lets the same session in once it is active', async () => {
    const active = await cp.token({ userId: 'user_stk_pending', orgId: 'org_stk_kinds', orgRole: 'admin' });
    expect((await issueKey(active, 'active')).status).toBe(201);
  });
});

describe('org claims by token version', () => {
  it('reads a v2 token by its `o` claim, never by v1 org claims beside it', async () => {
    const member = await cp.token({
      userId: 'user_stk_mixed',
      orgId: 'org_stk_kinds',
      orgRole: 'member',
      customClaims: { org_id: 'org_stk_kinds', org_role: 'org:admin' },
    });
    const write = await issueKey(member, 'mixed claims');
    expect(write.status).toBe(403);
    expect(json(write)).toMatchObject({ error: { code: 'forbidden' } });
  });

  it('reads a v1 token by its org_id/org_role claims', async () => {
    const admin = await cp.token({
      userId: 'user_stk_v1',
      orgId: 'org_stk_kinds',
      orgRole: 'admin',
      version: 1,
    });
    expect((await issueKey(admin, 'v1 admin')).status).toBe(201);
  });
});
