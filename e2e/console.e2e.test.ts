import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import {
  type MakeDevProcess,
  makeDevDataDir,
  makeDevEnv,
  makeDevReady,
  startMakeDev,
  stopMakeDev,
} from '@vantageedge/dev/testing/make-dev';
import { launchChromium, type TestBrowser } from '@vantageedge/shared/testing/browser';
import { createClerkTestKeys, signClerkToken } from '@vantageedge/shared/testing/clerk-tokens';
import {
  CLIENT_AUTH_USAGE,
  createTestCa,
  issueTestCertificate,
} from '@vantageedge/shared/testing/test-certificates';
import { outsideTheUtcDaysLast } from '@vantageedge/shared/testing/utc-day';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONSOLE_OUT_DIR, ensureConsoleBuilt } from '../scripts/console-build.js';
import {
  eventually,
  type GatewayReplica,
  REPO_ROOT,
  startOrigin,
  type TestOrigin,
  TestSystem,
} from './harness.js';

/**
 * The web console in a real browser (Debian's chromium through playwright-core) against the product
 * started as processes: a person signs in, creates a tenant, an origin and a route in the console, and
 * the gateways serve the route; edits it to need an API key, issues one (its plaintext shown once) and
 * calls the route with it; reads the rollout per replica and the audit log with a filter; gives a key a
 * daily quota and sees it used up, reads the usage, compares config versions and rolls back, and the
 * gateways serve the rolled-back route. make dev's development sign-in works under make dev and is
 * offered nowhere else. Screenshots of each page are kept in .data/console-screenshots/.
 */

const SCREENSHOTS = path.join(REPO_ROOT, '.data', 'console-screenshots');
/** The longest the quota journey takes, from the key's first request to the page showing it used up. */
const QUOTA_SPAN_MS = 150_000;

async function text(page: Page, selector: string): Promise<string> {
  const locator = page.locator(selector).first();
  await locator.waitFor({ timeout: 15_000 });
  return (await locator.textContent()) ?? '';
}

/** `make dev` as a person starts it, on ports and a data folder of its own, serving the console. */
interface MakeDev extends MakeDevProcess {
  consoleUrl: string;
  dataDir: string;
}

async function startMakeDevWithConsole(): Promise<MakeDev> {
  const dataDir = makeDevDataDir('ve-console-dev-');
  const env = await makeDevEnv(dataDir, { CLERK_PUBLISHABLE_KEY: '', CONSOLE_DIR: DEFAULT_CONSOLE_OUT_DIR });
  const consoleUrl = `http://127.0.0.1:${env['CONTROL_PLANE_PORT']}/console/`;
  return { ...startMakeDev(env), consoleUrl, dataDir };
}

// One browser for the file. make dev starts with the file: it takes seconds to come up (an embedded
// PostgreSQL initialised, its migrations, the demo data), which it spends while the journey runs.
let browser: TestBrowser;
let makeDev: MakeDev | undefined;

beforeAll(async () => {
  await ensureConsoleBuilt();
  makeDev = await startMakeDevWithConsole();
  browser = await launchChromium({ screenshotDir: SCREENSHOTS });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  if (makeDev) {
    await stopMakeDev(makeDev);
    rmSync(makeDev.dataDir, { recursive: true, force: true });
  }
});

