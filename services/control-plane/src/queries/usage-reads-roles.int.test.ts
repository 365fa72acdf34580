import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  expectAdminRateLimited,
  lockReadModel,
  readModelLockWaiters,
  sendUntilAnsweredOrBlocked,
  untilReadable,
} from '../testing/admin-limits.js';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';
import { MAX_USAGE_READS_PER_TENANT } from './usage.js';

/**
 * Regression test: a tenant's usage reads running at once (MAX_USAGE_READS_PER_TENANT) were one count
 * for every role, so a viewer (or a leaked read-only token) keeping that many slow usage reads running —
 * here waiting on a lock the test holds on `usage_counts`, as a month of a busy tenant's hours does —
 * left the tenant's admins unable to see which key or user is flooding them (429). Callers with read
 * access only now hold at most one fewer.
 */

const USAGE = 'usage_counts';
const READERS_USAGE_READS = MAX_USAGE_READS_PER_TENANT - 1;

let cp: ControlPlaneHarness;
let tenantId: string;
let viewer: string;
let admin: string;

beforeAll(async () => {
  cp = await startControlPlane({
    withReadSide: true,
    poolSize: 12,
    // The reads wait on the test's lock for as long as the test holds it.
    usageQueryTimeoutMs: 60_000,
  });
  const created = await cp.request('POST', '/api/v1/tenants', {
    body: { name: 'Usage Roles', subdomain: `usage-roles-${Date.now()}` },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  tenantId = String(json(created)['id']);
  for (const [user, role] of [
    ['user_usage_roles_viewer', 'viewer'],
    ['user_usage_roles_admin', 'admin'],
  ] as const) {
    const added = await cp.request('POST', '/api/v1/users', {
      body: { tenant_id: tenantId, clerk_user_id: user, email: `${role}@usage-roles.test`, role },
    });
    expect(added.status, JSON.stringify(added.body)).toBe(201);
  }
  viewer = await cp.token({ userId: 'user_usage_roles_viewer' });
  admin = await cp.token({ userId: 'user_usage_roles_admin' });
  await untilReadable(cp, viewer, tenantId);
  await untilReadable(cp, admin, tenantId);
}, 60_000);

afterAll(async () => {
  await cp?.close();
});

describe('a tenant’s usage reads and its roles', () => {
  it('a viewer holding every usage read it may leaves the admins theirs', async () => {
    const blocker = new pg.Client({ connectionString: cp.db.url });
    await blocker.connect();
    const usageRead = (token: string) => () =>
      cp.request('GET', `/api/v1/usage?tenant_id=${tenantId}`, { token });
    try {
      await lockReadModel(blocker, USAGE);
      const byViewer = await sendUntilAnsweredOrBlocked(
        blocker,
        Array.from({ length: MAX_USAGE_READS_PER_TENANT }, () => usageRead(viewer)),
        0,
        USAGE,
      );
      const byAdmin = await sendUntilAnsweredOrBlocked(
        blocker,
        [usageRead(admin)],
        MAX_USAGE_READS_PER_TENANT - byViewer.answered(),
        USAGE,
      );
      expect(byAdmin.answered(), 'the admin’s usage read refused').toBe(0);
      expect(await readModelLockWaiters(blocker, USAGE)).toBe(MAX_USAGE_READS_PER_TENANT);

      await blocker.query('rollback');
      const [adminAnswer] = await Promise.all(byAdmin.requests);
      expect(adminAnswer?.status, JSON.stringify(adminAnswer?.body)).toBe(200);
      const viewerAnswers = await Promise.all(byViewer.requests);
      expect(viewerAnswers.filter((answer) => answer.status === 200)).toHaveLength(READERS_USAGE_READS);
      for (const refused of viewerAnswers.filter((answer) => answer.status !== 200)) {
        expectAdminRateLimited(
          refused,
          'usage_queries_in_flight',
          `at most ${READERS_USAGE_READS} usage reads of one tenant's read-only callers at once (the rest of the ${MAX_USAGE_READS_PER_TENANT} are for its writers)`,
        );
      }
    } finally {
      await blocker.end();
    }
  }, 90_000);
});
