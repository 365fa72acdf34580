import type { TestBrowser } from '@vantageedge/shared/testing/browser';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTenantTab, type StandInConsole, startStandInConsole } from './stand-in-console.js';
import { ordersOrigin, routeResource, tenantResource } from './stand-in-resources.js';

/**
 * The built console in chromium against a stand-in admin API whose list items carry their revision
 * (the number of their ETag) and whose deletes, revokes and rotations honour If-Match as the real
 * one does: a button pressed on a row someone else changed since the list was shown changes nothing
 * (412), and the notice loads the current list to act on.
 */

const TENANT = tenantResource('55555555-5555-4555-8555-555555555555', 'Echo', 'echo');
const ORIGIN = ordersOrigin('66666666-6666-4666-8666-666666666666', TENANT.id);
const ROUTE = routeResource({
  id: '44444444-4444-4444-8444-444444444444',
  tenant_id: TENANT.id,
  origin_id: ORIGIN.id,
  path_pattern: '/orders/*',
});
const API_KEY = {
  id: '33333333-3333-4333-8333-333333333333',
  tenant_id: TENANT.id,
  name: 'checkout',
  key_prefix: 've_live_abc',
  scopes: [] as string[],
  expires_at: null,
  revoked_at: null as string | null,
  replaced_by: null,
  quota: null,
  created_at: '2026-12-01T00:00:00.000Z',
  updated_at: '2026-12-01T00:00:00.000Z',
};

const customDomain = (id: string, domain: string) => ({
  id,
  tenant_id: TENANT.id,
  domain,
  status: 'pending' as 'pending' | 'verified',
  verification: {
    type: 'dns-txt',
    name: `_vantageedge-challenge.${domain}`,
    value: 'vantageedge-verification=abc',
    expires_at: '2026-12-08T00:00:00.000Z',
  },
  verified_at: null as string | null,
  verification_method: null as string | null,
  created_at: '2026-12-01T00:00:00.000Z',
  updated_at: '2026-12-01T00:00:00.000Z',
});
const VERIFIED_DOMAIN = customDomain('22222222-2222-4222-8222-222222222222', 'shop.echo.example');
const REMOVED_DOMAIN = customDomain('11111111-1111-4111-8111-111111111111', 'api.echo.example');

interface Guarded<T> {
  resource: T;
  revision: number;
  gone: boolean;
  /** The If-Match of each delete, revoke or rotation carried out. */
  done: Array<string | undefined>;
}

const guarded = <T>(resource: T): Guarded<T> => ({ resource, revision: 1, gone: false, done: [] });

/** The collection's one item, with its revision, while it is not gone. */
function serveList<T extends object>(app: express.Router, path: string, item: Guarded<T>): void {
  app.get(path, (_req, res) => {
    res.json({
      data: item.gone ? [] : [{ ...item.resource, revision: String(item.revision) }],
      next_cursor: null,
    });
  });
}

/** Carries out `action` unless If-Match names another revision than the current one (412). */
function serveGuardedAction<T>(
  app: express.Router,
  method: 'delete' | 'post',
  path: string,
  item: Guarded<T>,
  action: (res: express.Response) => void,
): void {
  app[method](path, (req, res) => {
    const ifMatch = req.get('if-match');
    if (ifMatch !== undefined && ifMatch !== `"${item.revision}"`) {
      res.status(412).json({
        error: {
          code: 'precondition_failed',
          message: `If-Match ${ifMatch} does not match the current revision "${item.revision}"`,
          details: [{ field: 'if-match', issue: 'stale revision' }],
        },
      });
      return;
    }
    item.done.push(ifMatch);
    action(res);
  });
}

