import type { TestBrowser } from '@vantageedge/shared/testing/browser';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleToken, type StandInConsole, startStandInConsole } from './stand-in-console.js';

/**
 * The built console in chromium with Clerk's sign-in, ClerkJS replaced by a stand-in served at the
 * Frontend API the publishable key names: what "Sign out" does while Clerk is still ending the session
 * (a network round trip to Clerk), and where Clerk is told to bring the browser afterwards.
 */

const FRONTEND_API = 'clerk.console-test.example';
const PUBLISHABLE_KEY = `pk_test_${Buffer.from(`${FRONTEND_API}$`).toString('base64')}`;

/**
 * A signed-in ClerkJS whose signOut ends the session only when the test calls `finish` on it, as the
 * real one does once Clerk's Frontend API has answered; `clerkEndSession()` ends it as Clerk does when
 * it expires or is revoked (or signed out in another tab) while the page is open.
 */
function standInClerkJs(token: string): string {
  return `(() => {
    let signedIn = true;
    window.clerkSignOuts = [];
    window.clerkEndSession = () => { signedIn = false; };
    window.Clerk = {
      get user() { return signedIn ? { id: 'user_platform_admin' } : null; },
      get session() { return signedIn ? { getToken: async () => ${JSON.stringify(token)} } : null; },
      load: async () => {},
      redirectToSignIn: async () => {},
      signOut: (options) => new Promise((resolve) => {
        window.clerkSignOuts.push({ options, finish: () => { signedIn = false; resolve(); } });
      }),
    };
  })();`;
}

describe('signing out of the console signed in with Clerk', () => {
  let standIn: StandInConsole | undefined;
  let browser: TestBrowser;
  let base = '';

  beforeAll(async () => {
    const app = express.Router();
    app.get('/api/v1/tenants', (_req, res) => {
      res.json({ data: [], next_cursor: null });
    });
    standIn = await startStandInConsole(app, { clerkPublishableKey: PUBLISHABLE_KEY });
    ({ base, browser } = standIn);
    const script = standInClerkJs(consoleToken());
    await browser.context.route(`https://${FRONTEND_API}/**`, (route) =>
      route.fulfill({
        contentType: 'text/javascript',
        headers: { 'access-control-allow-origin': '*' },
        body: script,
      }),
    );
  }, 180_000);

  afterAll(async () => {
    await standIn?.close();
  });

  // Regression: Sign out did not wait for Clerk, so the sign-in page found Clerk's session still there
  // and signed the person straight back in; and Clerk, told nothing, then took the browser to the
  // site's root, which the control plane does not serve.
  it('stays signed out while Clerk ends the session, then comes back to the console', async () => {
    const { page } = browser;
    // From another document: a new hash alone would keep the ClerkJS of a test that ran before.
    await page.goto('about:blank');
    await page.goto(`${base}/console/#/tenants`);
    await page.locator('#signed-in-as', { hasText: 'user_platform_admin' }).waitFor({ timeout: 15_000 });

    await page.click('button:has-text("Sign out")');
    await page.locator('textarea[name=token]').waitFor({ timeout: 15_000 });
    // One more round trip from the page and a frame: the sign-in page's own work has run by their end.
    await page.evaluate(() => fetch('/console/config.json').then((response) => response.text()));
    await page.evaluate('new Promise((resolve) => requestAnimationFrame(resolve))');
    expect(await page.locator('#signed-in-as').count()).toBe(0);

    const signOuts = (await page.evaluate(
      'window.clerkSignOuts.map((signOut) => signOut.options ?? null)',
    )) as Array<{ redirectUrl?: string } | null>;
    expect(signOuts).toEqual([{ redirectUrl: `${base}/console/#/tenants` }]);

    await page.evaluate('window.clerkSignOuts[0].finish()');
    await page.evaluate('new Promise((resolve) => requestAnimationFrame(resolve))');
    expect(await page.locator('#signed-in-as').count()).toBe(0);
    expect(await page.locator('button:has-text("Sign in")').count()).toBe(1);
  }, 60_000);

  // Regression: with the Clerk session gone there was no token to send, and every page and button
  // answered "the Clerk session has ended: sign in again" while the console still showed the person
  // signed in, with no way to sign in but to find Sign out first.
  it('comes back to the sign-in page when the Clerk session ends while the page is open', async () => {
    const { page } = browser;
    // From another document: a new hash alone would keep the previous test's (signed-out) ClerkJS.
    await page.goto('about:blank');
    await page.goto(`${base}/console/#/tenants`);
    await page.locator('#signed-in-as', { hasText: 'user_platform_admin' }).waitFor({ timeout: 15_000 });

    await page.evaluate('window.clerkEndSession()');
    await page.evaluate(
      `window.location.hash = '#/tenants/${'1'.repeat(8)}-1111-4111-8111-${'1'.repeat(12)}/overview'`,
    );
    await page.locator('button:has-text("Sign in")').waitFor({ timeout: 15_000 });
    expect(await page.locator('#signed-in-as').count()).toBe(0);
    expect(await page.locator('main.sign-in .notice').first().textContent()).toContain(
      'Clerk session has ended',
    );
  }, 60_000);
});
