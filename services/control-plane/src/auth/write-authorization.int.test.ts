import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ControlPlaneHarness,
  json,
  PLATFORM_ADMIN,
  startControlPlane,
} from '../testing/control-plane-harness.js';
import { holdTenantLock } from '../testing/tenant-lock.js';

/**
 * Who may change what on a tenant, decided by the command side. Each block is a regression test for
 * a defect that let a caller do more than the policy allows.
 */

let cp: ControlPlaneHarness;

beforeAll(async () => {
  cp = await startControlPlane();
});
afterAll(async () => {
  await cp?.close();
});

async function created(path: string, body: unknown, token?: string): Promise<string> {
  const response = await cp.request('POST', path, { body, ...(token ? { token } : {}) });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return json(response)['id'] as string;
}

async function tenantWithOwners(subdomain: string) {
  const tenantId = await created('/api/v1/tenants', {
    name: subdomain,
    subdomain,
    clerk_org_id: `org_${subdomain.replaceAll('-', '_')}`,
  });
  const user = (clerkUserId: string, role: string) =>
    created('/api/v1/users', {
      tenant_id: tenantId,
      clerk_user_id: clerkUserId,
      email: `${clerkUserId}@example.com`,
      role,
    });
  const ids = {
    owner1: await user(`user_${subdomain.replaceAll('-', '_')}_o1`, 'owner'),
    owner2: await user(`user_${subdomain.replaceAll('-', '_')}_o2`, 'owner'),
    admin: await user(`user_${subdomain.replaceAll('-', '_')}_admin`, 'admin'),
    member: await user(`user_${subdomain.replaceAll('-', '_')}_member`, 'member'),
  };
  const prefix = `user_${subdomain.replaceAll('-', '_')}`;
  return { tenantId, ids, prefix, orgId: `org_${subdomain.replaceAll('-', '_')}` };
}

describe('only owners and platform admins manage owners', () => {
  // Regression test: a tenant admin (or an org admin of the tenant's Clerk org) could grant `owner`
  // and demote or remove the tenant's owners, taking the tenant over.
  it('a tenant admin and an org admin get 403 on every owner change, and nothing is appended', async () => {
    const { tenantId, ids, prefix, orgId } = await tenantWithOwners('own-guard');
    const tenantAdmin = await cp.token({ userId: `${prefix}_admin` });
    const orgAdmin = await cp.token({ userId: 'user_org_admin_not_listed', orgId, orgRole: 'admin' });
    for (const token of [tenantAdmin, orgAdmin]) {
      const before = (await cp.allEvents()).length;
      const attempts: Array<[string, string, unknown]> = [
        [
          'POST',
          '/api/v1/users',
          { tenant_id: tenantId, clerk_user_id: 'user_new_owner', email: 'n@example.com', role: 'owner' },
        ],
        ['PATCH', `/api/v1/users/${ids.member}`, { role: 'owner' }],
        ['PATCH', `/api/v1/users/${ids.owner1}`, { role: 'viewer' }],
        ['DELETE', `/api/v1/users/${ids.owner2}`, undefined],
      ];
      for (const [method, path, body] of attempts) {
        const response = await cp.request(method, path, { token, ...(body ? { body } : {}) });
        expect(response.status, `${method} ${path}`).toBe(403);
        expect(json(response)).toMatchObject({ error: { code: 'forbidden' } });
      }
      expect((await cp.allEvents()).length).toBe(before);
    }
  });

  it('a tenant admin still manages admins, members and viewers', async () => {
    const { tenantId, ids, prefix } = await tenantWithOwners('own-admin-ok');
    const tenantAdmin = await cp.token({ userId: `${prefix}_admin` });
    const viewer = await created(
      '/api/v1/users',
      { tenant_id: tenantId, clerk_user_id: 'user_fresh_viewer', email: 'v@example.com', role: 'viewer' },
      tenantAdmin,
    );
    const promote = await cp.request('PATCH', `/api/v1/users/${ids.member}`, {
      token: tenantAdmin,
      body: { role: 'admin' },
    });
    expect(promote.status).toBe(200);
    expect((await cp.request('DELETE', `/api/v1/users/${viewer}`, { token: tenantAdmin })).status).toBe(204);
  });

  it('an owner grants, demotes and removes owners; the last owner is still kept', async () => {
    const { tenantId, ids, prefix } = await tenantWithOwners('own-owner-ok');
    const owner = await cp.token({ userId: `${prefix}_o1` });
    const third = await created(
      '/api/v1/users',
      { tenant_id: tenantId, clerk_user_id: 'user_third_owner', email: 't@example.com', role: 'owner' },
      owner,
    );
    const demote = await cp.request('PATCH', `/api/v1/users/${ids.owner2}`, {
      token: owner,
      body: { role: 'admin' },
    });
    expect(demote.status).toBe(200);
    expect((await cp.request('DELETE', `/api/v1/users/${third}`, { token: owner })).status).toBe(204);
    // owner1 is now the only owner: not even a platform admin may demote it.
    const last = await cp.request('PATCH', `/api/v1/users/${ids.owner1}`, { body: { role: 'admin' } });
    expect(last.status).toBe(409);
  });
});

