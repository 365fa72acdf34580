import { randomUUID } from 'node:crypto';
import { reservation, streamName, type UserRole } from '@vantageedge/shared/domain/events';
import { tenantSettings } from '@vantageedge/shared/domain/gateway-config';
import type { EventMetadata } from '@vantageedge/shared/event-store/port';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * Logs written before users moved into their tenant's stream keep each user in a `user-<id>` stream.
 * Such a log is written here exactly as the control plane used to write it; the admin API must keep
 * authorizing those users, count them for the last-owner rule, and project them as before.
 */

let cp: ControlPlaneHarness;
const tenantId = randomUUID();
const legacy = { owner1: randomUUID(), owner2: randomUUID(), admin: randomUUID(), viewer: randomUUID() };

const meta = (): EventMetadata => ({
  actor: 'user_platformadmin',
  tenant_id: tenantId,
  correlation_id: randomUUID(),
  causation_id: null,
  occurred_at: new Date().toISOString(),
  schema_version: 1,
});

async function legacyUser(userId: string, clerkUserId: string, role: UserRole): Promise<void> {
  await cp.store.appendToStream(
    streamName.user(userId),
    [
      {
        type: 'UserCreated',
        data: {
          user_id: userId,
          tenant_id: tenantId,
          clerk_user_id: clerkUserId,
          email: `${clerkUserId}@x.io`,
          role,
        },
        metadata: meta(),
      },
    ],
    {
      expectedRevision: 'no_stream',
      reservations: { claim: [reservation.tenantUser(tenantId, clerkUserId)] },
    },
  );
}

beforeAll(async () => {
  cp = await startControlPlane({ withReadSide: true });
  await cp.store.appendToStream(
    streamName.tenant(tenantId),
    [
      {
        type: 'TenantCreated',
        data: {
          tenant_id: tenantId,
          name: 'old',
          subdomain: 'old-layout',
          clerk_org_id: 'org_old',
          settings: tenantSettings.parse({}),
        },
        metadata: meta(),
      },
    ],
    { expectedRevision: 'no_stream', reservations: { claim: ['subdomain:old-layout', 'clerk_org:org_old'] } },
  );
  await legacyUser(legacy.owner1, 'user_old_owner1', 'owner');
  await legacyUser(legacy.owner2, 'user_old_owner2', 'owner');
  await legacyUser(legacy.admin, 'user_old_admin', 'admin');
  await legacyUser(legacy.viewer, 'user_old_viewer', 'viewer');
});
afterAll(async () => {
  await cp?.close();
});

describe('users recorded in their own streams (older logs)', () => {
  it('keep their access: an older admin writes, an older viewer only reads, neither manages owners', async () => {
    const admin = await cp.token({ userId: 'user_old_admin' });
    const viewer = await cp.token({ userId: 'user_old_viewer' });
    const origin = { tenant_id: tenantId, name: 'o', url: 'https://o.example.com' };
    expect((await cp.request('POST', '/api/v1/origins', { token: admin, body: origin })).status).toBe(201);
    expect((await cp.request('POST', '/api/v1/origins', { token: viewer, body: origin })).status).toBe(403);
    const demote = await cp.request('PATCH', `/api/v1/users/${legacy.owner1}`, {
      token: admin,
      body: { role: 'viewer' },
    });
    expect(demote.status).toBe(403);
  });

  it('count for the last-owner rule, and change in the tenant stream from then on', async () => {
    const owner2 = await cp.token({ userId: 'user_old_owner2' });
    const demoted = await cp.request('PATCH', `/api/v1/users/${legacy.owner1}`, {
      token: owner2,
      body: { role: 'admin' },
    });
    expect(demoted.status).toBe(200);
    expect(json(demoted)).toMatchObject({
      id: legacy.owner1,
      role: 'admin',
      clerk_user_id: 'user_old_owner1',
    });
    const events = await cp.store.readStream(streamName.tenant(tenantId));
    expect(events.map((event) => event.type)).toEqual(['TenantCreated', 'UserRoleChanged']);
    expect(demoted.headers.get('etag')).toBe('"1"');
    // owner2 is the last owner now.
    const last = await cp.request('DELETE', `/api/v1/users/${legacy.owner2}`);
    expect(last.status).toBe(409);

    // The read models fold the change over the older user, with the same ETag the command answered.
    const read = await cp.request('GET', `/api/v1/users/${legacy.owner1}`, {
      headers: { 'X-Min-Position': demoted.headers.get('x-event-position') ?? '' },
    });
    expect(read.status).toBe(200);
    expect(read.body).toEqual(demoted.body);
    expect(read.headers.get('etag')).toBe('"1"');
  });

  it('can be removed and the same Clerk user added again; the audit log names the user either way', async () => {
    const removed = await cp.request('DELETE', `/api/v1/users/${legacy.viewer}`);
    expect(removed.status).toBe(204);
    const again = await cp.request('POST', '/api/v1/users', {
      body: { tenant_id: tenantId, clerk_user_id: 'user_old_viewer', email: 'v@x.io', role: 'member' },
    });
    expect(again.status).toBe(201);
    const position = again.headers.get('x-event-position') ?? '';
    const users = await cp.request('GET', `/api/v1/users?tenant_id=${tenantId}`, {
      headers: { 'X-Min-Position': position },
    });
    const rows = (json(users)['data'] as Array<{ clerk_user_id: string; role: string }>).map((u) => [
      u.clerk_user_id,
      u.role,
    ]);
    expect(rows).toEqual([
      ['user_old_owner1', 'admin'],
      ['user_old_owner2', 'owner'],
      ['user_old_admin', 'admin'],
      ['user_old_viewer', 'member'],
    ]);
    const audit = await cp.request(
      'GET',
      `/api/v1/audit-log?resource_type=user&resource_id=${legacy.viewer}`,
      {
        headers: { 'X-Min-Position': position },
      },
    );
    expect(
      (json(audit)['data'] as Array<{ event_type: string; stream: string }>).map((e) => e.event_type),
    ).toEqual(['UserDeleted', 'UserCreated']);
  });
});
