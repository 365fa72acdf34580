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
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * Every tenant's admin requests share one PostgreSQL pool, and each caller may have
 * USER_IN_FLIGHT requests running. A tenant with many admins must not hold more than TENANT_IN_FLIGHT
 * of them at once (each here a slow audit-log read, blocked on a lock the test holds), so another
 * tenant's admin is still served.
 */

const USER_IN_FLIGHT = 2;
const TENANT_IN_FLIGHT = 3;
const ADMINS_OF_A = ['user_inflight_a1', 'user_inflight_a2', 'user_inflight_a3'];

let cp: ControlPlaneHarness;
let tenantA: string;
let tenantB: string;
let adminsOfA: string[];
let adminOfB: string;

const tenant = (name: string, org: string) => createOrgTenant(cp, name, org);

const expectTenantFull = (response: ApiResponse) =>
  expectAdminRateLimited(
    response,
    'tenant_requests_in_flight',
    `at most ${TENANT_IN_FLIGHT} requests on one tenant at once (CONTROL_PLANE_TENANT_REQUESTS_IN_FLIGHT)`,
  );

beforeAll(async () => {
  cp = await startControlPlane({
    withReadSide: true,
    poolSize: 12,
    userRequestsInFlight: USER_IN_FLIGHT,
    tenantRequestsInFlight: TENANT_IN_FLIGHT,
    // The reads wait on the test's lock for as long as the test holds it.
    readStatementTimeoutMs: 60_000,
  });
  tenantA = await tenant('inflight-a', 'org_inflight_a');
  tenantB = await tenant('inflight-b', 'org_inflight_b');
  adminsOfA = await Promise.all(
    ADMINS_OF_A.map((userId) => cp.token({ userId, orgId: 'org_inflight_a', orgRole: 'admin' })),
  );
  adminOfB = await cp.token({ userId: 'user_inflight_b', orgId: 'org_inflight_b', orgRole: 'admin' });
  // The read models show the org's tenant once the projector has caught up.
  await untilReadable(cp, adminsOfA[0] as string, tenantA);
  await untilReadable(cp, adminOfB, tenantB);
}, 60_000);

afterAll(async () => {
  await cp?.close();
});

describe('a tenant’s admin requests in flight', () => {
  it('regression: several admins of one tenant together hold at most the tenant’s places; another tenant is served; places come back once answered', async () => {
    const blocker = new pg.Client({ connectionString: cp.db.url });
    await blocker.connect();
    const lockWaiters = () => auditLogLockWaiters(blocker);
    const slowRead = (token: string) => () =>
      cp.request('GET', `/api/v1/audit-log?tenant_id=${tenantA}`, { token });
    try {
      await lockAuditLog(blocker);
      // Each admin of A sends as many slow reads as the per-caller limit lets it.
      const sent = await sendUntilAnsweredOrBlocked(
        blocker,
        adminsOfA.flatMap((token) => Array.from({ length: USER_IN_FLIGHT }, () => slowRead(token))),
      );
      const reads = sent.requests;
      expect(await lockWaiters(), 'reads of tenant A running').toBe(TENANT_IN_FLIGHT);
      expect(sent.answered(), 'reads of tenant A refused').toBe(reads.length - TENANT_IN_FLIGHT);

      // Meanwhile: another tenant's admin is served.
      const other = await cp.request('GET', `/api/v1/routes?tenant_id=${tenantB}`, { token: adminOfB });
      expect(other.status, JSON.stringify(other.body)).toBe(200);
      // A request naming A without access to it takes none of A's places, and is answered as ever.
      const outsider = await cp.request('GET', `/api/v1/routes?tenant_id=${tenantA}`, { token: adminOfB });
      expect(outsider.status).toBe(404);
      // Any request on A is refused while A is full, a platform admin's command too, changing nothing.
      const before = (await cp.allEvents()).length;
      const rename = await cp.request('PATCH', `/api/v1/tenants/${tenantA}`, { body: { name: 'renamed' } });
      expectTenantFull(rename);
      expect((await cp.allEvents()).length).toBe(before);
      expectTenantFull(await cp.request('GET', `/api/v1/audit-log?tenant_id=${tenantA}`));

      await blocker.query('rollback');
      const answers = await Promise.all(reads);
      expect(answers.filter((answer) => answer.status === 200)).toHaveLength(TENANT_IN_FLIGHT);
      for (const refused of answers.filter((answer) => answer.status !== 200)) expectTenantFull(refused);
      // Every refusal is counted by its limit: the reads, the rename and the platform admin's read.
      expect(await cp.metrics.metrics()).toContain(
        `vantageedge_control_plane_admin_rate_limited_total{limit="tenant_requests_in_flight",service="control-plane"} ${reads.length - TENANT_IN_FLIGHT + 2}`,
      );

      // The answered reads gave their places back: as many slow reads as A may have run again.
      await lockAuditLog(blocker);
      const { requests: again } = await sendUntilAnsweredOrBlocked(blocker, adminsOfA.map(slowRead));
      expect(await lockWaiters()).toBe(TENANT_IN_FLIGHT);
      await blocker.query('rollback');
      for (const answer of await Promise.all(again)) expect(answer.status).toBe(200);
      const renamed = await cp.request('PATCH', `/api/v1/tenants/${tenantA}`, { body: { name: 'renamed' } });
      expect(renamed.status, JSON.stringify(renamed.body)).toBe(200);
    } finally {
      await blocker.end();
    }
  }, 90_000);
});