describe('Idempotency-Key replays re-check access', () => {
  // Regression test: a retry with the same Idempotency-Key returned the stored first answer — here a
  // freshly issued API key's plaintext — without checking that the caller may still act on the tenant.
  it('a removed admin retrying an API-key issue gets 403, not the stored plaintext', async () => {
    const tenantId = await created('/api/v1/tenants', { name: 'idem-authz', subdomain: 'idem-authz' });
    const adminUserId = await created('/api/v1/users', {
      tenant_id: tenantId,
      clerk_user_id: 'user_idem_admin',
      email: 'ia@example.com',
      role: 'admin',
    });
    const admin = await cp.token({ userId: 'user_idem_admin' });
    const request = {
      token: admin,
      body: { tenant_id: tenantId, name: 'ci' },
      headers: { 'Idempotency-Key': 'issue-then-removed' },
    };
    const first = await cp.request('POST', '/api/v1/api-keys', request);
    expect(first.status).toBe(201);
    const plaintext = json(first)['key'] as string;

    expect((await cp.request('DELETE', `/api/v1/users/${adminUserId}`)).status).toBe(204);
    const retry = await cp.request('POST', '/api/v1/api-keys', request);
    expect(retry.status).toBe(403);
    expect(retry.headers.get('idempotent-replayed')).toBeNull();
    expect(JSON.stringify(retry.body)).not.toContain(plaintext);
  });

  it('the stored answer is replayed to the same caller only', async () => {
    const tenantId = await created('/api/v1/tenants', { name: 'idem-caller', subdomain: 'idem-caller' });
    for (const clerkUserId of ['user_idem_a', 'user_idem_b']) {
      await created('/api/v1/users', {
        tenant_id: tenantId,
        clerk_user_id: clerkUserId,
        email: `${clerkUserId}@example.com`,
        role: 'admin',
      });
    }
    const body = { tenant_id: tenantId, name: 'shared-key-name' };
    const headers = { 'Idempotency-Key': 'same-key-two-callers' };
    const a = await cp.request('POST', '/api/v1/api-keys', {
      token: await cp.token({ userId: 'user_idem_a' }),
      body,
      headers,
    });
    const b = await cp.request('POST', '/api/v1/api-keys', {
      token: await cp.token({ userId: 'user_idem_b' }),
      body,
      headers,
    });
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(b.headers.get('idempotent-replayed')).toBeNull();
    expect(json(b)['key']).not.toBe(json(a)['key']);
  });
});

describe('write authorization does not trust lagging read models', () => {
  let full: ControlPlaneHarness;
  beforeAll(async () => {
    full = await startControlPlane({ withReadSide: true });
  });
  afterAll(async () => {
    await full?.close();
  });

  // Regression test: commands were authorized from the read models, so an admin removed from the
  // tenant kept writing for as long as the projector had not applied the removal.
  it('a removed admin cannot write while the projector is behind', async () => {
    const tenant = await full.request('POST', '/api/v1/tenants', {
      body: { name: 'lag', subdomain: 'lag' },
    });
    const tenantId = json(tenant)['id'] as string;
    const added = await full.request('POST', '/api/v1/users', {
      body: { tenant_id: tenantId, clerk_user_id: 'user_lag_admin', email: 'l@example.com', role: 'admin' },
    });
    expect(added.status).toBe(201);
    const admin = await full.token({ userId: 'user_lag_admin' });
    // The read models know the admin (read your write), then the projector stops.
    const seen = await full.request('GET', `/api/v1/users/${json(added)['id']}`, {
      headers: { 'X-Min-Position': added.headers.get('x-event-position') ?? '' },
    });
    expect(seen.status).toBe(200);
    const origin = { tenant_id: tenantId, name: 'o', url: 'https://o.example.com' };
    expect((await full.request('POST', '/api/v1/origins', { token: admin, body: origin })).status).toBe(201);
    await full.projector?.stop();

    const removed = await full.request('DELETE', `/api/v1/users/${json(added)['id']}`);
    expect(removed.status).toBe(204);
    const before = (await full.allEvents()).length;
    const attempt = await full.request('POST', '/api/v1/origins', { token: admin, body: origin });
    // No longer anyone of the tenant: it answers as a tenant that does not exist.
    expect(attempt.status).toBe(404);
    expect(json(attempt)).toMatchObject({ error: { code: 'not_found' } });
    expect((await full.allEvents()).length).toBe(before);
    // A platform admin is unaffected.
    const byAdmin = await full.request('POST', '/api/v1/origins', {
      token: await full.token({ userId: PLATFORM_ADMIN }),
      body: origin,
    });
    expect(byAdmin.status).toBe(201);
  });
});

