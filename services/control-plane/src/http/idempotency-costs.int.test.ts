import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConfigReadBudget, useConfigReadBudget } from '../config-history/config-read-budget.js';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * What an `Idempotency-Key` costs the shared control plane. A config plan and a rollback's dry run
 * append nothing, so they keep no answer: their answers list every change with the resource before and
 * after (a tenant's whole config when a document removes it all), and they are charged only to the
 * tenant's config read budget, not to its commands or event bytes — kept for 24 hours per key, they grew
 * the shared PostgreSQL by up to that budget (512 MiB a minute per replica) for as long as a tenant
 * admin sent plans under new keys. And a replayed answer, which costs the control plane's one thread
 * what reading that much config does, is paid from the tenant's config read budget like such a read.
 */

let h: ControlPlaneHarness;
let tenantId: string;
let admin: string;
let otherTenantId: string;
/** The position at which the tenant had its three routes. */
let withRoutes: string;

const ORG = 'org_idempotent_previews';
const ADMIN = 'user_idempotent_previews_admin';
const base = () => `/api/v1/tenants/${tenantId}/config`;
const head = async () => (await h.store.headPosition()).toString();

/** The answers kept for the tenant admin's Idempotency-Keys. */
async function keptAnswers(): Promise<number> {
  const { rows } = await h.db.pool.query<{ kept: number }>(
    'select count(*)::int as kept from control_plane_idempotency_keys where caller = $1',
    [ADMIN],
  );
  return rows[0]?.kept ?? 0;
}

/** A document of the tenant with its one origin and no routes: a plan removing every route. */
const withoutRoutes = {
  tenant: { name: 'Previews', subdomain: 'idempotent-previews' },
  origins: [{ name: 'api', url: 'http://127.0.0.1:9/' }],
  routes: [],
};

beforeAll(async () => {
  h = await startControlPlane({ withReadSide: true });
  tenantId = json(
    await h.request('POST', '/api/v1/tenants', {
      body: { name: 'Previews', subdomain: 'idempotent-previews', clerk_org_id: ORG },
    }),
  )['id'] as string;
  const originId = json(
    await h.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'api', url: 'http://127.0.0.1:9/' },
    }),
  )['id'] as string;
  for (const path of ['/a/*', '/b/*', '/c/*']) {
    const route = await h.request('POST', '/api/v1/routes', {
      body: { tenant_id: tenantId, origin_id: originId, path_pattern: path, auth_mode: 'public' },
    });
    expect(route.status).toBe(201);
  }
  withRoutes = await head();
  otherTenantId = json(
    await h.request('POST', '/api/v1/tenants', {
      body: { name: 'Other', subdomain: 'idempotent-previews-other' },
    }),
  )['id'] as string;
  admin = await h.token({ userId: ADMIN, orgId: ORG, orgRole: 'admin' });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('Idempotency-Key on requests that append nothing', () => {
  it('a config plan keeps no answer, however many keys it is sent under', async () => {
    for (let i = 0; i < 5; i++) {
      const plan = await h.request('POST', `${base()}/plan`, {
        token: admin,
        body: withoutRoutes,
        headers: { 'idempotency-key': `plan-${i}` },
      });
      expect(plan.status, JSON.stringify(plan.body)).toBe(200);
      expect(json(plan)['changes']).toHaveLength(3);
    }
    expect(await keptAnswers()).toBe(0);
  });

  it('a plan sent again under its key answers the config as it is now, not the first answer', async () => {
    const headers = { 'idempotency-key': 'plan-again' };
    const first = await h.request('POST', `${base()}/plan`, { token: admin, body: withoutRoutes, headers });
    expect(json(first)['changes']).toHaveLength(3);
    const applied = await h.request('POST', `${base()}/apply`, { token: admin, body: withoutRoutes });
    expect(applied.status, JSON.stringify(applied.body)).toBe(200);

    const again = await h.request('POST', `${base()}/plan`, { token: admin, body: withoutRoutes, headers });
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBeNull();
    expect(json(again)['changes']).toEqual([]);
  });

  it('a rollback dry run keeps no answer, and the rollback under the same key then runs', async () => {
    const headers = { 'idempotency-key': 'rollback-routes' };
    const preview = await h.request('POST', `${base()}/rollback`, {
      token: admin,
      body: { to_position: withRoutes, dry_run: true },
      headers,
    });
    expect(preview.status, JSON.stringify(preview.body)).toBe(200);
    expect(json(preview)['changes']).toHaveLength(3);
    expect(await keptAnswers()).toBe(0);

    const start = await head();
    const rollback = await h.request('POST', `${base()}/rollback`, {
      token: admin,
      body: { to_position: withRoutes },
      headers,
    });
    expect(rollback.status, JSON.stringify(rollback.body)).toBe(200);
    expect(await head()).not.toBe(start);
    // A command's answer is still kept: the rollback sent again is replayed and appends nothing.
    expect(await keptAnswers()).toBe(1);
    const after = await head();
    const retried = await h.request('POST', `${base()}/rollback`, {
      token: admin,
      body: { to_position: withRoutes },
      headers,
    });
    expect(retried.headers.get('idempotent-replayed')).toBe('true');
    expect(await head()).toBe(after);
  });
});

