import type { TestBrowser } from '@vantageedge/shared/testing/browser';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTenantTab, type StandInConsole, startStandInConsole } from './stand-in-console.js';
import { ordersOrigin, routeResource, tenantResource } from './stand-in-resources.js';

/**
 * The built console in chromium against a stand-in admin API that guards its resources with ETags
 * as the real one does: what an operator can do when someone else changed the tenant or the route
 * they are editing (412 precondition_failed) — load the current version from the notice and save
 * over it, without reloading the whole page.
 */

const TENANT = tenantResource('77777777-7777-4777-8777-777777777777', 'Delta', 'delta');
const ORIGIN = ordersOrigin('88888888-8888-4888-8888-888888888888', TENANT.id);
const ROUTE_ID = '99999999-9999-4999-8999-999999999999';

interface Guarded<T> {
  resource: T;
  revision: number;
  patches: Array<{ ifMatch: string | undefined; body: Record<string, unknown> }>;
}

/** GET with the revision as ETag, PATCH refused with 412 unless If-Match names the current one. */
function serveGuarded<T extends object>(app: express.Router, path: string, guarded: Guarded<T>): void {
  app.get(path, (_req, res) => {
    res.setHeader('etag', `"${guarded.revision}"`);
    res.json(guarded.resource);
  });
  app.patch(path, express.json(), (req, res) => {
    const ifMatch = req.get('if-match');
    if (ifMatch !== undefined && ifMatch !== `"${guarded.revision}"`) {
      res.status(412).json({
        error: {
          code: 'precondition_failed',
          message: `If-Match ${ifMatch} does not match the current revision "${guarded.revision}"`,
          details: [{ field: 'if-match', issue: 'stale revision' }],
        },
      });
      return;
    }
    guarded.patches.push({ ifMatch, body: req.body });
    guarded.resource = { ...guarded.resource, ...req.body };
    guarded.revision += 1;
    res.setHeader('etag', `"${guarded.revision}"`);
    res.json(guarded.resource);
  });
}