describe('If-Match is weighed after access', () => {
  // Regression test: a stale If-Match was compared before the caller's access, so another tenant's
  // admin (or a reader) got 412 naming the resource's current revision instead of 404 (403): how often
  // another tenant changed its routes, keys, users or itself, read by id.
  it("another tenant's admin gets 404 and a reader 403, without the revision, and nothing is appended", async () => {
    const alpha = await created('/api/v1/tenants', { name: 'im-alpha', subdomain: 'im-alpha' });
    const bravo = await created('/api/v1/tenants', { name: 'im-bravo', subdomain: 'im-bravo' });
    const originId = await created('/api/v1/origins', {
      tenant_id: alpha,
      name: 'o',
      url: 'https://o.example.com',
    });
    const routeId = await created('/api/v1/routes', {
      tenant_id: alpha,
      origin_id: originId,
      path_pattern: '/im/*',
      auth_mode: 'public',
    });
    const keyId = await created('/api/v1/api-keys', { tenant_id: alpha, name: 'k' });
    const userId = await created('/api/v1/users', {
      tenant_id: alpha,
      clerk_user_id: 'user_im_alpha_member',
      email: 'm@example.com',
      role: 'member',
    });
    await created('/api/v1/users', {
      tenant_id: bravo,
      clerk_user_id: 'user_im_bravo_admin',
      email: 'b@example.com',
      role: 'admin',
    });
    const bravoAdmin = await cp.token({ userId: 'user_im_bravo_admin' });
    const alphaReader = await cp.token({ userId: 'user_im_alpha_member' });
    const attempts: Array<[string, string, unknown]> = [
      ['PATCH', `/api/v1/tenants/${alpha}`, { name: 'taken over' }],
      ['PATCH', `/api/v1/routes/${routeId}`, { priority: 5 }],
      ['DELETE', `/api/v1/origins/${originId}`, undefined],
      ['POST', `/api/v1/api-keys/${keyId}/revoke`, {}],
      ['POST', `/api/v1/api-keys/${keyId}/rotate`, {}],
      ['PATCH', `/api/v1/users/${userId}`, { role: 'viewer' }],
      ['DELETE', `/api/v1/tenants/${alpha}/domains/im-alpha.example.com`, undefined],
    ];
    const before = (await cp.allEvents()).length;
    const refusals = [
      { token: bravoAdmin, status: 404, code: 'not_found' },
      { token: alphaReader, status: 403, code: 'forbidden' },
    ];
    for (const { token, status, code } of refusals) {
      for (const [method, path, body] of attempts) {
        const response = await cp.request(method, path, {
          token,
          headers: { 'If-Match': '"999"' },
          ...(body ? { body } : {}),
        });
        expect(response.status, `${method} ${path}: ${JSON.stringify(response.body)}`).toBe(status);
        expect(json(response)).toMatchObject({ error: { code } });
        expect(JSON.stringify(response.body)).not.toMatch(/revision|"\d+"/);
      }
    }
    expect((await cp.allEvents()).length).toBe(before);
  });

  // Regression test: a rotation with a stale If-Match issued the replacement key before comparing
  // it, then revoked it again: a 412 that appended two events (and spent a key of the tenant's limit).
  it('a rotation with a stale If-Match is 412 and appends nothing', async () => {
    const tenantId = await created('/api/v1/tenants', { name: 'im-rotate', subdomain: 'im-rotate' });
    const keyId = await created('/api/v1/api-keys', { tenant_id: tenantId, name: 'k' });
    const before = (await cp.allEvents()).length;
    const stale = await cp.request('POST', `/api/v1/api-keys/${keyId}/rotate`, {
      body: {},
      headers: { 'If-Match': '"999"' },
    });
    expect(stale.status).toBe(412);
    expect((await cp.allEvents()).length).toBe(before);
  });
});

