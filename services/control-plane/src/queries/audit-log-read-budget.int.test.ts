import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConfigReadBudget, useConfigReadBudget } from '../config-history/config-read-budget.js';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * An audit-log page is up to 200 entries of up to a route's 32 KiB each: a tenant that changed a large
 * route 200 times has a 5.8 MB page, ≈ 40 ms of the control plane's one thread to parse, redact and send
 * (measured), which the per-caller request rate alone let one admin repeat until every tenant's admin
 * API waited. Its entries' bytes are paid from the tenant's config read budget, as whole-config reads.
 */

const BODY_BYTES = 28_000;
const CHANGES = 40;

let h: ControlPlaneHarness;
let heavy: string;
let quiet: string;
/** An admin of both tenants, one of the heavy tenant alone, one of the quiet tenant alone. */
let bothAdmin: string;
let heavyAdmin: string;
let quietAdmin: string;

async function tenantWithLargeRoute(name: string, changes: number): Promise<string> {
  const created = await h.request('POST', '/api/v1/tenants', {
    body: { name, subdomain: `${name}-${Date.now()}` },
  });
  const tenantId = json(created)['id'] as string;
  const route = await h.request('POST', '/api/v1/routes', {
    body: {
      tenant_id: tenantId,
      origin_id: null,
      path_pattern: '/large',
      auth_mode: 'public',
      fixed_response: { status: 200, body: 'a'.repeat(BODY_BYTES) },
    },
  });
  expect(route.status, JSON.stringify(route.body)).toBe(201);
  for (let change = 0; change < changes; change += 1) {
    const patched = await h.request('PATCH', `/api/v1/routes/${json(route)['id']}`, {
      body: { fixed_response: { status: 200, body: String(change).padEnd(BODY_BYTES, 'b') } },
    });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
  }
  return tenantId;
}

beforeAll(async () => {
  h = await startControlPlane({ withReadSide: true });
  heavy = await tenantWithLargeRoute('audit-heavy', CHANGES);
  quiet = await tenantWithLargeRoute('audit-quiet', 1);
  const admins = { user_audit_both: [heavy, quiet], user_audit_heavy: [heavy], user_audit_quiet: [quiet] };
  for (const [userId, tenants] of Object.entries(admins)) {
    for (const tenantId of tenants) {
      const added = await h.request('POST', '/api/v1/users', {
        body: { tenant_id: tenantId, clerk_user_id: userId, email: `${userId}@example.com`, role: 'admin' },
      });
      expect(added.status, JSON.stringify(added.body)).toBe(201);
    }
  }
  bothAdmin = await h.token({ userId: 'user_audit_both' });
  heavyAdmin = await h.token({ userId: 'user_audit_heavy' });
  quietAdmin = await h.token({ userId: 'user_audit_quiet' });
  await h.readModelsCaughtUp();
}, 120_000);

afterAll(async () => {
  await h?.close();
});

describe('GET /api/v1/audit-log: the bytes of its entries', () => {
  it("are paid from the tenant's config read budget: past it 429, other tenants' pages still read", async () => {
    // A budget that never refills: the heavy tenant's page (≈ 1.1 MB) takes it into debt.
    useConfigReadBudget(h.store, createConfigReadBudget({ bytesPerMinute: 1_000_000, now: () => 0 }));
    try {
      const first = await h.request('GET', `/api/v1/audit-log?tenant_id=${heavy}&limit=200`);
      expect(first.status, JSON.stringify(first.body).slice(0, 300)).toBe(200);
      // The tenant's and its route's creation, the route's changes, its two admins added.
      expect((json(first)['data'] as unknown[]).length).toBe(CHANGES + 4);

      const again = await h.request('GET', `/api/v1/audit-log?tenant_id=${heavy}&limit=200`);
      expect(again.status).toBe(429);
      expect(json(again)['error']).toMatchObject({
        code: 'admin_rate_limited',
        details: [{ field: 'tenant_config_read_bytes_per_minute' }],
      });
      expect(Number(again.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

      const other = await h.request('GET', `/api/v1/audit-log?tenant_id=${quiet}&limit=200`);
      expect(other.status, JSON.stringify(other.body).slice(0, 300)).toBe(200);
    } finally {
      useConfigReadBudget(h.store, createConfigReadBudget());
    }
  });

  it("of a tenant in debt are left out of an admin's listing of all their tenants, named with when to read them", async () => {
    useConfigReadBudget(h.store, createConfigReadBudget({ bytesPerMinute: 1_000_000, now: () => 0 }));
    try {
      const heavyPage = await h.request('GET', `/api/v1/audit-log?tenant_id=${heavy}&limit=200`, {
        token: bothAdmin,
      });
      expect(heavyPage.status, JSON.stringify(heavyPage.body).slice(0, 300)).toBe(200);

      const listing = await h.request('GET', '/api/v1/audit-log?limit=200', { token: bothAdmin });
      expect(listing.status, JSON.stringify(listing.body).slice(0, 300)).toBe(200);
      const entries = json(listing)['data'] as { tenant_id: string }[];
      expect(entries.length).toBeGreaterThan(0);
      expect(new Set(entries.map((entry) => entry.tenant_id))).toEqual(new Set([quiet]));
      expect(json(listing)['omitted_tenants']).toEqual([
        {
          tenant_id: heavy,
          code: 'admin_rate_limited',
          field: 'tenant_config_read_bytes_per_minute',
          retry_after_seconds: expect.any(Number),
        },
      ]);
      const [omitted] = json(listing)['omitted_tenants'] as { retry_after_seconds: number }[];
      expect(omitted?.retry_after_seconds).toBeGreaterThanOrEqual(1);

      // An admin of the quiet tenant alone: nothing left out, nothing said about the other tenant.
      const quietListing = await h.request('GET', '/api/v1/audit-log?limit=200', { token: quietAdmin });
      expect(quietListing.status).toBe(200);
      expect(json(quietListing)['omitted_tenants']).toBeUndefined();
      expect((json(quietListing)['data'] as unknown[]).length).toBe(entries.length);

      // Every tenant of the listing in debt: nothing to serve, the same 429 as a filtered read.
      const heavyListing = await h.request('GET', '/api/v1/audit-log?limit=200', { token: heavyAdmin });
      expect(heavyListing.status).toBe(429);
      expect(json(heavyListing)['error']).toMatchObject({
        code: 'admin_rate_limited',
        details: [{ field: 'tenant_config_read_bytes_per_minute' }],
      });
      expect(Number(heavyListing.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    } finally {
      useConfigReadBudget(h.store, createConfigReadBudget());
    }
  });
});