describe('an answer sent again under its Idempotency-Key', () => {
  it('is paid from the tenant’s config read budget: past it 429, and other tenants’ reads still run', async () => {
    // A rollback's body is a position, its answer every change it made with the resources before and
    // after: here the 50 routes it removes.
    const before = await head();
    const document = {
      tenant: { name: 'Previews', subdomain: 'idempotent-previews' },
      origins: [{ name: 'api', url: 'http://127.0.0.1:9/' }],
      routes: Array.from({ length: 50 }, (_, index) => ({
        origin: 'api',
        path_pattern: `/replayed-${index}/*`,
        auth_mode: 'public',
      })),
    };
    const applied = await h.request('POST', `${base()}/apply`, { token: admin, body: document });
    expect(applied.status, JSON.stringify(applied.body)).toBe(200);
    const rollback = () =>
      h.request('POST', `${base()}/rollback`, {
        token: admin,
        body: { to_position: before },
        headers: { 'idempotency-key': 'rollback-replayed' },
      });
    const rolledBack = await rollback();
    expect(rolledBack.status, JSON.stringify(rolledBack.body)).toBe(200);
    const changes = json(rolledBack)['changes'] as Array<{ name: string }>;
    expect(changes.filter((change) => change.name.includes('/replayed-'))).toHaveLength(50);
    const answerBytes = Buffer.byteLength(JSON.stringify(rolledBack.body));
    const after = await head();

    // The clock stands still: the budget is one answer's worth, and nothing refills it.
    useConfigReadBudget(h.store, createConfigReadBudget({ bytesPerMinute: answerBytes, now: () => 0 }));
    const replayed = await rollback();
    expect(replayed.status, JSON.stringify(json(replayed)['error'])).toBe(200);
    expect(replayed.headers.get('idempotent-replayed')).toBe('true');
    expect(replayed.body).toEqual(rolledBack.body);

    const refused = await rollback();
    expect(refused.status, JSON.stringify(json(refused)['error'])).toBe(429);
    expect(json(refused)['error']).toMatchObject({
      code: 'admin_rate_limited',
      details: [{ field: 'tenant_config_read_bytes_per_minute' }],
    });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await head()).toBe(after);
    // The answer is kept: once the budget is there again, the retry is replayed.
    useConfigReadBudget(h.store, createConfigReadBudget({ bytesPerMinute: answerBytes, now: () => 0 }));
    const later = await rollback();
    expect(later.headers.get('idempotent-replayed')).toBe('true');

    const other = await h.request('GET', `/api/v1/tenants/${otherTenantId}/config`);
    expect(other.status, JSON.stringify(other.body)).toBe(200);
  });
});