describe("a create waiting for the tenant's lock is authorized as the lock is taken", () => {
  // Regression test: creates checked the caller's access before they waited for the tenant's lock
  // (held by a config apply for up to 30 s), never after: an admin removed meanwhile still got an API
  // key issued, or added a user of their own as admin, once the lock was free.
  const creates = [
    {
      what: 'an API key',
      path: '/api/v1/api-keys',
      body: (tenantId: string) => ({ tenant_id: tenantId, name: 'late' }),
    },
    {
      what: 'an admin of their own',
      path: '/api/v1/users',
      body: (tenantId: string) => ({
        tenant_id: tenantId,
        clerk_user_id: 'user_lock_backdoor',
        email: 'b@example.com',
        role: 'admin',
      }),
    },
    {
      what: 'an origin by a config apply',
      path: '',
      body: () => ({
        tenant: { name: 'lock-removed-2', subdomain: 'lock-removed-2' },
        origins: [{ name: 'late', url: 'http://127.0.0.1:9/' }],
        routes: [],
      }),
    },
  ];
  for (const [index, { what, path: createPath, body }] of creates.entries()) {
    it(`an admin removed while their create of ${what} waits for the lock gets 404 and nothing is added`, async () => {
      const subdomain = `lock-removed-${index}`;
      const tenantId = await created('/api/v1/tenants', { name: subdomain, subdomain });
      const clerkUserId = `user_lock_removed_${index}`;
      const memberId = await created('/api/v1/users', {
        tenant_id: tenantId,
        clerk_user_id: clerkUserId,
        email: `${clerkUserId}@example.com`,
        role: 'admin',
      });
      const admin = await cp.token({ userId: clerkUserId });
      const lock = await holdTenantLock(cp.db.pool, tenantId);
      let answer: Awaited<ReturnType<typeof cp.request>>;
      let appended: number;
      try {
        const path = createPath || `/api/v1/tenants/${tenantId}/config/apply`;
        const pending = cp.request('POST', path, { token: admin, body: body(tenantId) });
        await lock.waitedFor();
        expect((await cp.request('DELETE', `/api/v1/users/${memberId}`)).status).toBe(204);
        const before = (await cp.allEvents()).length;
        await lock.release();
        answer = await pending;
        appended = (await cp.allEvents()).length - before;
      } finally {
        await lock.release().catch(() => {});
      }
      expect(answer.status, JSON.stringify(answer.body)).toBe(404);
      expect(json(answer)).toMatchObject({ error: { code: 'not_found' } });
      expect(appended).toBe(0);
    });
  }

  it('an admin demoted to viewer while their API-key issue waits for the lock gets 403, and no key', async () => {
    const tenantId = await created('/api/v1/tenants', { name: 'lock-demoted', subdomain: 'lock-demoted' });
    const memberId = await created('/api/v1/users', {
      tenant_id: tenantId,
      clerk_user_id: 'user_lock_demoted',
      email: 'd@example.com',
      role: 'admin',
    });
    const admin = await cp.token({ userId: 'user_lock_demoted' });
    const lock = await holdTenantLock(cp.db.pool, tenantId);
    let answer: Awaited<ReturnType<typeof cp.request>>;
    try {
      const pending = cp.request('POST', '/api/v1/api-keys', {
        token: admin,
        body: { tenant_id: tenantId, name: 'late' },
      });
      await lock.waitedFor();
      const demoted = await cp.request('PATCH', `/api/v1/users/${memberId}`, { body: { role: 'viewer' } });
      expect(demoted.status).toBe(200);
      await lock.release();
      answer = await pending;
    } finally {
      await lock.release().catch(() => {});
    }
    expect(answer.status, JSON.stringify(answer.body)).toBe(403);
    expect(json(answer)).toMatchObject({ error: { code: 'forbidden' } });
    expect(JSON.stringify(answer.body)).not.toContain('ve_live_');
  });
});
