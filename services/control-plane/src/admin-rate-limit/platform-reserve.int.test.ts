import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auditLogLockWaiters,
  expectAdminRateLimited,
  lockAuditLog,
  sendUntilAnsweredOrBlocked,
  untilReadable,
} from '../testing/admin-limits.js';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * Admins of several tenants, acting with no organisation, each within its per-caller and per-tenant
 * limits, could together hold every connection of the pool: every caller but the platform admins holds
 * at most REQUESTS_IN_FLIGHT of them, so a platform admin is still answered, and the last of those
 * places go only to an organisation (or a caller with none) with nothing running.
 */

const POOL_SIZE = 6;
const USER_IN_FLIGHT = 2;
const REQUESTS_IN_FLIGHT = 4;
const ADMINS = ['user_reserve_1', 'user_reserve_2', 'user_reserve_3', 'user_reserve_4'];

let cp: ControlPlaneHarness;
let tenants: string[];
let admins: string[];
let blocker: pg.Client;

const expectBusy = (response: ApiResponse) =>
  expectAdminRateLimited(
    response,
    'requests_in_flight',
    `at most ${REQUESTS_IN_FLIGHT} requests of tenant admins at once, the last 1 for callers and organisations with none running (CONTROL_PLANE_REQUESTS_IN_FLIGHT)`,
  );

const lockWaiters = () => auditLogLockWaiters(blocker);

/** Slow reads of the admin's own tenant, as many as its per-caller limit lets it; once each is answered or blocked. */
async function slowReads(
  admin: number,
  running: number,
  token = admins[admin] as string,
  count = USER_IN_FLIGHT,
): Promise<Promise<ApiResponse>[]> {
  const read = () => cp.request('GET', `/api/v1/audit-log?tenant_id=${tenants[admin]}`, { token });
  const sent = await sendUntilAnsweredOrBlocked(
    blocker,
    Array.from({ length: count }, () => read),
    running,
  );
  return sent.requests;
}

