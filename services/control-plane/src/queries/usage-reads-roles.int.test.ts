import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTenantWithViewerAndAdmin,
  expectAdmittedThenRefused,
  readModelLockWaiters,
  sendSlowReads,
  untilReadable,
  withReadModelLocked,
} from '../testing/admin-limits.js';
import { type ControlPlaneHarness, startControlPlane } from '../testing/control-plane-harness.js';
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
  ({ tenantId, viewer, admin } = await createTenantWithViewerAndAdmin(
    cp,
    'Usage Roles',
    `usage-roles-${Date.now()}`,
    'usage_roles',
  ));
  await untilReadable(cp, viewer, tenantId);
  await untilReadable(cp, admin, tenantId);
}, 60_000);

afterAll(async () => {
  await cp?.close();
});

describe('a tenant’s usage reads and its roles', () => {
  it('a viewer holding every usage read it may leaves the admins theirs', async () => {
    const usageRead = (token: string) => () =>
      cp.request('GET', `/api/v1/usage?tenant_id=${tenantId}`, { token });
    await withReadModelLocked(cp, USAGE, async (blocker) => {
      const byViewer = await sendSlowReads(blocker, USAGE, MAX_USAGE_READS_PER_TENANT, usageRead(viewer));
      const byAdmin = await sendSlowReads(
        blocker,
        USAGE,
        1,
        usageRead(admin),
        MAX_USAGE_READS_PER_TENANT - byViewer.answered(),
      );
      expect(byAdmin.answered(), 'the admin’s usage read refused').toBe(0);
      expect(await readModelLockWaiters(blocker, USAGE)).toBe(MAX_USAGE_READS_PER_TENANT);

      await blocker.query('rollback');
      const [adminAnswer] = await Promise.all(byAdmin.requests);
      expect(adminAnswer?.status, JSON.stringify(adminAnswer?.body)).toBe(200);
      expectAdmittedThenRefused(
        await Promise.all(byViewer.requests),
        READERS_USAGE_READS,
        'usage_queries_in_flight',
        `at most ${READERS_USAGE_READS} usage reads of one tenant's read-only callers at once (the rest of the ${MAX_USAGE_READS_PER_TENANT} are for its writers)`,
      );
    });
  }, 90_000);
});
