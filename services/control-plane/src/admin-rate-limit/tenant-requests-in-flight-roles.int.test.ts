import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addTenantUser,
  createTenantWithViewerAndAdmin,
  expectAdmittedThenRefused,
  readModelLockWaiters,
  sendSlowReads,
  untilReadable,
  withReadModelLocked,
} from '../testing/admin-limits.js';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * Regression test: a tenant's requests in flight (CONTROL_PLANE_TENANT_REQUESTS_IN_FLIGHT) were one count
 * for every role, and a caller may have as many requests in flight as a tenant has places. So one
 * viewer (or a leaked read-only token) holding that many slow reads — here listings of the tenant's
 * custom domains, waiting on a lock the test holds — left the tenant's admins and the platform admins
 * unable to revoke a key, purge the cache or roll back (429) for as long as the reads ran. Callers with
 * read access only now hold at most the places left once the writers' quarter is kept.
 */

const IN_FLIGHT = 8;
const READERS_IN_FLIGHT = IN_FLIGHT - IN_FLIGHT / 4;
const DOMAINS = 'read_models.custom_domains';
const noPurge = async () => {};

let cp: ControlPlaneHarness;
let tenantId: string;
let viewer: string;
let admin: string;
let keyId: string;
let beforeOrigin: string;

const listDomains = (token: string) => () =>
  cp.request('GET', `/api/v1/tenants/${tenantId}/domains`, { token });

beforeAll(async () => {
  cp = await startControlPlane({
    withReadSide: true,
    poolSize: 16,
    userRequestsInFlight: IN_FLIGHT,
    tenantRequestsInFlight: IN_FLIGHT,
    // The reads wait on the test's lock for as long as the test holds it.
    readStatementTimeoutMs: 60_000,
    cachePurger: { purgeRoute: noPurge, purgeTenant: noPurge, purgeTags: noPurge },
  });
  ({ tenantId, viewer, admin } = await createTenantWithViewerAndAdmin(
    cp,
    'Roles In Flight',
    `roles-in-flight-${Date.now()}`,
    'roles_inflight',
  ));
  const key = await cp.request('POST', '/api/v1/api-keys', {
    token: admin,
    body: { tenant_id: tenantId, name: 'leaked' },
  });
  expect(key.status, JSON.stringify(key.body)).toBe(201);
  keyId = String(json(key)['id']);
  beforeOrigin = key.headers.get('x-event-position') ?? '';
  const origin = await cp.request('POST', '/api/v1/origins', {
    token: admin,
    body: { tenant_id: tenantId, name: 'bad-deploy', url: 'https://bad.example.com' },
  });
  expect(origin.status, JSON.stringify(origin.body)).toBe(201);
  await untilReadable(cp, viewer, tenantId);
}, 60_000);

afterAll(async () => {
  await cp?.close();
});

describe('a tenant’s requests in flight and its roles', () => {
  it('a viewer holding every slow read it may leave the writers their places: revoke, purge and rollback run', async () => {
    await withReadModelLocked(cp, DOMAINS, async (blocker) => {
      const sent = await sendSlowReads(blocker, DOMAINS, IN_FLIGHT, listDomains(viewer));

      const revoked = await cp.request('DELETE', `/api/v1/api-keys/${keyId}`, { token: admin });
      expect(revoked.status, JSON.stringify(revoked.body)).toBe(204);
      const purged = await cp.request('POST', `/api/v1/tenants/${tenantId}/cache/purge`, { token: admin });
      expect(purged.status, JSON.stringify(purged.body)).toBe(200);
      const rolledBack = await cp.request('POST', `/api/v1/tenants/${tenantId}/config/rollback`, {
        token: admin,
        body: { to_position: beforeOrigin },
      });
      expect(rolledBack.status, JSON.stringify(rolledBack.body)).toBe(200);
      const renamed = await cp.request('PATCH', `/api/v1/tenants/${tenantId}`, { body: { name: 'Held' } });
      expect(renamed.status, JSON.stringify(renamed.body)).toBe(200);
      expect(await readModelLockWaiters(blocker, DOMAINS), 'the viewer’s reads running').toBe(
        READERS_IN_FLIGHT,
      );

      // The writers' own slow reads may take the places the viewer could not, and no more.
      const { requests: adminReads } = await sendSlowReads(
        blocker,
        DOMAINS,
        IN_FLIGHT - READERS_IN_FLIGHT + 1,
        listDomains(admin),
        READERS_IN_FLIGHT,
      );
      expect(await readModelLockWaiters(blocker, DOMAINS)).toBe(IN_FLIGHT);

      await blocker.query('rollback');
      expectAdmittedThenRefused(
        await Promise.all(sent.requests),
        READERS_IN_FLIGHT,
        'tenant_requests_in_flight',
        `at most ${READERS_IN_FLIGHT} requests of read-only callers on one tenant at once (the rest of CONTROL_PLANE_TENANT_REQUESTS_IN_FLIGHT is for its writers)`,
      );
      expectAdmittedThenRefused(
        await Promise.all(adminReads),
        IN_FLIGHT - READERS_IN_FLIGHT,
        'tenant_requests_in_flight',
        `at most ${IN_FLIGHT} requests on one tenant at once (CONTROL_PLANE_TENANT_REQUESTS_IN_FLIGHT)`,
      );
    });
  }, 90_000);

  it('a listing of the tenants a caller writes takes no place of one it only reads: its audit log is answered', async () => {
    // An admin of another tenant, a viewer of this one: its audit log lists the other tenant's entries.
    const other = await cp.request('POST', '/api/v1/tenants', {
      body: { name: 'Roles Other', subdomain: `roles-other-${Date.now()}` },
    });
    expect(other.status, JSON.stringify(other.body)).toBe(201);
    const otherId = String(json(other)['id']);
    await addTenantUser(cp, otherId, 'user_roles_inflight_both', 'admin');
    await addTenantUser(cp, tenantId, 'user_roles_inflight_both', 'viewer');
    const both = await cp.token({ userId: 'user_roles_inflight_both' });
    await untilReadable(cp, both, tenantId);
    await untilReadable(cp, both, otherId);

    await withReadModelLocked(cp, DOMAINS, async (blocker) => {
      const sent = await sendSlowReads(blocker, DOMAINS, READERS_IN_FLIGHT, listDomains(viewer));

      const log = await cp.request('GET', '/api/v1/audit-log', { token: both });
      expect(log.status, JSON.stringify(log.body)).toBe(200);
      const tenants = new Set((json(log)['data'] as Array<{ tenant_id: string }>).map((e) => e.tenant_id));
      expect([...tenants]).toEqual([otherId]);

      await blocker.query('rollback');
      for (const answer of await Promise.all(sent.requests)) expect(answer.status).toBe(200);
    });
  }, 90_000);
});
