import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addTenantUser,
  createOrgTenant,
  expectAdmittedThenRefused,
  readModelLockWaiters,
  sendSlowReads,
  untilReadable,
  withReadModelLocked,
} from '../testing/admin-limits.js';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * Regression test: an organisation's requests in flight (CONTROL_PLANE_ORG_REQUESTS_IN_FLIGHT) were one
 * count for all its members, and a member may have as many requests in flight as the organisation has
 * places. So one member without the admin role (read access to the organisation's tenant; any
 * tenant it acts on counts the same) holding that many slow reads — here listings of the tenant's
 * custom domains, waiting on a lock the test holds — left the organisation's admins unable to revoke a
 * key (429). Members without the admin role now hold at most the places left once the admins' quarter
 * is kept.
 */

const IN_FLIGHT = 8;
const MEMBERS_IN_FLIGHT = IN_FLIGHT - IN_FLIGHT / 4;
const ORG = 'org_roles_inflight';
const DOMAINS = 'read_models.custom_domains';

let cp: ControlPlaneHarness;
let tenantId: string;
let member: string;
let orgAdmin: string;
let keyId: string;
let listedAdmin: string;

const listDomains = (token: string) => () =>
  cp.request('GET', `/api/v1/tenants/${tenantId}/domains`, { token });

beforeAll(async () => {
  cp = await startControlPlane({
    withReadSide: true,
    poolSize: 16,
    userRequestsInFlight: IN_FLIGHT,
    orgRequestsInFlight: IN_FLIGHT,
    // The reads wait on the test's lock for as long as the test holds it.
    readStatementTimeoutMs: 60_000,
  });
  tenantId = await createOrgTenant(cp, 'org-roles', ORG);
  member = await cp.token({ userId: 'user_org_roles_member', orgId: ORG, orgRole: 'member' });
  orgAdmin = await cp.token({ userId: 'user_org_roles_admin', orgId: ORG, orgRole: 'admin' });
  const key = await cp.request('POST', '/api/v1/api-keys', { body: { tenant_id: tenantId, name: 'leaked' } });
  expect(key.status, JSON.stringify(key.body)).toBe(201);
  keyId = String(json(key)['id']);
  // A member of the organisation without its admin role whom the tenant's user list makes an admin:
  // one of the tenant's writers, as its org admins are.
  await addTenantUser(cp, tenantId, 'user_org_roles_listed', 'admin');
  listedAdmin = await cp.token({ userId: 'user_org_roles_listed', orgId: ORG, orgRole: 'member' });
  await untilReadable(cp, member, tenantId);
  await untilReadable(cp, listedAdmin, tenantId);
}, 60_000);

afterAll(async () => {
  await cp?.close();
});

describe('an organisation’s requests in flight and its roles', () => {
  it('a member holding every slow read it may leaves the organisation’s admins their places: a revoke runs', async () => {
    await withReadModelLocked(cp, DOMAINS, async (blocker) => {
      const sent = await sendSlowReads(blocker, DOMAINS, IN_FLIGHT, listDomains(member));

      const revoked = await cp.request('DELETE', `/api/v1/api-keys/${keyId}`, { token: orgAdmin });
      expect(revoked.status, JSON.stringify(revoked.body)).toBe(204);
      expect(await readModelLockWaiters(blocker, DOMAINS), 'the member’s reads running').toBe(
        MEMBERS_IN_FLIGHT,
      );

      await blocker.query('rollback');
      expectAdmittedThenRefused(
        await Promise.all(sent.requests),
        MEMBERS_IN_FLIGHT,
        'org_requests_in_flight',
        `at most ${MEMBERS_IN_FLIGHT} requests of one organisation's members without its admin role at once (the rest of CONTROL_PLANE_ORG_REQUESTS_IN_FLIGHT is for its admins)`,
      );
    });
  }, 90_000);

  it('a member the tenant’s user list makes its admin is one of its writers: its revoke runs too', async () => {
    await withReadModelLocked(cp, DOMAINS, async (blocker) => {
      const sent = await sendSlowReads(blocker, DOMAINS, MEMBERS_IN_FLIGHT, listDomains(member));
      const key = await cp.request('POST', '/api/v1/api-keys', {
        token: listedAdmin,
        body: { tenant_id: tenantId, name: 'second' },
      });
      expect(key.status, JSON.stringify(key.body)).toBe(201);
      const revoked = await cp.request('DELETE', `/api/v1/api-keys/${String(json(key)['id'])}`, {
        token: listedAdmin,
      });
      expect(revoked.status, JSON.stringify(revoked.body)).toBe(204);
      await blocker.query('rollback');
      for (const answer of await Promise.all(sent.requests)) expect(answer.status).toBe(200);
    });
  }, 90_000);
});
