import type { TestBrowser } from '@vantageedge/shared/testing/browser';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleToken, type StandInConsole, startStandInConsole } from './stand-in-console.js';
import { ordersOrigin, routeResource, tenantResource } from './stand-in-resources.js';

/**
 * The built console in chromium against a stand-in admin API that pages its lists as the real one
 * does (limit at most 200, next_cursor): what an operator sees of the tenants, routes and API keys
 * there are, and what the route editor sends for a route that answers itself.
 */

const MAX_PAGE_SIZE = 200;
const CREATED = '2026-12-01T00:00:00.000Z';

const uuidOf = (kind: number, n: number) =>
  `${String(kind).repeat(8)}-0000-4000-8000-${String(n).padStart(12, '0')}`;

const TENANTS = Array.from({ length: 150 }, (_, index) =>
  tenantResource(uuidOf(1, index + 1), `Tenant ${index + 1}`, `tenant-${index + 1}`),
);
const TENANT = TENANTS[0] as (typeof TENANTS)[number];
const ORIGIN = ordersOrigin(uuidOf(2, 1), TENANT.id);

function numberedRoute(n: number) {
  return {
    ...routeResource<string | null>({
      id: uuidOf(3, n),
      tenant_id: TENANT.id,
      origin_id: ORIGIN.id,
      path_pattern: `/r${n}`,
    }),
    fixed_response: null as { status: number; body: string; headers: Record<string, string> } | null,
    redirect: null,
  };
}
/** First in the list: a route that answers itself (no origin). */
const MAINTENANCE = {
  ...numberedRoute(1),
  path_pattern: '/maintenance',
  origin_id: null,
  fixed_response: { status: 503, body: 'down for maintenance', headers: {} },
};
const ROUTES = [MAINTENANCE, ...Array.from({ length: 129 }, (_, index) => numberedRoute(index + 2))];
const API_KEYS = Array.from({ length: 120 }, (_, index) => ({
  id: uuidOf(4, index + 1),
  tenant_id: TENANT.id,
  name: `key-${index + 1}`,
  key_prefix: `ve_${index + 1}`,
  scopes: [],
  expires_at: null,
  quota: null,
  revoked_at: index < 100 ? CREATED : null,
  replaced_by: null,
  created_at: CREATED,
}));

/** The tenant's config changes, newest first (positions 60 down to 1). */
const HISTORY = Array.from({ length: 60 }, (_, index) => ({
  position: String(60 - index),
  occurred_at: CREATED,
  actor: 'user_platform_admin',
  event_type: 'RouteUpdated',
  resource_type: 'route',
  resource_id: uuidOf(3, 2),
  causation_id: null,
  summary: `change ${60 - index}`,
}));

/** One page of `items` as the admin API answers a list: oldest first, the cursor past the last one. */
function pageOf<T>(items: readonly T[], query: express.Request['query'], res: express.Response): void {
  const limit = Number(query['limit'] ?? 50);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    res.status(400).json({ error: { code: 'validation_failed', message: 'limit', details: [] } });
    return;
  }
  const start = Number(query['cursor'] ?? 0);
  const end = start + limit;
  res.json({ data: items.slice(start, end), next_cursor: end < items.length ? String(end) : null });
}