describe('the console when someone else changed what is being edited', () => {
  let standIn: StandInConsole | undefined;
  let browser: TestBrowser;
  const tenant: Guarded<typeof TENANT> = { resource: TENANT, revision: 1, patches: [] };
  const route: Guarded<ReturnType<typeof routeResource<string>>> = {
    resource: routeResource({
      id: ROUTE_ID,
      tenant_id: TENANT.id,
      origin_id: ORIGIN.id,
      path_pattern: '/orders/*',
    }),
    revision: 1,
    patches: [],
  };
  const origin: Guarded<typeof ORIGIN> = { resource: ORIGIN, revision: 1, patches: [] };

  beforeAll(async () => {
    const app = express.Router();
    serveGuarded(app, '/api/v1/tenants/:id', tenant);
    serveGuarded(app, '/api/v1/routes/:id', route);
    serveGuarded(app, '/api/v1/origins/:id', origin);
    app.get('/api/v1/origins', (_req, res) => {
      res.json({ data: [origin.resource], next_cursor: null });
    });
    app.get('/api/v1/certificates', (_req, res) => {
      res.json({ data: [], next_cursor: null });
    });
    app.get('/api/v1/routes', (_req, res) => {
      res.json({ data: [route.resource], next_cursor: null });
    });
    standIn = await startStandInConsole(app);
    ({ browser } = standIn);
  }, 180_000);

  afterAll(async () => {
    await standIn?.close();
  });

  const openTab = (tab: string) => openTenantTab(standIn!, TENANT.id, tab, TENANT.subdomain);

  // Regression: the overview kept the ETag of its first read, and a 412 offered nothing but the
  // error: every later Save was refused again until the whole page was reloaded.
  it("loads the tenant's current version from the 412 notice, then saves over it", async () => {
    const { page } = browser;
    await openTab('overview');
    tenant.resource = { ...tenant.resource, name: 'Delta (renamed elsewhere)' };
    tenant.revision = 2;

    await page.fill('input[name=name]', 'Delta mine');
    await page.click('button:has-text("Save")');
    const notice = page.locator('.notice.error', { hasText: 'precondition_failed' });
    await notice.waitFor({ timeout: 15_000 });
    await notice.getByRole('button', { name: 'Load the current version' }).click();
    // The form shows the tenant read again. (Not page.waitForFunction: its later checks are an eval the
    // console's CSP refuses, so it only passes when the first check does.)
    await expect
      .poll(() => page.inputValue('input[name=name]'), { timeout: 15_000 })
      .toBe(tenant.resource.name);
    expect(await page.locator('.notice.error').count()).toBe(0);

    await page.fill('input[name=name]', 'Delta mine');
    await page.click('button:has-text("Save")');
    await page.locator('.notice.ok', { hasText: 'Saved' }).waitFor({ timeout: 15_000 });
    expect(tenant.patches).toEqual([
      { ifMatch: '"2"', body: expect.objectContaining({ name: 'Delta mine' }) },
    ]);
  }, 60_000);

  it('loads the route’s current version into the editor from the 412 notice', async () => {
    const { page } = browser;
    await openTab('routes');
    await page.locator('tr[data-route="/orders/*"] button:has-text("Edit")').click();
    const editor = page.locator(`form#edit-route-${ROUTE_ID}`);
    await editor.locator('h2', { hasText: 'Edit /orders/*' }).waitFor({ timeout: 15_000 });
    route.resource = { ...route.resource, path_pattern: '/orders/v2/*' };
    route.revision = 2;

    await editor.locator('input[name=priority]').fill('5');
    await editor.locator('button:has-text("Save route")').click();
    const notice = editor.locator('.notice.error', { hasText: 'precondition_failed' });
    await notice.waitFor({ timeout: 15_000 });
    await notice.getByRole('button', { name: 'Load the current version' }).click();
    await editor.locator('h2', { hasText: 'Edit /orders/v2/*' }).waitFor({ timeout: 15_000 });
    expect(await editor.locator('input[name=priority]').inputValue()).toBe('0');

    await editor.locator('input[name=priority]').fill('5');
    await editor.locator('button:has-text("Save route")').click();
    await editor.waitFor({ state: 'detached', timeout: 15_000 });
    expect(route.patches).toEqual([
      { ifMatch: '"2"', body: expect.objectContaining({ path_pattern: '/orders/v2/*', priority: 5 }) },
    ]);
  }, 60_000);

  // Regression: the TLS editor sent its PATCH without If-Match, so a form opened before someone else
  // changed the origin replaced their change without a word.
  it('saves an origin’s TLS under the ETag it was read with, and loads the current version from the 412 notice', async () => {
    const { page } = browser;
    await openTab('origins');
    await page.locator('tr[data-origin="orders"] button:has-text("TLS")').click();
    const editor = page.locator('form#edit-origin-tls');
    await editor.locator('h2', { hasText: 'TLS of orders' }).waitFor({ timeout: 15_000 });
    origin.resource = { ...origin.resource, name: 'orders-renamed' };
    origin.revision = 2;

    await editor.locator('button:has-text("Save TLS settings")').click();
    const notice = editor.locator('.notice.error', { hasText: 'precondition_failed' });
    await notice.waitFor({ timeout: 15_000 });
    await notice.getByRole('button', { name: 'Load the current version' }).click();
    await editor.locator('h2', { hasText: 'TLS of orders-renamed' }).waitFor({ timeout: 15_000 });

    await editor.locator('button:has-text("Save TLS settings")').click();
    await editor.waitFor({ state: 'detached', timeout: 15_000 });
    expect(origin.patches).toEqual([{ ifMatch: '"2"', body: { tls: expect.any(Object) } }]);
  }, 60_000);
});
