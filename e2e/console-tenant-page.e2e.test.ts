import type { TestBrowser } from '@vantageedge/shared/testing/browser';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleToken, type StandInConsole, startStandInConsole } from './stand-in-console.js';

/**
 * The built console in chromium against a stand-in admin API holding two tenants: what the console
 * shows and sends when its address moves from one tenant's page straight to another's (a pasted link,
 * the browser's back button), without the tenant list in between.
 */

const ALPHA = {
  id: '11111111-1111-4111-8111-111111111111',
  name: 'Alpha',
  subdomain: 'alpha',
  settings: {
    rate_limit: null,
    oidc: null,
    service_accounts: [],
    ip_rules: { allow: ['10.1.0.0/16'], deny: [] },
  },
};
const BRAVO = {
  id: '22222222-2222-4222-8222-222222222222',
  name: 'Bravo',
  subdomain: 'bravo',
  settings: {
    rate_limit: null,
    oidc: null,
    service_accounts: [],
    ip_rules: { allow: ['192.0.2.0/24'], deny: [] },
  },
};

describe('the console moving from one tenant to another', () => {
  let standIn: StandInConsole | undefined;
  let browser: TestBrowser;
  let base = '';
  const patches: Array<{ tenantId: string; body: { name?: string; settings?: unknown } }> = [];

  beforeAll(async () => {
    const app = express.Router();
    const tenants = new Map([ALPHA, BRAVO].map((tenant) => [tenant.id, tenant]));
    const resource = (tenant: typeof ALPHA) => ({
      ...tenant,
      clerk_org_id: null,
      created_at: '2026-12-01T00:00:00.000Z',
      updated_at: '2026-12-01T00:00:00.000Z',
    });
    app.get('/api/v1/tenants/:id', (req, res) => {
      const tenant = tenants.get(req.params.id);
      if (!tenant) {
        res.status(404).json({ error: { code: 'not_found', message: 'no such tenant' } });
        return;
      }
      res.setHeader('etag', `"${tenant.subdomain}-1"`);
      res.json(resource(tenant));
    });
    app.patch('/api/v1/tenants/:id', express.json(), (req, res) => {
      patches.push({ tenantId: req.params.id, body: req.body });
      res.json(resource(tenants.get(req.params.id) ?? ALPHA));
    });
    standIn = await startStandInConsole(app);
    ({ base, browser } = standIn);
  }, 180_000);

  afterAll(async () => {
    await standIn?.close();
  });

  // Regression: index.html named no icon, so the browser asked for /favicon.ico, and every console
  // page logged a 404 among its errors (where an operator looks when something goes wrong).
  it('opens the sign-in page and a tenant page without a browser error', async () => {
    const { page } = browser;
    const before = browser.problems().length;
    await page.goto(`${base}/console/#/tenants/${ALPHA.id}/overview`);
    await page.fill('textarea[name=token]', consoleToken());
    await page.click('button:has-text("Use this token")');
    await page.locator('h1', { hasText: 'Alpha' }).waitFor({ timeout: 15_000 });
    // One more round trip from the page: what the browser fetched on its own has been answered by then.
    await page.evaluate(`fetch('/api/v1/tenants/${ALPHA.id}').then((response) => response.text())`);
    const problems = browser.problems().slice(before);
    await page.click('button:has-text("Sign out")');
    await page.locator('textarea[name=token]').waitFor({ timeout: 15_000 });
    expect(problems).toEqual([]);
  }, 60_000);

  // Regression: the tenant page was not remounted when only its tenant id changed, so its tabs kept the
  // first tenant's state: the overview form showed Alpha's name and settings under Bravo's heading, and
  // Save wrote them into Bravo (with Bravo's ETag, so nothing refused it).
  it("shows and saves the second tenant's own name and settings, never the first one's", async () => {
    const { page } = browser;
    await page.goto(`${base}/console/#/tenants/${ALPHA.id}/overview`);
    await page.fill('textarea[name=token]', consoleToken());
    await page.click('button:has-text("Use this token")');
    await page.locator('h1', { hasText: 'Alpha' }).waitFor({ timeout: 15_000 });
    expect(await page.inputValue('input[name=name]')).toBe('Alpha');

    // In the page (the root tsconfig has no DOM types): the hash alone changes, as a pasted link does.
    await page.evaluate(`window.location.hash = ${JSON.stringify(`#/tenants/${BRAVO.id}/overview`)}`);
    await page.locator('h1', { hasText: 'Bravo' }).waitFor({ timeout: 15_000 });
    expect(await page.inputValue('input[name=name]')).toBe('Bravo');
    expect(await page.inputValue('textarea[name=settings]')).toContain('192.0.2.0/24');

    await page.click('button:has-text("Save")');
    await page.locator('.notice.ok', { hasText: 'Saved' }).waitFor({ timeout: 15_000 });
    expect(patches).toEqual([{ tenantId: BRAVO.id, body: { name: 'Bravo', settings: BRAVO.settings } }]);
    // Signed out again: each test here starts on the sign-in page, whichever ran before it.
    await page.click('button:has-text("Sign out")');
    await page.locator('textarea[name=token]').waitFor({ timeout: 15_000 });
  }, 60_000);
});
