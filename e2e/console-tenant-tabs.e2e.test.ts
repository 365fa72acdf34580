import type { TestBrowser } from '@vantageedge/shared/testing/browser';
import { explanationWithoutRoute } from '@vantageedge/shared/testing/explanations';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTenantTab, type StandInConsole, startStandInConsole } from './stand-in-console.js';
import { ordersOrigin, routeResource, tenantResource } from './stand-in-resources.js';

/**
 * The built console in chromium against a stand-in admin API: what a tenant's tabs show and send
 * when the thing they are about changes under them (a route changed by someone else between two
 * reads, an audit filter replaced while the previous one's answer is still on its way).
 */

const TENANT = tenantResource('33333333-3333-4333-8333-333333333333', 'Charlie', 'charlie');
const ORIGIN = ordersOrigin('44444444-4444-4444-8444-444444444444', TENANT.id);
const ROUTE_ID = '55555555-5555-4555-8555-555555555555';
const BILLING_ROUTE_ID = '66666666-6666-4666-8666-666666666666';

/** The explain answer for a path no route matches, naming the path it was asked about. */
function noRouteFor(requestPath: string) {
  return explanationWithoutRoute({
    tenantId: TENANT.id,
    host: 'charlie.localhost',
    hostReason: "the tenant's subdomain",
    path: requestPath,
    decision: {
      stage: 'route',
      status: 404,
      code: 'route_not_found',
      message: `no route for ${requestPath}`,
    },
  });
}

function auditEntry(position: string, eventType: string) {
  return {
    position,
    event_id: `event-${position}`,
    event_type: eventType,
    resource_type: 'route',
    resource_id: ROUTE_ID,
    tenant_id: TENANT.id,
    actor: 'user_platform_admin',
    occurred_at: '2026-12-01T00:00:00.000Z',
    correlation_id: `correlation-${position}`,
    data: {},
  };
}

/** Three UTC days (or two hours) of requests, 10, 20 and 30 of them, as GET /api/v1/usage answers them. */
function usageReport(granularity: 'hour' | 'day') {
  const starts =
    granularity === 'day'
      ? ['2026-11-25T00:00:00.000Z', '2026-11-26T00:00:00.000Z', '2026-11-27T00:00:00.000Z']
      : ['2026-11-27T08:00:00.000Z', '2026-11-27T09:00:00.000Z'];
  const classes = (requests: number) => ({ '1xx': 0, '2xx': requests, '3xx': 0, '4xx': 0, '5xx': 0 });
  return {
    tenant_id: TENANT.id,
    api_key_id: null,
    route_id: null,
    user_id: null,
    granularity,
    from: starts[0],
    to: new Date(Date.parse(starts.at(-1)!) + (granularity === 'day' ? 86_400_000 : 3_600_000)).toISOString(),
    requests: granularity === 'day' ? 60 : 30,
    by_status_class: classes(granularity === 'day' ? 60 : 30),
    data: starts.map((start, index) => ({
      start,
      requests: 10 * (index + 1),
      by_status_class: classes(10 * (index + 1)),
    })),
    by_route: [],
    by_api_key: [],
    by_user: [],
  };
}

