import type { TestBrowser } from '@vantageedge/shared/testing/browser';
import { explanationWithoutRoute } from '@vantageedge/shared/testing/explanations';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTenantTab, type StandInConsole, startStandInConsole } from './stand-in-console.js';
import { ordersOrigin, tenantResource } from './stand-in-resources.js';

/**
 * The built console in chromium against a stand-in admin API whose tenant-written text carries
 * characters a browser draws as nothing or that reorder what is drawn: a tenant name ending in a
 * Hangul filler (it reads as another tenant's name) and a client certificate whose subject holds a
 * right-to-left override (`evil\u202emoc.elgoog` is drawn as `evilgoogle.com`), and answers that echo
 * such text back (a field's problem, the reasons of an explained request). The console shows each such
 * character as a visible escape, as the CLI does.
 */

const ACME = tenantResource('11111111-1111-4111-8111-111111111111', 'Acme', 'acme');
const LOOKALIKE = tenantResource('22222222-2222-4222-8222-222222222222', 'Acme\u3164', 'acme-lookalike');
const CERTIFICATE_ID = '33333333-3333-4333-8333-333333333333';
const ORIGIN = {
  ...ordersOrigin('44444444-4444-4444-8444-444444444444', LOOKALIKE.id),
  name: 'orders\u200b',
  // Drawn raw as `http://orders.internal:8080/v1`, a path it does not name.
  targets: [{ url: 'http://orders.internal:8080/\u202e1v', weight: 1 }],
  tls: {
    verify: true,
    ca_certificates: null,
    server_name: null,
    verify_depth: null,
    client_certificate_id: CERTIFICATE_ID,
  },
};
const CERTIFICATE = {
  id: CERTIFICATE_ID,
  tenant_id: LOOKALIKE.id,
  domains: [],
  certificate_pem: '',
  fingerprint_sha256: 'AA:BB',
  subject: 'CN=evil\u202emoc.elgoog',
  issuer: 'CN=evil\u202emoc.elgoog',
  serial_number: '01',
  dns_names: ['client.example.com'],
  key_type: 'ec p-256',
  not_before: '2026-12-01T00:00:00.000Z',
  not_after: '2027-12-01T00:00:00.000Z',
  created_at: '2026-12-01T00:00:00.000Z',
  updated_at: '2026-12-01T00:00:00.000Z',
};

const RAW_HIDDEN = /[\u200b\u202e\u3164]/;

/** An explained request whose reasons echo the host and header the viewer typed, overrides and all. */
const EXPLANATION = explanationWithoutRoute({
  tenantId: LOOKALIKE.id,
  host: 'acme-lookalike.localhost',
  hostReason: 'the subdomain "acme-lookalike\u200b" is this tenant\'s',
  path: '/orders',
  routes: [
    {
      id: '55555555-5555-4555-8555-555555555555',
      path_pattern: '/orders',
      methods: [],
      priority: 0,
      rank: 1,
      method_matches: true,
      path_matches: true,
      selected: false,
      reason: 'the header "x-tier" is "evil\u202emoc.elgoog" here, not "gold"',
    },
  ],
  decision: {
    stage: 'route',
    status: 404,
    code: 'route_not_found',
    message: 'no route matches the header "evil\u202emoc.elgoog"',
  },
});

