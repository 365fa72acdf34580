import type { EventStore } from '@vantageedge/shared/event-store/port';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * What a config apply reads of its tenant's stream: every step checks access (the caller's role among
 * the tenant's members), that the tenant is live and a route's hosts against the tenant's, twice (the
 * rehearsal, then the real run). Re-reading and re-folding the whole stream for each check made an
 * apply of n routes over a tenant of m members read about 6·n·m events on the thread every admin
 * request shares.
 */

const MEMBERS = 100;
const ROUTES = 200;
const OWNER = 'user_apply_folds_owner';

let h: ControlPlaneHarness;
let tenantId: string;
let ownerToken: string;
/** Events of the tenant's stream handed out by the app's store while `counting`. */
let tenantEventsRead = 0;
let counting = false;

function countingTenantReads(store: EventStore): EventStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property !== 'readStream') return Reflect.get(target, property, receiver);
      return async (stream: string, options?: Parameters<EventStore['readStream']>[1]) => {
        const events = await target.readStream(stream, options);
        if (counting && stream === `tenant-${tenantId}`) tenantEventsRead += events.length;
        return events;
      };
    },
  });
}

const tenantStreamLength = async () => (await h.store.readStream(`tenant-${tenantId}`)).length;

function documentOf(routes: number, member?: string) {
  return {
    tenant: { name: 'Folds', subdomain: 'apply-folds' },
    origins: [{ name: 'api', url: 'http://127.0.0.1:9/' }],
    routes: Array.from({ length: routes }, (_, index) => ({
      origin: 'api',
      path_pattern: `/r${index}${member ?? ''}/*`,
      auth_mode: 'public',
      match: { hosts: ['apply-folds.vantageedge.dev'] },
    })),
  };
}

beforeAll(async () => {
  h = await startControlPlane({ wrapStore: countingTenantReads });
  tenantId = json(
    await h.request('POST', '/api/v1/tenants', { body: { name: 'Folds', subdomain: 'apply-folds' } }),
  )['id'] as string;
  const member = (clerkUserId: string, role: string) =>
    h.request('POST', '/api/v1/users', {
      body: { tenant_id: tenantId, clerk_user_id: clerkUserId, email: `${clerkUserId}@example.com`, role },
    });
  expect((await member(OWNER, 'owner')).status).toBe(201);
  for (let n = 1; n < MEMBERS; n++)
    expect((await member(`user_apply_folds_${n}`, 'member')).status).toBe(201);
  ownerToken = await h.token({ userId: OWNER });
}, 120_000);

afterAll(async () => {
  await h?.close();
});

describe('a config apply over a tenant stream of many members', () => {
  it(`reads the tenant's stream a bounded number of times, not once per check of each of ${ROUTES} steps`, async () => {
    const streamLength = await tenantStreamLength();
    expect(streamLength).toBeGreaterThan(MEMBERS);
    tenantEventsRead = 0;
    counting = true;
    const applied = await h.request('POST', `/api/v1/tenants/${tenantId}/config/apply`, {
      token: ownerToken,
      body: documentOf(ROUTES),
    });
    counting = false;
    expect(applied.status, JSON.stringify(applied.body)).toBe(200);
    expect(json(applied)['changes']).toHaveLength(ROUTES + 1);
    // A few whole reads (the apply's own checks, the rehearsal's and the real run's first steps), then
    // only what was appended since: nothing that grows with the steps times the stream.
    expect(tenantEventsRead).toBeLessThanOrEqual(12 * streamLength);
  }, 120_000);

  it('sees a member removed during the apply: the steps after it are refused', async () => {
    const removed = `user_apply_folds_late_owner`;
    const added = await h.request('POST', '/api/v1/users', {
      body: { tenant_id: tenantId, clerk_user_id: removed, email: 'late@example.com', role: 'owner' },
    });
    expect(added.status).toBe(201);
    const userId = json(added)['id'] as string;
    const token = await h.token({ userId: removed });
    const apply = h.request('POST', `/api/v1/tenants/${tenantId}/config/apply`, {
      token,
      body: documentOf(ROUTES, '-late'),
    });
    // Members are changed without the config lock: the apply's steps must not keep an older role.
    const deleted = await h.request('DELETE', `/api/v1/users/${userId}`);
    expect(deleted.status).toBeLessThan(300);
    const answer = await apply;
    // Removed before its access was checked (or a step's): the tenant is no longer one it sees.
    expect([200, 404], JSON.stringify(answer.body)).toContain(answer.status);
    const events = await h.allEvents();
    const removal = events.find(
      (event) => event.type === 'UserDeleted' && (event.data as { user_id: string }).user_id === userId,
    );
    expect(removal).toBeDefined();
    // Only the one step already past its check when the removal landed may follow it.
    const after = events.filter(
      (event) => event.metadata.actor === removed && event.position > (removal?.position ?? 0n),
    );
    expect(after.length).toBeLessThanOrEqual(1);
  }, 120_000);
});
