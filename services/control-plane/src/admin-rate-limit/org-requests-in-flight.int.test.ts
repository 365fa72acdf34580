import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
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

async function tenant(name: string, org: string): Promise<string> {
  const created = await cp.request('POST', '/api/v1/tenants', {
    body: { name, subdomain: `${name}-${Date.now()}`, clerk_org_id: org },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return String(json(created)['id']);
}

const error = (response: ApiResponse) =>
  json(response)['error'] as { code: string; details: Array<{ field: string; issue: string }> };

function expectOrgFull(response: ApiResponse): void {
  expect(response.status, JSON.stringify(response.body)).toBe(429);
  expect(error(response).code).toBe('admin_rate_limited');
  expect(error(response).details[0]).toEqual({
    field: 'org_requests_in_flight',
    issue: `at most ${ORG_IN_FLIGHT} requests of one organisation at once (CONTROL_PLANE_ORG_REQUESTS_IN_FLIGHT)`,
  });
  expect(response.headers.get('retry-after')).toBe('1');
}

async function untilReadable(token: string, tenantId: string): Promise<void> {
  // The read models show a tenant's admins once the projector has caught up.
  while ((await cp.request('GET', `/api/v1/routes?tenant_id=${tenantId}`, { token })).status !== 200) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

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
  for (const [index, token] of adminsOfA.entries()) await untilReadable(token, tenantsOfA[index] as string);
  await untilReadable(adminOfB, tenantB);
}, 60_000);

afterAll(async () => {
  await cp?.close();
});

describe('an organisation’s admin requests in flight', () => {
  it('regression: the admins of one organisation, each on a tenant of its own, hold at most the organisation’s places of the pool; another organisation is answered', async () => {
    const blocker = new pg.Client({ connectionString: cp.db.url });
    await blocker.connect();
    const lockWaiters = async () => {
      const { rows } = await blocker.query<{ n: number }>(
        `select count(*)::int as n from pg_locks
          where relation = 'read_models.audit_log'::regclass and not granted`,
      );
      return rows[0]?.n ?? 0;
    };
    try {
      await blocker.query('begin');
      await blocker.query('lock table read_models.audit_log in access exclusive mode');
      // Each admin of A sends as many slow reads of its own tenant as its limits let it.
      let settled = 0;
      const reads = adminsOfA.flatMap((token, index) =>
        Array.from({ length: USER_IN_FLIGHT }, () =>
          cp.request('GET', `/api/v1/audit-log?tenant_id=${tenantsOfA[index]}`, { token }).finally(() => {
            settled += 1;
          }),
        ),
      );
      await expect.poll(async () => settled + (await lockWaiters()), { timeout: 20_000 }).toBe(reads.length);

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
