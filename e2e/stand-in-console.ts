import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createConsoleRouter } from '@vantageedge/control-plane/http/console-router';
import { launchChromium, type TestBrowser } from '@vantageedge/shared/testing/browser';
import express from 'express';
import { DEFAULT_CONSOLE_OUT_DIR, ensureConsoleBuilt } from '../scripts/console-build.js';

/** The built console served beside a stand-in admin API, and a chromium to drive it. */
export interface StandInConsole {
  /** `http://127.0.0.1:<port>`: the console is at `${base}/console/`. */
  readonly base: string;
  readonly browser: TestBrowser;
  close(): Promise<void>;
}

/**
 * Builds the console when its sources are newer than the build, serves it as the control plane does,
 * with `api` (the admin API routes a test needs) behind it, and launches chromium. With
 * `clerkPublishableKey` the console offers Clerk's sign-in and loads ClerkJS from the Frontend API
 * the key names (a test serves a stand-in there with the browser context's `route`).
 */
export async function startStandInConsole(
  api: express.Router,
  options: { clerkPublishableKey?: string } = {},
): Promise<StandInConsole> {
  await ensureConsoleBuilt();
  const app = express();
  app.use(
    createConsoleRouter({
      directory: DEFAULT_CONSOLE_OUT_DIR,
      clerkPublishableKey: options.clerkPublishableKey,
    }),
  );
  app.use(api);
  const server = await new Promise<Server>((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  const browser = await launchChromium({
    screenshotDir: path.join(DEFAULT_CONSOLE_OUT_DIR, '..', '..', '.data', 'console-screenshots'),
  });
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    browser,
    async close() {
      await browser.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A session token as the console reads it (it verifies nothing: the admin API does). */
export function consoleToken(): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const exp = Math.floor(Date.now() / 1000) + 3600;
  return `${part({ alg: 'RS256' })}.${part({ sub: 'user_platform_admin', exp })}.c2lnbmF0dXJl`;
}

/**
 * Opens `tab` of a tenant's page (from another document: a new hash alone would keep the previous
 * test's console as it was), signing in with a console token when asked, and waits for the page's
 * heading to name `heading` (the tenant's name or subdomain).
 */
export async function openTenantTab(
  standIn: StandInConsole,
  tenantId: string,
  tab: string,
  heading: string,
): Promise<void> {
  const { page } = standIn.browser;
  await page.goto('about:blank');
  await page.goto(`${standIn.base}/console/#/tenants/${tenantId}/${tab}`);
  await page.locator('textarea[name=token], #signed-in-as').first().waitFor({ timeout: 15_000 });
  if (await page.locator('textarea[name=token]').isVisible()) {
    await page.fill('textarea[name=token]', consoleToken());
    await page.click('button:has-text("Use this token")');
  }
  await page.locator('h1', { hasText: heading }).waitFor({ timeout: 15_000 });
}