describe('tenant text a browser would draw as nothing or reorder', () => {
  let standIn: StandInConsole | undefined;
  let browser: TestBrowser;

  beforeAll(async () => {
    const app = express.Router();
    const page = (data: unknown[]) => ({ data, next_cursor: null });
    app.get('/api/v1/tenants', (_req, res) => res.json(page([ACME, LOOKALIKE])));
    app.get('/api/v1/tenants/:id', (req, res) => {
      res.setHeader('etag', '"1"');
      res.json(req.params.id === ACME.id ? ACME : LOOKALIKE);
    });
    app.get('/api/v1/origins', (_req, res) => res.json(page([ORIGIN])));
    app.get('/api/v1/origins/:id', (_req, res) => {
      res.setHeader('etag', '"1"');
      res.json(ORIGIN);
    });
    app.get('/api/v1/certificates', (_req, res) => res.json(page([CERTIFICATE])));
    app.get('/api/v1/routes', (_req, res) => res.json(page([])));
    app.patch('/api/v1/tenants/:id', (_req, res) => {
      res.status(400).json({
        error: {
          code: 'validation_failed',
          message: 'the request is invalid',
          details: [{ field: 'settings.evil\u202emoc', issue: 'is not a setting: "evil\u202emoc"' }],
        },
      });
    });
    app.post('/api/v1/tenants/:id/explain', (_req, res) => res.json(EXPLANATION));
    standIn = await startStandInConsole(app);
    ({ browser } = standIn);
  }, 180_000);

  afterAll(async () => {
    await standIn?.close();
  });

  it('tells a look-alike tenant name from the name it imitates, in the list and on its page', async () => {
    if (!standIn) throw new Error('the stand-in console did not start');
    await openTenantTab(standIn, LOOKALIKE.id, 'overview', 'Acme');
    const heading = (await browser.page.locator('h1').textContent()) ?? '';
    await browser.page.click('a:has-text("Tenants")');
    await browser.page.locator('#tenants tbody tr').nth(1).waitFor({ timeout: 15_000 });
    const names = await browser.page.locator('#tenants tbody tr td:first-child').allTextContents();
    expect(names).toEqual(['Acme', 'Acme\\u3164']);
    expect(heading).toContain('Acme\\u3164');
    expect(heading).not.toMatch(RAW_HIDDEN);
  }, 60_000);

  it("shows an origin's name, target URLs and its client certificate's subject with their hidden characters", async () => {
    if (!standIn) throw new Error('the stand-in console did not start');
    await openTenantTab(standIn, LOOKALIKE.id, 'origins', 'Acme');
    const row = browser.page.locator('#origins tbody tr').first();
    await row.waitFor({ timeout: 15_000 });
    const name = (await row.locator('td').first().textContent()) ?? '';
    const target = (await row.locator('td').nth(1).locator('code').textContent()) ?? '';
    const tls = (await row.locator('.origin-tls-summary').textContent()) ?? '';
    expect(name).toBe('orders\\u200b');
    expect(target).toBe('http://orders.internal:8080/\\u202e1v');
    expect(tls).toContain('client certificate CN=evil\\u202emoc.elgoog');
    expect(tls).not.toMatch(RAW_HIDDEN);
    await row.locator('button:has-text("TLS…")').click();
    const option =
      (await browser.page.locator('select[name="tls.client_certificate_id"] option').nth(1).textContent()) ??
      '';
    expect(option).toContain('CN=evil\\u202emoc.elgoog');
    expect(option).not.toMatch(RAW_HIDDEN);
    const heading = (await browser.page.locator('#edit-origin-tls h2').textContent()) ?? '';
    expect(heading).toBe('TLS of orders\\u200b');
  }, 60_000);

  // Regression: the route editor's origin picker listed the names raw, so a member who named an
  // origin `orders\u200b` (proxying to a host of theirs) had it picked for `orders`.
  it("shows the origins' names with their hidden characters in the route editor's origin picker", async () => {
    if (!standIn) throw new Error('the stand-in console did not start');
    await openTenantTab(standIn, LOOKALIKE.id, 'routes', 'Acme');
    const options = browser.page.locator('#create-route select[name="origin_id"] option');
    await options.first().waitFor({ state: 'attached', timeout: 15_000 });
    expect(await options.allTextContents()).toEqual(['orders\\u200b']);
  }, 60_000);

  it("shows a field's problem that echoes the viewer's input with its hidden characters", async () => {
    if (!standIn) throw new Error('the stand-in console did not start');
    await openTenantTab(standIn, LOOKALIKE.id, 'overview', 'Acme');
    await browser.page.fill('input[name="name"]', 'Acme renamed');
    await browser.page.click('button:has-text("Save")');
    const problem = browser.page.locator('.field-issue[data-field="settings"]');
    await problem.waitFor({ timeout: 15_000 });
    const text = (await problem.textContent()) ?? '';
    expect(text).toBe('evil\\u202emoc: is not a setting: "evil\\u202emoc"');
  }, 60_000);

  it("shows an explained request's decision and reasons with their hidden characters", async () => {
    if (!standIn) throw new Error('the stand-in console did not start');
    await openTenantTab(standIn, LOOKALIKE.id, 'explain', 'Acme');
    await browser.page.click('#explain-form button[type="submit"]');
    const decision = browser.page.locator('#explain-decision');
    await decision.waitFor({ timeout: 15_000 });
    expect(await decision.textContent()).toContain('no route matches the header "evil\\u202emoc.elgoog"');
    const summary = (await browser.page.locator('#explain-summary').textContent()) ?? '';
    expect(summary).toContain('the subdomain "acme-lookalike\\u200b" is this tenant\'s');
    const why = (await browser.page.locator('#explain-routes tbody td').last().textContent()) ?? '';
    expect(why).toBe('the header "x-tier" is "evil\\u202emoc.elgoog" here, not "gold"');
    expect(`${await decision.textContent()}${summary}${why}`).not.toMatch(RAW_HIDDEN);
  }, 60_000);
});