describe("what the console shows of a tenant's resources", () => {
  let standIn: StandInConsole | undefined;
  let browser: TestBrowser;
  let base = '';
  const routePatches: Array<{ id: string; body: Record<string, unknown> }> = [];
  const rollbackPlans: unknown[] = [];
  /** The If-Match each rollback request was sent with. */
  const rollbackVersions: Array<string | undefined> = [];

  beforeAll(async () => {
    const app = express.Router();
    app.get('/api/v1/tenants', (req, res) => pageOf(TENANTS, req.query, res));
    app.get('/api/v1/tenants/:id', (req, res) => {
      res.setHeader('etag', '"tenant-1"');
      res.json(TENANTS.find((tenant) => tenant.id === req.params.id) ?? TENANT);
    });
    app.get('/api/v1/origins', (req, res) => pageOf([ORIGIN], req.query, res));
    app.get('/api/v1/routes', (req, res) => pageOf(ROUTES, req.query, res));
    app.get('/api/v1/routes/:id', (req, res) => {
      res.setHeader('etag', '"route-1"');
      res.json(ROUTES.find((route) => route.id === req.params.id));
    });
    app.patch('/api/v1/routes/:id', express.json(), (req, res) => {
      routePatches.push({ id: req.params.id, body: req.body });
      res.json({ ...ROUTES.find((route) => route.id === req.params.id), ...req.body });
    });
    app.get('/api/v1/api-keys', (req, res) => pageOf(API_KEYS, req.query, res));
    app.get('/api/v1/tenants/:id/config/history', (req, res) => {
      const limit = Number(req.query['limit'] ?? 50);
      const before =
        req.query['cursor'] === undefined ? Number.POSITIVE_INFINITY : Number(req.query['cursor']);
      const data = HISTORY.filter((entry) => Number(entry.position) < before).slice(0, limit);
      const last = data.at(-1);
      res.json({ data, next_cursor: last && last.position !== '1' ? last.position : null });
    });
    app.post('/api/v1/tenants/:id/config/rollback', express.json(), (req, res) => {
      rollbackPlans.push(req.body);
      rollbackVersions.push(req.get('if-match'));
      const changes = [
        { resource: 'route', id: MAINTENANCE.id, name: 'ANY /maintenance', change: 'changed', fields: [] },
      ];
      res.json({ version: req.body.dry_run ? '61' : '62', position: '62', changes });
    });
    standIn = await startStandInConsole(app);
    ({ base, browser } = standIn);
  }, 180_000);

  afterAll(async () => {
    await standIn?.close();
  });

  async function open(hash: string, ready: string): Promise<void> {
    const { page } = browser;
    await page.goto('about:blank');
    await page.goto(`${base}/console/${hash}`);
    await page.locator('textarea[name=token], #signed-in-as').first().waitFor({ timeout: 15_000 });
    if (await page.locator('textarea[name=token]').isVisible()) {
      await page.fill('textarea[name=token]', consoleToken());
      await page.click('button:has-text("Use this token")');
    }
    await page.locator(ready).waitFor({ timeout: 15_000 });
  }

  // Regression: the lists asked for one page of 100 and showed it as the whole list, so past the
  // hundredth tenant, route or key (the newest) nothing said there were more, or let anyone reach them.
  it('lists every tenant, route and API key, past the first page', async () => {
    const { page } = browser;
    await open('#/tenants', 'table#tenants');
    expect(await page.locator('#tenants tbody tr').count()).toBe(TENANTS.length);
    expect(await page.locator('#tenants a', { hasText: /^Tenant 150$/ }).count()).toBe(1);

    await open(`#/tenants/${TENANT.id}/routes`, 'table#routes');
    expect(await page.locator('#routes tbody tr').count()).toBe(ROUTES.length);
    expect(await page.locator('tr[data-route="/r130"]').count()).toBe(1);

    await open(`#/tenants/${TENANT.id}/keys`, 'table#api-keys');
    expect(await page.locator('#api-keys tbody tr').count()).toBe(API_KEYS.length);
    expect(await page.locator('tr[data-key=key-120]', { hasText: 'active' }).count()).toBe(1);
  }, 60_000);

  // Regression: the history tab showed the 50 newest changes as the whole history, so no change
  // before them could be compared with now or rolled back to.
  it('reaches config changes older than the first page and rolls back to them', async () => {
    const { page } = browser;
    await open(`#/tenants/${TENANT.id}/history`, 'table#config-history');
    expect(await page.locator('#config-history tr[data-position]').count()).toBe(50);
    expect(await page.locator('button:has-text("Older changes")').count()).toBe(1);

    await page.click('button:has-text("Older changes")');
    const oldest = page.locator('#config-history tr[data-position="1"]');
    await oldest.waitFor({ timeout: 15_000 });
    expect(await page.locator('#config-history tr[data-position]').count()).toBe(HISTORY.length);
    expect(await page.locator('button:has-text("Older changes")').count()).toBe(0);

    await oldest.locator('button:has-text("Roll back to here")').click();
    await page.locator('#rollback-plan h2', { hasText: 'position 1?' }).waitFor({ timeout: 15_000 });
    expect(rollbackPlans).toEqual([{ to_position: '1', dry_run: true }]);

    // Confirmed, the rollback runs on the version its plan was made on: a change made since is refused
    // (412), never undone unseen.
    await page.click('#confirm-rollback');
    await page.locator('#rollback-done').waitFor({ timeout: 15_000 });
    expect(rollbackPlans).toEqual([{ to_position: '1', dry_run: true }, { to_position: '1' }]);
    expect(rollbackVersions).toEqual([undefined, '"61"']);
  }, 60_000);

  // Regression: the editor started a route without an origin at the first origin of the list, so
  // saving any change to a route that answers itself attached that origin to it.
  it('saves a route that answers itself without giving it an origin', async () => {
    const { page } = browser;
    await open(`#/tenants/${TENANT.id}/routes`, 'table#routes');
    await page.locator('tr[data-route="/maintenance"] button:has-text("Edit")').click();
    const editor = page.locator(`form#edit-route-${MAINTENANCE.id}`);
    await editor.locator('h2', { hasText: 'Edit /maintenance' }).waitFor({ timeout: 15_000 });
    expect(await editor.locator('select[name=origin_id]').inputValue()).toBe('');

    await editor.locator('input[name=priority]').fill('7');
    await editor.locator('button:has-text("Save route")').click();
    await editor.waitFor({ state: 'detached', timeout: 15_000 });
    expect(routePatches).toHaveLength(1);
    expect(routePatches[0]).toMatchObject({ id: MAINTENANCE.id, body: { origin_id: null, priority: 7 } });
  }, 60_000);
});
