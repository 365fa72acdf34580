import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auditLogLockWaiters,
  createOrgTenant,
  expectAdminRateLimited,
  lockAuditLog,
  sendUntilAnsweredOrBlocked,
  untilReadable,
} from '../testing/admin-limits.js';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  PLATFORM_ADMIN,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * One organisation's admins reach several tenants: the organisation's own (its Clerk org) and others
 * they are admins of. Each admin and each tenant stays within its own in-flight limit, yet together
 * they could hold every connection of the pool every organisation's admins share; the organisation
 * holds at most ORG_IN_FLIGHT of them, so another organisation's admin is still answered.
 */

const POOL_SIZE = 6;
const USER_IN_FLIGHT = 2;
const TENANT_IN_FLIGHT = 2;
const ORG_IN_FLIGHT = 3;
const ORG_A = 'org_orgpool_a';
const ADMINS_OF_A = ['user_orgpool_a1', 'user_orgpool_a2', 'user_orgpool_a3'];

let cp: ControlPlaneHarness;
/** Tenants of organisation A: its Clerk org's, then one per further admin. */
let tenantsOfA: string[];
let tenantB: string;
let adminsOfA: string[];
let adminOfB: string;

const tenant = (name: string, org: string) => createOrgTenant(cp, name, org);

const expectOrgFull = (response: ApiResponse) =>
  expectAdminRateLimited(
    response,
    'org_requests_in_flight',
    `at most ${ORG_IN_FLIGHT} requests of one organisation at once (CONTROL_PLANE_ORG_REQUESTS_IN_FLIGHT)`,
  );

beforeAll(async () => {
  cp = await startControlPlane({
    withReadSide: true,
    poolSize: POOL_SIZE,
    // A request finding every connection busy gives up soon (503 store_unavailable).
    poolWaitMs: 1_500,
    userRequestsInFlight: USER_IN_FLIGHT,
    tenantRequestsInFlight: TENANT_IN_FLIGHT,
    orgRequestsInFlight: ORG_IN_FLIGHT,
    // The reads wait on the test's lock for as long as the test holds it.
    readStatementTimeoutMs: 60_000,
  });
  tenantsOfA = [
    await tenant('orgpool-a0', ORG_A),
    await tenant('orgpool-a1', 'org_orgpool_a1'),
    await tenant('orgpool-a2', 'org_orgpool_a2'),
  ];
  tenantB = await tenant('orgpool-b', 'org_orgpool_b');
  // A's admins act with their organisation active; the second and third are also admins of a tenant each.
  for (const [index, userId] of ADMINS_OF_A.entries()) {
    if (index === 0) continue;
    const added = await cp.request('POST', '/api/v1/users', {
      body: {
        tenant_id: tenantsOfA[index],
        clerk_user_id: userId,
        email: `${userId}@example.com`,
        role: 'admin',
      },
    });
    expect(added.status, JSON.stringify(added.body)).toBe(201);
  }
  adminsOfA = await Promise.all(
    ADMINS_OF_A.map((userId) => cp.token({ userId, orgId: ORG_A, orgRole: 'admin' })),
  );
  adminOfB = await cp.token({ userId: 'user_orgpool_b', orgId: 'org_orgpool_b', orgRole: 'admin' });
  for (const [index, token] of adminsOfA.entries())
    await untilReadable(cp, token, tenantsOfA[index] as string);
  await untilReadable(cp, adminOfB, tenantB);
}, 60_000);

afterAll(async () => {
  await cp?.close();
});

describe('an organisation’s admin requests in flight', () => {
  it('regression: the admins of one organisation, each on a tenant of its own, hold at most the organisation’s places of the pool; another organisation is answered', async () => {
    const blocker = new pg.Client({ connectionString: cp.db.url });
    await blocker.connect();
    const lockWaiters = () => auditLogLockWaiters(blocker);
    try {
      await lockAuditLog(blocker);
      // Each admin of A sends as many slow reads of its own tenant as its limits let it.
      const slowReads = adminsOfA.flatMap((token, index) => {
        const read = () => cp.request('GET', `/api/v1/audit-log?tenant_id=${tenantsOfA[index]}`, { token });
        return Array.from({ length: USER_IN_FLIGHT }, () => read);
      });
      const { requests: reads } = await sendUntilAnsweredOrBlocked(blocker, slowReads);

      // Meanwhile another organisation's admin is answered.
      const other = await cp.request('GET', `/api/v1/routes?tenant_id=${tenantB}`, { token: adminOfB });
      expect(other.status, JSON.stringify(other.body)).toBe(200);
      expect(await lockWaiters(), 'reads of organisation A running').toBe(ORG_IN_FLIGHT);
      // A platform admin acting as organisation A is not one of its requests.
      const operator = await cp.request('GET', '/api/v1/tenants', {
        token: await cp.token({ userId: PLATFORM_ADMIN, orgId: ORG_A, orgRole: 'admin' }),
      });
      expect(operator.status, JSON.stringify(operator.body)).toBe(200);
      // The organisation's places are its members' while they act as it: one of them acting without it
      // is held to its own limits only.
      const member = 'user_orgpool_a4';
      expectOrgFull(
        await cp.request('GET', '/api/v1/tenants', {
          token: await cp.token({ userId: member, orgId: ORG_A, orgRole: 'member' }),
        }),
      );
      const withoutOrg = await cp.request('GET', '/api/v1/tenants', {
        token: await cp.token({ userId: member }),
      });
      expect(withoutOrg.status, JSON.stringify(withoutOrg.body)).toBe(200);

      await blocker.query('rollback');
      const answers = await Promise.all(reads);
      expect(answers.filter((answer) => answer.status === 200)).toHaveLength(ORG_IN_FLIGHT);
      for (const refused of answers.filter((answer) => answer.status !== 200)) expectOrgFull(refused);
      expect(await cp.metrics.metrics()).toContain(
        `vantageedge_control_plane_admin_rate_limited_total{limit="org_requests_in_flight",service="control-plane"} ${reads.length - ORG_IN_FLIGHT + 1}`,
      );
    } finally {
      await blocker.query('rollback').catch(() => undefined);
      await blocker.end();
    }
  }, 90_000);
});