describe("a tenant's tabs when their subject changes under them", () => {
  let standIn: StandInConsole | undefined;
  let browser: TestBrowser;
  let route = routeResource({
    id: ROUTE_ID,
    tenant_id: TENANT.id,
    origin_id: ORIGIN.id,
    path_pattern: '/orders/*',
  });
  let routeVersion = 1;
  const billingRoute = { ...route, id: BILLING_ROUTE_ID, path_pattern: '/billing/*' };
  /** While set, reads of the orders route wait here until the test lets them answer. */
  let holdOrdersReads = false;
  const heldRouteReads: Array<() => void> = [];
  let routeReadHeld: () => void = () => {};
  const routePatches: Array<{ ifMatch: string | undefined; body: Record<string, unknown> }> = [];
  /** Audit-log pages for the actor filter `user_slow` wait here until the test lets them answer. */
  const heldAuditPages: Array<() => void> = [];
  let auditPageHeld: () => void = () => {};
  /** Explanations of the path `/slow` wait here until the test lets them answer. */
  const heldExplanations: Array<() => void> = [];
  let explanationHeld: () => void = () => {};

  beforeAll(async () => {
    const app = express.Router();
    app.get('/api/v1/tenants/:id', (_req, res) => {
      res.setHeader('etag', '"tenant-1"');
      res.json(TENANT);
    });
    app.get('/api/v1/origins', (_req, res) => {
      res.json({ data: [ORIGIN], next_cursor: null });
    });
    app.get('/api/v1/routes', (_req, res) => {
      res.json({ data: [route, billingRoute], next_cursor: null });
    });
    app.get('/api/v1/routes/:id', (req, res) => {
      if (req.params.id === BILLING_ROUTE_ID) {
        res.setHeader('etag', '"billing-1"');
        res.json(billingRoute);
        return;
      }
      const answer = () => {
        res.setHeader('etag', `"v${routeVersion}"`);
        res.json(route);
      };
      if (holdOrdersReads) {
        heldRouteReads.push(answer);
        routeReadHeld();
        return;
      }
      answer();
    });
    app.patch('/api/v1/routes/:id', express.json(), (req, res) => {
      const ifMatch = req.get('if-match');
      if (ifMatch !== `"v${routeVersion}"`) {
        res.status(412).json({
          error: { code: 'precondition_failed', message: 'the route changed since it was read' },
        });
        return;
      }
      routePatches.push({ ifMatch, body: req.body });
      route = { ...route, ...req.body };
      routeVersion += 1;
      res.setHeader('etag', `"v${routeVersion}"`);
      res.json(route);
    });
    app.get('/api/v1/audit-log', (req, res) => {
      const actor = req.query['actor'];
      const cursor = req.query['cursor'];
      if (actor === 'user_slow' && cursor === undefined) {
        heldAuditPages.push(() => res.json({ data: [auditEntry('10', 'SlowFirst')], next_cursor: 'slow-2' }));
        auditPageHeld();
        return;
      }
      if (cursor === 'slow-2') {
        res.json({ data: [auditEntry('9', 'SlowSecond')], next_cursor: null });
        return;
      }
      if (cursor === 'fast-2') {
        res.json({ data: [auditEntry('19', 'FastSecond')], next_cursor: null });
        return;
      }
      if (actor === 'user_fast') {
        res.json({ data: [auditEntry('20', 'FastFirst')], next_cursor: 'fast-2' });
        return;
      }
      res.json({ data: [auditEntry('30', 'Unfiltered')], next_cursor: null });
    });
    app.post('/api/v1/tenants/:id/explain', express.json(), (req, res) => {
      const requestPath = String(req.body.path);
      if (requestPath === '/slow') {
        heldExplanations.push(() => res.json(noRouteFor(requestPath)));
        explanationHeld();
        return;
      }
      res.json(noRouteFor(requestPath));
    });
    app.get('/api/v1/api-keys', (_req, res) => {
      res.json({ data: [], next_cursor: null });
    });
    app.get('/api/v1/usage', (req, res) => {
      res.json(usageReport(req.query['granularity'] === 'day' ? 'day' : 'hour'));
    });
    standIn = await startStandInConsole(app);
    ({ browser } = standIn);
  }, 180_000);

  afterAll(async () => {
    for (const answer of [
      ...heldAuditPages.splice(0),
      ...heldExplanations.splice(0),
      ...heldRouteReads.splice(0),
    ])
      answer();
    await standIn?.close();
  });

  const openTab = (tab: string) => openTenantTab(standIn!, TENANT.id, tab, TENANT.name);

  // Regression: the route editor was keyed by the route's id only, so reading the route again (Edit
  // after a 412) brought the new ETag but kept the form of the old read, and Save wrote the old
  // fields over the other change with an If-Match that no longer protected anything.
  it("edits a route read again after someone else's change from that change, never over it", async () => {
    const { page } = browser;
    await openTab('routes');
    const row = page.locator('tr[data-route="/orders/*"]');
    await row.locator('button:has-text("Edit")').click();
    const editor = page.locator(`form#edit-route-${ROUTE_ID}`);
    await editor.locator('h2', { hasText: 'Edit /orders/*' }).waitFor({ timeout: 15_000 });

    route = { ...route, path_pattern: '/orders/v2/*' };
    routeVersion = 2;
    await editor.locator('input[name=priority]').fill('5');
    await editor.locator('button:has-text("Save route")').click();
    await editor.locator('.notice.error', { hasText: 'precondition_failed' }).waitFor({ timeout: 15_000 });

    await row.locator('button:has-text("Edit")').click();
    await editor.locator('h2', { hasText: 'Edit /orders/v2/*' }).waitFor({ timeout: 15_000 });
    expect(await editor.locator('input[name=path_pattern]').inputValue()).toBe('/orders/v2/*');

    await editor.locator('button:has-text("Save route")').click();
    await editor.waitFor({ state: 'detached', timeout: 15_000 });
    expect(routePatches).toHaveLength(1);
    expect(routePatches[0]).toMatchObject({ ifMatch: '"v2"', body: { path_pattern: '/orders/v2/*' } });
  }, 60_000);

  // Regression: the editor opened with whichever route's read answered last, so a slow read of a route
  // the user had moved on from replaced the one they had opened since.
  it('keeps the route opened last in the editor when an earlier Edit answers late', async () => {
    const { page } = browser;
    await openTab('routes');
    const held = new Promise<void>((resolve) => {
      routeReadHeld = resolve;
    });
    holdOrdersReads = true;
    await page.locator(`tr[data-route="${route.path_pattern}"] button:has-text("Edit")`).click();
    await held;
    await page.locator('tr[data-route="/billing/*"] button:has-text("Edit")').click();
    await page.locator(`form#edit-route-${BILLING_ROUTE_ID}`).waitFor({ timeout: 15_000 });

    const lateRead = page.waitForResponse((response) =>
      response.url().endsWith(`/api/v1/routes/${ROUTE_ID}`),
    );
    holdOrdersReads = false;
    for (const answer of heldRouteReads.splice(0)) answer();
    await (await lateRead).finished();
    // One more round trip from the page: the late answer's own handling has run by its end.
    await page.evaluate(() => fetch('/api/v1/origins').then((response) => response.text()));
    await page.evaluate('new Promise((resolve) => requestAnimationFrame(resolve))');

    expect(await page.locator('form.route-editor[id^=edit-route-]').getAttribute('id')).toBe(
      `edit-route-${BILLING_ROUTE_ID}`,
    );
  }, 60_000);

  // Regression: the audit tab stored the first page of whatever filter answered last, so a slow
  // answer of a replaced filter took the list (and its cursor) over from the current one.
  it("keeps the current filter's audit entries when a replaced filter answers late", async () => {
    const { page } = browser;
    await openTab('audit');
    await page.locator('tr[data-event=Unfiltered]').waitFor({ timeout: 15_000 });

    const slowHeld = new Promise<void>((resolve) => {
      auditPageHeld = resolve;
    });
    await page.fill('#audit-filters input[name=actor]', 'user_slow');
    await page.click('#audit-filters button:has-text("Filter")');
    await slowHeld;
    await page.fill('#audit-filters input[name=actor]', 'user_fast');
    await page.click('#audit-filters button:has-text("Filter")');
    await page.locator('tr[data-event=FastFirst]').waitFor({ timeout: 15_000 });

    const slowAnswer = page.waitForResponse((response) => response.url().includes('actor=user_slow'));
    for (const answer of heldAuditPages.splice(0)) answer();
    await (await slowAnswer).finished();

    // The next page is asked for (and shown) after the late answer has arrived.
    await page.click('button:has-text("Older entries")');
    await page.locator('tr[data-event$=Second]').waitFor({ timeout: 15_000 });
    const events = await page
      .locator('#audit-log tr[data-event]')
      .evaluateAll((rows) => rows.map((row) => row.getAttribute('data-event')));
    expect(events).toEqual(['FastFirst', 'FastSecond']);
  }, 60_000);

  // Regression: every Explain's answer replaced the one shown, so an earlier request answering after
  // a later one showed its verdict under the later request's form.
  it("shows the newest request's explanation when an earlier one answers late", async () => {
    const { page } = browser;
    await openTab('explain');
    const slowHeld = new Promise<void>((resolve) => {
      explanationHeld = resolve;
    });
    await page.fill('#explain-form input[name=path]', '/slow');
    await page.click('#explain-form button[type=submit]');
    await slowHeld;
    await page.fill('#explain-form input[name=path]', '/fast');
    await page.click('#explain-form button[type=submit]');
    await page.locator('#explain-decision', { hasText: 'no route for /fast' }).waitFor({ timeout: 15_000 });

    const slowAnswer = page.waitForResponse((response) => response.url().endsWith('/explain'));
    for (const answer of heldExplanations.splice(0)) answer();
    await (await slowAnswer).finished();
    // One more round trip from the page: the late answer's own handling has run by its end.
    await page.evaluate(() => fetch('/api/v1/origins').then((response) => response.text()));
    await page.evaluate('new Promise((resolve) => requestAnimationFrame(resolve))');

    expect(await page.locator('#explain-decision').textContent()).toContain('no route for /fast');
  }, 60_000);

  // Regression: the chart drew the API's UTC days in the browser's time zone, so west of Greenwich
  // each day's requests showed under the day before (2026-11-26 00:00 UTC as "2026-11-25 4:00pm").
  it('shows each usage day as the UTC day the API counted it, in any browser time zone', async () => {
    const { page, context } = browser;
    const cdp = await context.newCDPSession(page);
    await cdp.send('Emulation.setTimezoneOverride', { timezoneId: 'America/Los_Angeles' });
    try {
      await openTab('usage');
      await page.selectOption('select[name=granularity]', 'day');
      // The days' chart (the hours' has two points), which a late answer may draw again: each try finds
      // the plot anew and puts the cursor over its middle, where the legend names the middle day.
      const plot = page.locator('#usage-chart[data-points="3"] .u-over');
      const legend = page.locator('#usage-chart[data-points="3"] .u-legend .u-series');
      await expect
        .poll(
          async () => {
            const box = await plot.boundingBox();
            if (box === null) return null;
            await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
            return legend.nth(1).locator('.u-value').textContent();
          },
          { timeout: 15_000 },
        )
        .toBe('20');
      expect(await legend.nth(0).locator('.u-value').textContent()).toBe('2026-11-26 UTC');
    } finally {
      await cdp.send('Emulation.setTimezoneOverride', { timezoneId: '' });
      await cdp.detach();
    }
  });
});
