import type { TestBrowser } from '@vantageedge/shared/testing/browser';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTenantTab, type StandInConsole, startStandInConsole } from './stand-in-console.js';
import { ordersOrigin, tenantResource } from './stand-in-resources.js';

/**
 * The built console in chromium against a stand-in admin API that answers a create only when the
 * test lets it, as a slow control plane does: what a form sent again (Enter pressed twice, a second
 * click) before the first answer arrives creates.
 */

const TENANT = tenantResource('abababab-abab-4bab-8bab-abababababab', 'Echo', 'echo');
const ORIGIN = ordersOrigin('cdcdcdcd-cdcd-4dcd-8dcd-cdcdcdcdcdcd', TENANT.id);

describe('the console on a slow control plane', () => {
  let standIn: StandInConsole | undefined;
  let browser: TestBrowser;
  const creates: Array<{ path: string; body: Record<string, unknown> }> = [];
  /** Creates wait here until the test answers them. */
  const heldCreates: Array<() => void> = [];
  let createHeld: () => void = () => {};

  beforeAll(async () => {
    const app = express.Router();
    app.get('/api/v1/tenants/:id', (_req, res) => {
      res.setHeader('etag', '"1"');
      res.json(TENANT);
    });
    app.get(['/api/v1/origins', '/api/v1/certificates', '/api/v1/api-keys'], (_req, res) => {
      res.json({ data: [], next_cursor: null });
    });
    app.post('/api/v1/api-keys', express.json(), (req, res) => {
      const n = creates.push({ path: req.path, body: req.body });
      heldCreates.push(() =>
        res
          .status(201)
          .json({ id: `key-${n}`, name: req.body.name, key: `ve_live_secret_${n}`, key_prefix: 've_live_' }),
      );
      createHeld();
    });
    app.patch('/api/v1/tenants/:id', express.json(), (req, res) => {
      creates.push({ path: req.path, body: req.body });
      heldCreates.push(() => res.setHeader('etag', '"2"').json({ ...TENANT, ...req.body }));
      createHeld();
    });
    app.post('/api/v1/origins', express.json(), (req, res) => {
      creates.push({ path: req.path, body: req.body });
      heldCreates.push(() => res.status(201).json({ ...ORIGIN, name: req.body.name }));
      createHeld();
    });
    standIn = await startStandInConsole(app);
    ({ browser } = standIn);
  }, 180_000);

  afterAll(async () => {
    for (const answer of heldCreates.splice(0)) answer();
    await standIn?.close();
  });

  const openTab = (tab: string) => openTenantTab(standIn!, TENANT.id, tab, TENANT.subdomain);

  /** Presses Enter in `input` twice, the second time while the first create is still unanswered. */
  async function submitTwiceWhileSlow(input: string): Promise<void> {
    const { page } = browser;
    const held = new Promise<void>((resolve) => {
      createHeld = resolve;
    });
    await page.locator(input).press('Enter');
    await held;
    await page.locator(input).press('Enter');
    // One more round trip from the page: a second create, if one was sent, has reached the stand-in.
    await page.evaluate(`fetch('/api/v1/tenants/${TENANT.id}').then((response) => response.text())`);
  }

  // Regression: the create forms stayed enabled while their POST was on its way, so a second Enter
  // issued a second key, whose plaintext replaced the first one's: a live key nobody could read.
  it('issues one API key, and shows its plaintext, for a form sent twice', async () => {
    const { page } = browser;
    creates.length = 0;
    await openTab('keys');
    await page.fill('#create-api-key input[name=name]', 'ci');
    await submitTwiceWhileSlow('#create-api-key input[name=name]');
    for (const answer of heldCreates.splice(0)) answer();
    await page.locator('#issued-key').waitFor({ timeout: 15_000 });

    expect(creates.map((create) => create.path)).toEqual(['/api/v1/api-keys']);
    expect(await page.locator('#issued-key').textContent()).toBe('ve_live_secret_1');
  }, 60_000);

  it('creates one origin for a form sent twice', async () => {
    const { page } = browser;
    creates.length = 0;
    await openTab('origins');
    await page.fill('#create-origin input[name=name]', 'orders');
    await page.fill('#create-origin input[name=url]', 'http://orders.internal:8080');
    await submitTwiceWhileSlow('#create-origin input[name=url]');
    for (const answer of heldCreates.splice(0)) answer();
    // The form is emptied once the origin is created. (Not page.waitForFunction: its later checks are an
    // eval the console's CSP refuses, so it only passes when the first check does.)
    await expect.poll(() => page.inputValue('#create-origin input[name=name]'), { timeout: 15_000 }).toBe('');

    expect(creates.map((create) => create.path)).toEqual(['/api/v1/origins']);
  }, 60_000);

  // Regression: the tenant's edit form stayed enabled while its PATCH was on its way (the create
  // forms did not), so a second Enter sent the change again under an ETag the first one made stale.
  it('saves the tenant once for an edit sent twice', async () => {
    const { page } = browser;
    creates.length = 0;
    await openTab('overview');
    await page.fill('input[name=name]', 'Echo renamed');
    await submitTwiceWhileSlow('input[name=name]');
    for (const answer of heldCreates.splice(0)) answer();
    await page.locator('.notice.ok', { hasText: 'Saved' }).waitFor({ timeout: 15_000 });
    expect(creates.map((create) => create.path)).toEqual([`/api/v1/tenants/${TENANT.id}`]);
  }, 60_000);
});
