import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantWithViewerAndAdmin } from '../testing/admin-limits.js';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';
import { createConfigReadBudget, useConfigReadBudget } from './config-read-budget.js';

/**
 * Regression test: a tenant's config read budget was one bucket for everyone who may read the tenant,
 * so a viewer (read access only) reading its config, diffs, explain or plans in a loop kept the bucket
 * in debt, and the tenant's admins could then neither read the config nor roll it back or apply a
 * document (429) — in an incident, the one time they need to. Callers with read access only now read
 * from a bucket of their own. Here each bucket holds 1 byte (the clock stands still): a bucket's first
 * read runs, every later one is refused.
 */
let cp: ControlPlaneHarness;
let tenantId: string;
let createdAt = '';
let viewer = '';
let admin = '';
let caughtUp: Record<string, string> = {};

const base = () => `/api/v1/tenants/${tenantId}`;
const document = {
  format: 1,
  tenant: { name: 'Budget Roles', subdomain: 'budget-roles' },
  origins: [],
  routes: [],
};
const reads = (token: string) => ({
  config: () => cp.request('GET', `${base()}/config`, { token, headers: caughtUp }),
  document: () => cp.request('GET', `${base()}/config/document`, { token, headers: caughtUp }),
  diff: () => cp.request('GET', `${base()}/config/diff?from=${createdAt}`, { token, headers: caughtUp }),
  explain: () =>
    cp.request('POST', `${base()}/explain`, {
      token,
      body: { method: 'GET', host: 'budget-roles.vantageedge.dev', path: '/' },
    }),
  plan: () => cp.request('POST', `${base()}/config/plan`, { token, body: document }),
});

function expectReadLimited(response: ApiResponse): void {
  expect(response.status, JSON.stringify(response.body)).toBe(429);
  expect(json(response)['error']).toMatchObject({
    code: 'admin_rate_limited',
    details: [{ field: 'tenant_config_read_bytes_per_minute' }],
  });
}

beforeAll(async () => {
  cp = await startControlPlane({ withReadSide: true });
  const tenant = await createTenantWithViewerAndAdmin(cp, 'Budget Roles', 'budget-roles', 'budget');
  ({ tenantId, createdAt, viewer, admin } = tenant);
  caughtUp = { 'x-min-position': tenant.usersAddedAt };
  await cp.readModelsCaughtUp();
  useConfigReadBudget(cp.store, createConfigReadBudget({ bytesPerMinute: 1, now: () => 0 }));
}, 60_000);

afterAll(async () => {
  await cp?.close();
});

describe('the config read budget and the tenant’s roles', () => {
  it('a viewer who spent it leaves the admins theirs: their rollback preview runs', async () => {
    const asViewer = reads(viewer);
    expect((await asViewer.config()).status).toBe(200);
    for (const again of [
      asViewer.config,
      asViewer.document,
      asViewer.diff,
      asViewer.explain,
      asViewer.plan,
    ]) {
      expectReadLimited(await again());
    }

    const preview = await cp.request('POST', `${base()}/config/rollback`, {
      token: admin,
      body: { to_position: createdAt, dry_run: true },
    });
    expect(preview.status, JSON.stringify(preview.body)).toBe(200);
    // The admins' own reads spend the admins' bucket.
    expectReadLimited(await reads(admin).document());
    expectReadLimited(await asViewer.document());
  });
});