describe('list buttons of the console when someone else changed the row', () => {
  let standIn: StandInConsole | undefined;
  let browser: TestBrowser;
  const route = guarded(ROUTE);
  const origin = guarded(ORIGIN);
  const apiKey = guarded(API_KEY);
  const verifiedDomain = guarded(VERIFIED_DOMAIN);
  const removedDomain = guarded(REMOVED_DOMAIN);

  beforeAll(async () => {
    const app = express.Router();
    app.get('/api/v1/tenants/:id', (_req, res) => {
      res.setHeader('etag', '"1"');
      res.json(TENANT);
    });
    serveList(app, '/api/v1/routes', route);
    serveList(app, '/api/v1/origins', origin);
    serveList(app, '/api/v1/api-keys', apiKey);
    app.get('/api/v1/tenants/:id/domains', (_req, res) => {
      res.json({
        data: [verifiedDomain, removedDomain].flatMap((item) =>
          item.gone ? [] : [{ ...item.resource, revision: String(item.revision) }],
        ),
        next_cursor: null,
      });
    });
    app.get('/api/v1/certificates', (_req, res) => {
      res.json({ data: [], next_cursor: null });
    });
    const removed = (item: Guarded<unknown>) => (res: express.Response) => {
      item.gone = true;
      res.status(204).end();
    };
    serveGuardedAction(app, 'delete', '/api/v1/routes/:id', route, removed(route));
    serveGuardedAction(app, 'delete', '/api/v1/origins/:id', origin, removed(origin));
    serveGuardedAction(app, 'post', '/api/v1/api-keys/:id/revoke', apiKey, (res) => {
      apiKey.resource = { ...apiKey.resource, revoked_at: '2026-12-02T00:00:00.000Z' };
      apiKey.revision += 1;
      res.json({ ...apiKey.resource });
    });
    serveGuardedAction(
      app,
      'delete',
      `/api/v1/tenants/:id/domains/${REMOVED_DOMAIN.domain}`,
      removedDomain,
      removed(removedDomain),
    );
    serveGuardedAction(
      app,
      'post',
      `/api/v1/tenants/:id/domains/${VERIFIED_DOMAIN.domain}/verify`,
      verifiedDomain,
      (res) => {
        verifiedDomain.resource = {
          ...verifiedDomain.resource,
          status: 'verified',
          verified_at: '2026-12-02T00:00:00.000Z',
          verification_method: 'dns_txt',
        };
        verifiedDomain.revision += 1;
        res.json({ ...verifiedDomain.resource });
      },
    );
    standIn = await startStandInConsole(app);
    ({ browser } = standIn);
    // Every delete and revoke asks first.
    browser.page.on('dialog', (dialog) => void dialog.accept());
  }, 180_000);

  afterAll(async () => {
    await standIn?.close();
  });

  const openTab = (tab: string) => openTenantTab(standIn!, TENANT.id, tab, TENANT.name);

  /** Presses `button` on a row changed elsewhere, then again once the notice loaded the current list. */
  async function pressOnStaleRow(row: string, button: string, item: Guarded<unknown>) {
    const { page } = browser;
    await page.locator(`${row} button:has-text("${button}")`).waitFor({ timeout: 15_000 });
    item.revision = 2; // changed by someone else while the list is shown

    await page.locator(`${row} button:has-text("${button}")`).click();
    const notice = page.locator('.notice.error', { hasText: 'precondition_failed' });
    await expect
      .poll(async () => item.done.length > 0 || (await notice.isVisible()), { timeout: 15_000 })
      .toBe(true);
    expect(item.done, 'carried out on a row changed since the list showed it').toEqual([]);

    await notice.getByRole('button', { name: 'Load the current version' }).click();
    await notice.waitFor({ state: 'detached', timeout: 15_000 });
    await page.locator(`${row} button:has-text("${button}")`).click();
    await expect.poll(() => item.done, { timeout: 15_000 }).toEqual(['"2"']);
  }

  it('deletes a route only at the revision the list showed', async () => {
    await openTab('routes');
    await pressOnStaleRow('tr[data-route="/orders/*"]', 'Delete', route);
    await browser.page.locator('tr[data-route="/orders/*"]').waitFor({ state: 'detached', timeout: 15_000 });
  }, 60_000);

  it('deletes an origin only at the revision the list showed', async () => {
    await openTab('origins');
    await pressOnStaleRow('tr[data-origin="orders"]', 'Delete', origin);
    await browser.page.locator('tr[data-origin="orders"]').waitFor({ state: 'detached', timeout: 15_000 });
  }, 60_000);

  it('revokes an API key only at the revision the list showed', async () => {
    await openTab('keys');
    await pressOnStaleRow('tr[data-key="checkout"]', 'Revoke', apiKey);
    await browser.page
      .locator('tr[data-key="checkout"] td', { hasText: 'revoked' })
      .waitFor({ timeout: 15_000 });
  }, 60_000);

  // A domain removed and claimed again since the list was shown has a new revision.
  it('removes a custom domain only at the revision the list showed', async () => {
    await openTab('domains');
    const row = `#domains tr:has(code:text-is("${REMOVED_DOMAIN.domain}"))`;
    await pressOnStaleRow(row, 'Remove', removedDomain);
    await browser.page.locator(row).waitFor({ state: 'detached', timeout: 15_000 });
  }, 60_000);

  it('verifies a custom domain only at the revision the list showed', async () => {
    await openTab('domains');
    const row = `#domains tr:has(code:text-is("${VERIFIED_DOMAIN.domain}"))`;
    await pressOnStaleRow(row, 'Verify', verifiedDomain);
    await browser.page.locator(`${row} td`, { hasText: 'verified' }).first().waitFor({ timeout: 15_000 });
  }, 60_000);
});