describe('the web console against the running product', () => {
  let system: TestSystem;
  let gateways: GatewayReplica[];
  let origin: TestOrigin;
  const subdomain = `console-${Date.now().toString(36)}`;
  let tenantId = '';

  beforeAll(async () => {
    origin = await startOrigin('console-origin');
    system = await TestSystem.create({
      // The key's live quota is read from Redis: time enough for it on a machine shared by many runs.
      controlPlaneEnv: {
        CONSOLE_DIR: DEFAULT_CONSOLE_OUT_DIR,
        REDIS_COMMAND_TIMEOUT_MS: '5000',
        // Outside make dev, dev mode does not give the control plane a development sign-in.
        VANTAGEEDGE_DEV_MODE: 'true',
        // Certificates (an origin's client certificate) can be uploaded.
        CERTIFICATE_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      },
      // Usage reaches the console within a second or two; quota checks get time on a busy machine.
      gatewayEnv: { GATEWAY_USAGE_FLUSH_INTERVAL_MS: '500', REDIS_COMMAND_TIMEOUT_MS: '5000' },
    });
    await system.startControlSide();
    gateways = await system.startGateways(2);
  }, 180_000);

  afterAll(async () => {
    await system?.close();
    await origin?.close();
  });

  it('offers no development sign-in, and its endpoint does not exist', async () => {
    const config = await (await fetch(`${system.controlPlaneUrl}/console/config.json`)).json();
    expect(config).toEqual({ dev_sign_in: false, clerk: null });
    expect((await fetch(`${system.controlPlaneUrl}/console/dev-session`, { method: 'POST' })).status).toBe(
      404,
    );
  });

  it('creates a route that both gateways serve, then guards it with an API key shown once', async () => {
    const { page } = browser;
    const fail = (what: string) => `${what}\nbrowser: ${browser.problems().join('\n')}`;

    // ---- sign in with a pasted Clerk session token ----
    await page.goto(`${system.controlPlaneUrl}/console/`);
    await page.fill('textarea[name=token]', 'not-a-token');
    await page.click('button:has-text("Use this token")');
    expect(await text(page, '.sign-in .field-issue')).toContain('is not a session token');
    await page.fill('textarea[name=token]', await system.token());
    await page.click('button:has-text("Use this token")');
    expect(await text(page, '#signed-in-as')).toContain(system.adminUserId);
    await browser.screenshot('01-tenants-empty');

    // ---- tenant ----
    await page.fill('#create-tenant input[name=name]', 'Console Corp');
    await page.fill('#create-tenant input[name=subdomain]', 'Not A Label');
    await page.click('#create-tenant button[type=submit]');
    expect(await text(page, '#create-tenant .field-issue[data-field=subdomain]')).toContain(
      'lowercase DNS label',
    );
    await page.fill('#create-tenant input[name=subdomain]', subdomain);
    await page.click('#create-tenant button[type=submit]');
    tenantId = (await text(page, '#tenant-id')).trim();
    expect(tenantId).toMatch(/^[0-9a-f-]{36}$/);
    await browser.screenshot('02-tenant-overview');

    // ---- origin ----
    await page.click('a[data-tab=origins]');
    await page.fill('#create-origin input[name=name]', 'backend');
    await page.fill('#create-origin input[name=url]', origin.url);
    await page.click('#create-origin button[type=submit]');
    expect(await text(page, '#origins')).toContain(origin.url);
    await browser.screenshot('03-origins');

    // ---- route: the editor checks with the API's own schema before sending ----
    await page.click('a[data-tab=routes]');
    await page.fill('#create-route input[name=path_pattern]', 'console-e2e/*');
    expect(await text(page, '#create-route .field-issue[data-field=path_pattern]')).toContain(
      'must start with /',
    );
    await page.fill('#create-route textarea[name=rate_limit]', '{ "requests_per_second": -1 }');
    expect(await text(page, '#create-route .field-issue[data-field=rate_limit]')).toContain(
      'requests_per_second',
    );
    expect(await page.locator('#create-route button[type=submit]').isDisabled()).toBe(true);
    await browser.screenshot('04-route-editor-invalid');
    await page.fill('#create-route input[name=path_pattern]', '/console-e2e/*');
    await page.fill('#create-route textarea[name=rate_limit]', '');
    await page.check('#create-route input[name=method-GET]');
    await page.click('#create-route button[type=submit]');
    await page.locator('tr[data-route="/console-e2e/*"]').waitFor();
    await browser.screenshot('05-routes');

    // ---- both gateways serve it ----
    for (const gateway of gateways) {
      await eventually(
        `replica ${gateway.id} serves the route made in the console`,
        async () => {
          const response = await gateway.get(subdomain, '/console-e2e/hello');
          return response.status === 200 && response.body.includes('console-origin');
        },
        { system },
      );
    }

    // ---- rollout per replica ----
    await page.click('a[data-tab=rollout]');
    await page.locator('#rollout').waitFor();
    await eventually(fail('both replicas up to date in the rollout page'), async () => {
      const rows = await page.locator('#rollout tbody tr').allTextContents();
      return rows.length === 2 && rows.every((row) => row.includes('yes'));
    });
    for (const gateway of gateways) expect(await text(page, '#rollout')).toContain(gateway.id);
    await browser.screenshot('06-rollout');

    // ---- edit the route to need an API key (PATCH with If-Match) ----
    await page.click('a[data-tab=routes]');
    await page.click('tr[data-route="/console-e2e/*"] button:has-text("Edit")');
    await page.selectOption('form[id^=edit-route] select[name=auth_mode]', 'apikey_required');
    await page.click('form[id^=edit-route] button[type=submit]');
    await eventually(fail('the routes table shows the new auth mode'), async () =>
      (await text(page, 'tr[data-route="/console-e2e/*"]')).includes('apikey_required'),
    );
    for (const gateway of gateways) {
      await eventually(
        `replica ${gateway.id} asks for an API key`,
        async () => (await gateway.get(subdomain, '/console-e2e/hello')).status === 401,
        { system },
      );
    }

    // ---- an API key: the plaintext is shown once ----
    await page.click('a[data-tab=keys]');
    await page.fill('#create-api-key input[name=name]', 'console key');
    await page.click('#create-api-key button[type=submit]');
    const plaintext = (await text(page, '#issued-key')).trim();
    expect(plaintext.length).toBeGreaterThan(20);
    await browser.screenshot('07-api-key-issued');
    for (const gateway of gateways) {
      await eventually(
        `replica ${gateway.id} accepts the key shown in the console`,
        async () =>
          (await gateway.get(subdomain, '/console-e2e/hello', { 'x-api-key': plaintext })).status === 200,
        { system },
      );
    }
    await page.click('button:has-text("I have stored it")');
    await page.reload();
    await page.locator('#api-keys').waitFor();
    expect(await page.content()).not.toContain(plaintext);
    expect(await text(page, 'tr[data-key="console key"]')).toContain('active');

    // ---- audit log with a filter ----
    await page.click('a[data-tab=audit]');
    await page.locator('#audit-log').waitFor();
    await page.fill('#audit-filters input[name=event_type]', 'RouteUpdated');
    await page.click('#audit-filters button[type=submit]');
    await eventually(fail('the audit log shows only RouteUpdated'), async () => {
      const types = await page
        .locator('#audit-log tbody tr')
        .evaluateAll((rows) => rows.map((row) => row.getAttribute('data-event')));
      return types.length === 1 && types[0] === 'RouteUpdated';
    });
    await browser.screenshot('08-audit-log-filtered');

    // ---- custom domain: claimed, pending, with its DNS proof ----
    await page.click('a[data-tab=domains]');
    await page.fill('#add-domain input[name=domain]', `${subdomain}.example.com`);
    await page.click('#add-domain button[type=submit]');
    expect(await text(page, '#domains')).toContain(`_vantageedge-challenge.${subdomain}.example.com`);
    await browser.screenshot('09-domains');

    expect(browser.problems().filter((problem) => !problem.includes('status of 4'))).toEqual([]);
  }, 240_000);

  it("shows a key's quota and the usage, compares config versions and rolls back", async () => {
    const { page } = browser;
    const fail = (what: string) => `${what}\nbrowser: ${browser.problems().join('\n')}`;
    expect(tenantId).not.toBe('');
    // The key's quota counts per UTC day: a midnight before the page shows it used up starts it afresh.
    await outsideTheUtcDaysLast(QUOTA_SPAN_MS);

    // ---- a key with a daily quota: both gateways count it in one counter ----
    await page.click('a[data-tab=keys]');
    await page.fill('#create-api-key input[name=name]', 'metered key');
    await page.fill('#create-api-key input[name=requests_per_day]', '0');
    await page.click('#create-api-key button[type=submit]');
    expect(await text(page, '#create-api-key .field-issue')).toContain('>=1');
    await page.fill('#create-api-key input[name=requests_per_day]', '5');
    await page.click('#create-api-key button[type=submit]');
    const metered = (await text(page, '#issued-key')).trim();
    await page.click('button:has-text("I have stored it")');
    // A 401 (key not there yet) costs no quota; each replica's first 200 costs one.
    for (const gateway of gateways) {
      await eventually(
        `replica ${gateway.id} accepts the metered key`,
        async () =>
          (await gateway.get(subdomain, '/console-e2e/metered', { 'x-api-key': metered })).status === 200,
        { system },
      );
    }
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const gateway = gateways[i % 2]!;
      statuses.push((await gateway.get(subdomain, '/console-e2e/metered', { 'x-api-key': metered })).status);
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    await eventually(
      fail('the keys table shows the quota used up'),
      async () => {
        await page.reload();
        const quota = page.locator('tr[data-key="metered key"] .quota');
        await quota.waitFor({ timeout: 5_000 });
        const shown = (await quota.textContent()) ?? '';
        if (!shown.includes('0 of 5 left this day')) {
          const keys = await system.admin('GET', `/api/v1/api-keys?tenant_id=${tenantId}`);
          const id = (keys.body['data'] as Array<{ id: string; name: string }>).find(
            (key) => key.name === 'metered key',
          )?.id;
          const api = await system.admin('GET', `/api/v1/api-keys/${id}`);
          throw new Error(
            `the quota column says "${shown}"; the API: ${JSON.stringify(api.body['quota_usage'])}`,
          );
        }
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    await browser.screenshot('11-api-key-quota');

    // ---- usage: the requests of this journey, by route, with a chart ----
    await page.click('a[data-tab=usage]');
    await eventually(
      fail('the usage page counts the route made in the console'),
      async () => {
        await page.click('#usage-filters button:has-text("Refresh")');
        await page.locator('#usage-total').waitFor({ timeout: 5_000 });
        const total = Number((await text(page, '#usage-total')).trim());
        // Before the first usage arrives there is no by-route table: reading it would wait out
        // Playwright's 30-second default for an element that is not coming.
        if (total < 10) return false;
        const routes =
          (await page
            .locator('#usage-by-route')
            .textContent()
            .catch(() => '')) ?? '';
        return total >= 10 && routes.includes('/console-e2e/*');
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(Number((await text(page, '#usage-summary dd[data-class="4xx"]')).trim())).toBeGreaterThan(0);
    expect(await page.locator('#usage-chart canvas').count()).toBeGreaterThan(0);
    expect(await text(page, '#usage-by-key')).toContain('metered key');
    await browser.screenshot('12-usage');

    // ---- explain: what the gateways do with a request that brings no API key to the keyed route ----
    await page.click('a[data-tab=explain]');
    await page.fill('#explain-form input[name=path]', '/console-e2e/orders?page=2');
    await page.click('#explain-form button[type=submit]');
    await page.locator('#explain-decision').waitFor();
    expect(await text(page, '#explain-decision')).toContain('401');
    expect(await text(page, '#explain-routes tr[data-selected=true]')).toContain('/console-e2e/*');
    // The route policies in force: no route timeouts, so the origin's (its connect capped at 10 s).
    expect(await text(page, '#explain-policies dd[data-policy=Timeouts]')).toMatch(
      /^connect 10000 ms, response headers \d+ ms, idle \d+ ms \(origin\)$/,
    );
    for (const gateway of gateways)
      expect((await gateway.get(subdomain, '/console-e2e/orders?page=2')).status).toBe(401);
    await browser.screenshot('13a-explain');

    // ---- config history: the diff since the route was created, then a rollback to that moment ----
    await page.click('a[data-tab=history]');
    const created = page.locator('#config-history tr[data-event=RouteCreated]').first();
    await created.waitFor();
    await created.locator('button:has-text("Compare with now")').click();
    const diff = await text(page, '#config-diff');
    expect(diff).toContain('auth_mode');
    expect(diff).toContain('apikey_required');
    await browser.screenshot('13-config-diff');

    await created.locator('button:has-text("Roll back to here")').click();
    expect(await text(page, '#rollback-plan')).toContain('auth_mode');
    await browser.screenshot('14-rollback-plan');
    await page.click('#confirm-rollback');
    expect(await text(page, '#rollback-done')).toContain('Rolled back to the config of position');
    // The route is public again on both replicas: no key needed.
    for (const gateway of gateways) {
      await eventually(
        `replica ${gateway.id} serves the rolled-back route without a key`,
        async () => (await gateway.get(subdomain, '/console-e2e/hello')).status === 200,
        { system },
      );
    }
    await eventually(
      fail('the history lists the rollback'),
      async () => (await page.locator('#config-history tr[data-event=ConfigRolledBack]').count()) === 1,
    );
    await browser.screenshot('15-rolled-back');
    expect(browser.problems().filter((problem) => !problem.includes('status of 4'))).toEqual([]);
  }, 390_000); // 240 s, and QUOTA_SPAN_MS to wait out a midnight

  it("edits an origin's TLS settings: refuses a bad CA bundle at its field, presents a chosen certificate", async () => {
    const { page } = browser;
    expect(tenantId).not.toBe('');
    const clientCa = await createTestCa('Console Client CA');
    const client = await issueTestCertificate(clientCa, {
      dnsNames: [],
      commonName: 'console-gateway-client',
      extendedKeyUsages: [CLIENT_AUTH_USAGE],
    });
    const uploaded = await system.admin('POST', '/api/v1/certificates', {
      body: { tenant_id: tenantId, certificate_pem: client.chainPem, private_key_pem: client.privateKeyPem },
    });
    expect(uploaded.status, uploaded.text).toBe(201);
    const certificateId = uploaded.body['id'] as string;

    await page.click('a[data-tab=routes]');
    await page.click('a[data-tab=origins]');
    expect(await text(page, 'tr[data-origin=backend] .origin-tls-summary')).toBe('verified');
    await page.click('tr[data-origin=backend] button:has-text("TLS…")');
    const form = '#edit-origin-tls[data-origin=backend]';
    await page.fill(`${form} textarea[name="tls.ca_certificates"]`, 'not a certificate');
    await page.click(`${form} button[type=submit]`);
    expect(await text(page, `${form} .field-issue[data-field="tls.ca_certificates"]`)).toContain(
      'no PEM certificate block',
    );
    await page.fill(`${form} textarea[name="tls.ca_certificates"]`, '');
    await page.fill(`${form} input[name="tls.server_name"]`, 'backend.internal');
    await page.selectOption(`${form} select[name="tls.client_certificate_id"]`, certificateId);
    await page.click(`${form} button[type=submit]`);
    await page.locator(form).waitFor({ state: 'detached' });
    // The form closes as the update is answered; the list shows it once it has read the origin again.
    await expect
      .poll(() => text(page, 'tr[data-origin=backend] .origin-tls-summary'))
      .toBe('verified, for backend.internal, client certificate CN=console-gateway-client');
    await browser.screenshot('16-origin-tls');

    const origins = await system.admin('GET', `/api/v1/origins?tenant_id=${tenantId}`);
    expect((origins.body['data'] as Array<{ tls: unknown }>)[0]?.tls).toEqual({
      verify: true,
      ca_certificates: null,
      server_name: 'backend.internal',
      verify_depth: null,
      client_certificate_id: certificateId,
    });
  });

  it('sends the person back to sign in when the control plane refuses the token', async () => {
    const { page } = browser;
    // The admin's token signed by another key: well-formed, not expired, refused by the control plane.
    const foreign = await signClerkToken(await createClerkTestKeys(), { userId: system.adminUserId });
    await page.click('button:has-text("Sign out")');
    await page.fill('textarea[name=token]', foreign);
    await page.click('button:has-text("Use this token")');
    expect(await text(page, '.sign-in .notice')).toContain('did not accept the session token');
  });
});

describe('the console under make dev', () => {
  it('signs in with the development sign-in and shows the demo tenant', async () => {
    const dev = makeDev!;
    await makeDevReady(dev, 120_000);
    expect(dev.output()).toContain(dev.consoleUrl);

    const { page } = browser;
    await page.goto(dev.consoleUrl);
    await page.click('#dev-sign-in');
    expect(await text(page, '#signed-in-as')).toContain('(development)');
    expect(await text(page, '#tenants')).toContain('demo');
    await browser.screenshot('10-make-dev-signed-in');
  }, 180_000);
});
