import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * Every tenant's admin requests share one PostgreSQL pool. A tenant admin whose reads are slow (an
 * audit-log filter that walks its whole log, a stand-in here: a lock the test holds on the audit log)
 * must not hold every connection of it while another tenant's admin waits for one.
 */

const POOL_SIZE = 4;
const IN_FLIGHT = 2;
let cp: ControlPlaneHarness;
let attacker: string;
let victim: string;
let attackerTenant: string;
let victimTenant: string;

async function tenantWithAdmin(name: string, userId: string): Promise<string> {
  const created = await cp.request('POST', '/api/v1/tenants', {
    body: { name, subdomain: `${name.toLowerCase()}-${Date.now()}` },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const tenantId = String(json(created)['id']);
  const member = await cp.request('POST', '/api/v1/users', {
    body: { tenant_id: tenantId, clerk_user_id: userId, email: `${userId}@acme.test`, role: 'admin' },
  });
  expect(member.status, JSON.stringify(member.body)).toBe(201);
  return tenantId;
}

beforeAll(async () => {
  cp = await startControlPlane({ withReadSide: true, poolSize: POOL_SIZE, userRequestsInFlight: IN_FLIGHT });
  attackerTenant = await tenantWithAdmin('Noisy', 'user_noisy_admin');
  victimTenant = await tenantWithAdmin('Quiet', 'user_quiet_admin');
  attacker = await cp.token({ userId: 'user_noisy_admin' });
  victim = await cp.token({ userId: 'user_quiet_admin' });
  for (const [token, tenant] of [
    [attacker, attackerTenant],
    [victim, victimTenant],
  ] as const) {
    // The read models show the new admin once the projector has caught up.
    while ((await cp.request('GET', `/api/v1/routes?tenant_id=${tenant}`, { token })).status !== 200) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}, 60_000);

afterAll(async () => {
  await cp?.close();
});

/** Requests waiting on `table`'s lock, each holding a pooled connection (pg_locks: see below). */
async function lockWaiters(blocker: pg.Client, table: string): Promise<number> {
  const { rows } = await blocker.query<{ n: number }>(
    `select count(*)::int as n from pg_locks where relation = '${table}'::regclass and not granted`,
  );
  return rows[0]?.n ?? 0;
}

describe('one tenant’s slow reads and the shared pool', () => {
  it('regression: a tenant admin’s slow reads in parallel do not make another tenant’s admin wait for a connection', async () => {
    const blocker = new pg.Client({ connectionString: cp.db.url });
    await blocker.connect();
    try {
      await blocker.query('begin');
      await blocker.query('lock table read_models.audit_log in access exclusive mode');
      let settled = 0;
      const attempts = 3 * POOL_SIZE;
      const reads = Array.from({ length: attempts }, () =>
        cp
          .request('GET', `/api/v1/audit-log?tenant_id=${attackerTenant}`, { token: attacker })
          .finally(() => {
            settled += 1;
          }),
      );
      const lockWaiters = async () => {
        // pg_locks, not pg_stat_activity: the latter is one snapshot for the blocker's whole transaction.
        const { rows } = await blocker.query<{ n: number }>(
          `select count(*)::int as n from pg_locks
            where relation = 'read_models.audit_log'::regclass and not granted`,
        );
        return rows[0]?.n ?? 0;
      };
      // Every attempt is either answered, blocked on the audit log holding a connection, or waiting for one.
      await expect
        .poll(async () => settled + (await lockWaiters()) + cp.pool.waitingCount, { timeout: 10_000 })
        .toBe(attempts);
      expect(cp.pool.waitingCount, 'requests waiting for a pooled connection').toBe(0);
      expect(await lockWaiters()).toBeLessThan(POOL_SIZE);

      const other = await cp.request('GET', `/api/v1/routes?tenant_id=${victimTenant}`, { token: victim });
      expect(other.status).toBe(200);

      await blocker.query('rollback');
      const answers = await Promise.all(reads);
      for (const answer of answers) expect([200, 429]).toContain(answer.status);
      const refused = answers.find((answer) => answer.status === 429);
      expect(json(refused!)['error']).toMatchObject({
        code: 'admin_rate_limited',
        details: [expect.objectContaining({ field: 'user_requests_in_flight' })],
      });
      expect(refused!.headers.get('retry-after')).toBe('1');
    } finally {
      await blocker.end();
    }
  }, 60_000);
});

describe('one tenant’s reads of old configs and the shared pool', () => {
  // Regression: a fold read 8 of the tenant's streams side by side, and a diff folded its two configs
  // side by side, each read on a pooled connection of its own: two diffs of one tenant admin held every
  // connection (16 of them), the in-flight limits counting each request as one.
  it('regression: a config diff holds one pooled connection, so another tenant’s admin is served meanwhile', async () => {
    const origin = await cp.request('POST', '/api/v1/origins', {
      token: attacker,
      body: { tenant_id: attackerTenant, name: 'o', url: 'http://127.0.0.1:9/' },
    });
    const positions: string[] = [];
    for (let index = 0; index < 12; index += 1) {
      const route = await cp.request('POST', '/api/v1/routes', {
        token: attacker,
        body: {
          tenant_id: attackerTenant,
          origin_id: json(origin)['id'],
          path_pattern: `/r${index}/*`,
          auth_mode: 'public',
        },
      });
      expect(route.status, JSON.stringify(route.body)).toBe(201);
      positions.push(route.headers.get('x-event-position') ?? '');
    }
    await cp.readModelsCaughtUp();
    const blocker = new pg.Client({ connectionString: cp.db.url });
    await blocker.connect();
    try {
      // A stand-in for slow reads of the event log.
      await blocker.query('begin');
      await blocker.query('lock table event_store_events in access exclusive mode');
      const diffs = [1, 3].map((from) =>
        cp.request(
          'GET',
          `/api/v1/tenants/${attackerTenant}/config/diff?from=${positions[from]}&to=${positions[from + 8]}`,
          { token: attacker },
        ),
      );
      await expect
        .poll(() => lockWaiters(blocker, 'event_store_events'), { timeout: 10_000 })
        .toBe(IN_FLIGHT);
      // Each diff now waits on the lock holding one connection, no more.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await lockWaiters(blocker, 'event_store_events')).toBe(IN_FLIGHT);
      expect(cp.pool.waitingCount).toBe(0);
      const other = await Promise.race([
        cp.request('GET', `/api/v1/routes?tenant_id=${victimTenant}`, { token: victim }),
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error('no connection for the other tenant')), 5_000),
        ),
      ]);
      expect(other.status).toBe(200);
      await blocker.query('rollback');
      for (const diff of await Promise.all(diffs)) expect(diff.status, JSON.stringify(diff.body)).toBe(200);
    } finally {
      await blocker.end().catch(() => {});
    }
  }, 60_000);
});