beforeAll(async () => {
  cp = await startControlPlane({
    withReadSide: true,
    poolSize: POOL_SIZE,
    // A request finding every connection busy gives up soon (503 store_unavailable).
    poolWaitMs: 1_500,
    userRequestsInFlight: USER_IN_FLIGHT,
    tenantRequestsInFlight: USER_IN_FLIGHT,
    orgRequestsInFlight: USER_IN_FLIGHT,
    requestsInFlight: REQUESTS_IN_FLIGHT,
    readStatementTimeoutMs: 60_000,
  });
  tenants = [];
  for (const [index, userId] of ADMINS.entries()) {
    const created = await cp.request('POST', '/api/v1/tenants', {
      body: { name: `reserve-${index}`, subdomain: `reserve-${index}-${Date.now()}` },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const tenantId = String(json(created)['id']);
    tenants.push(tenantId);
    const added = await cp.request('POST', '/api/v1/users', {
      body: { tenant_id: tenantId, clerk_user_id: userId, email: `${userId}@example.com`, role: 'owner' },
    });
    expect(added.status, JSON.stringify(added.body)).toBe(201);
  }
  admins = await Promise.all(ADMINS.map((userId) => cp.token({ userId })));
  for (const [index, token] of admins.entries()) await untilReadable(cp, token, tenants[index] as string);
  blocker = new pg.Client({ connectionString: cp.db.url });
  await blocker.connect();
}, 60_000);

afterAll(async () => {
  await blocker?.end();
  await cp?.close();
});

async function withAuditLogLocked(test: () => Promise<void>): Promise<void> {
  await lockAuditLog(blocker);
  try {
    await test();
  } finally {
    await blocker.query('rollback');
  }
}

/** `answered` of `reads` are answered; every other one is refused as the pool's part is taken. */
async function expectAnswered(reads: Promise<ApiResponse>[], answered: number): Promise<void> {
  const answers = await Promise.all(reads);
  expect(answers.filter((answer) => answer.status === 200)).toHaveLength(answered);
  for (const refused of answers.filter((answer) => answer.status !== 200)) expectBusy(refused);
}

/** The fourth admin, with nothing running, reads its tenant: answered, from the last places if need be. */
async function expectNewcomerAnswered(): Promise<void> {
  const newcomer = await cp.request('GET', `/api/v1/routes?tenant_id=${tenants[3]}`, {
    token: admins[3] as string,
  });
  expect(newcomer.status, JSON.stringify(newcomer.body)).toBe(200);
}

describe('the pool kept for platform admins', () => {
  it('regression: admins of several tenants together hold at most their part of the pool; a platform admin is answered', async () => {
    let reads: Promise<ApiResponse>[] = [];
    await withAuditLogLocked(async () => {
      // The first admin takes two places, the second one (the last place but one is the last anyone
      // busy may take), the third, busy with nothing yet, the last.
      reads = [...(await slowReads(0, 0)), ...(await slowReads(1, 2)), ...(await slowReads(2, 3))];
      expect(await lockWaiters(), 'tenant admins’ reads running').toBe(REQUESTS_IN_FLIGHT);

      const operator = await cp.request('GET', '/api/v1/tenants');
      expect(operator.status, JSON.stringify(operator.body)).toBe(200);
      expectBusy(
        await cp.request('GET', `/api/v1/routes?tenant_id=${tenants[3]}`, { token: admins[3] as string }),
      );
    });
    await expectAnswered(reads, REQUESTS_IN_FLIGHT);
  }, 90_000);

  it('regression: callers already busy leave the last places to one with nothing running', async () => {
    let reads: Promise<ApiResponse>[] = [];
    await withAuditLogLocked(async () => {
      reads = [...(await slowReads(0, 0)), ...(await slowReads(1, 2))];
      expect(await lockWaiters(), 'tenant admins’ reads running').toBe(REQUESTS_IN_FLIGHT - 1);

      await expectNewcomerAnswered();
    });
    await expectAnswered(reads, REQUESTS_IN_FLIGHT - 1);
  }, 90_000);

  it('regression: a caller already running a request takes none of the last places by acting as another organisation', async () => {
    // Clerk signs a token for each organisation its user is a member of, and any user may create some.
    const asOrgA = await cp.token({ userId: ADMINS[1] as string, orgId: 'org_reserve_a' });
    const asOrgB = await cp.token({ userId: ADMINS[1] as string, orgId: 'org_reserve_b' });
    let reads: Promise<ApiResponse>[] = [];
    await withAuditLogLocked(async () => {
      reads = [...(await slowReads(0, 0)), ...(await slowReads(1, 2, asOrgA, 1))];
      reads.push(...(await slowReads(1, 3, asOrgB, 1)));

      await expectNewcomerAnswered();
    });
    await expectAnswered(reads, REQUESTS_IN_FLIGHT - 1);
  }, 90_000);

  // A tenant document's access is checked (from the event log) before its body is read, and the body
  // before the places many callers share are counted: signed-in users naming any tenant's id held
  // every connection of the pool with those checks, and a platform admin waited for one.
  it('regression: tenant documents whose access is being checked hold at most the admins’ part of the pool; a platform admin is answered', async () => {
    const strangers = await Promise.all(
      ['user_reserve_doc_1', 'user_reserve_doc_2', 'user_reserve_doc_3', 'user_reserve_doc_4'].map((userId) =>
        cp.token({ userId }),
      ),
    );
    const eventReadsWaiting = async () => {
      const { rows } = await blocker.query<{ n: number }>(
        `select count(*)::int as n from pg_locks
          where relation = 'event_store_events'::regclass and not granted`,
      );
      return rows[0]?.n ?? 0;
    };
    let plans: Promise<ApiResponse>[] = [];
    await blocker.query('begin');
    await blocker.query('lock table event_store_events in access exclusive mode');
    try {
      let settled = 0;
      plans = strangers.flatMap((token) =>
        Array.from({ length: USER_IN_FLIGHT }, () =>
          cp.request('POST', `/api/v1/tenants/${tenants[0]}/config/plan`, { token, body: {} }).finally(() => {
            settled += 1;
          }),
        ),
      );
      await expect
        .poll(async () => settled + (await eventReadsWaiting()), { timeout: 20_000 })
        .toBe(plans.length);
      expect(await eventReadsWaiting(), 'access checks running').toBeLessThanOrEqual(REQUESTS_IN_FLIGHT);

      const operator = await cp.request('GET', '/api/v1/tenants');
      expect(operator.status, JSON.stringify(operator.body)).toBe(200);
    } finally {
      await blocker.query('rollback');
    }
    const answers = await Promise.all(plans);
    // Let through, they are no tenant's admins: the tenant is not found for them.
    expect(answers.filter((answer) => answer.status === 404)).toHaveLength(REQUESTS_IN_FLIGHT);
    for (const refused of answers.filter((answer) => answer.status !== 404)) expectBusy(refused);
  }, 90_000);
});
