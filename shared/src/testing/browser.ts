import { access, constants, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';

/**
 * A real browser for end-to-end tests: Debian's chromium (`make console-browser` installs it; no
 * browser download) driven by playwright-core, headless, in a fresh profile, with the flags that
 * keep it off the network except for the pages the test opens.
 */
export const CHROMIUM_PATH = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface TestBrowser {
  page: Page;
  context: BrowserContext;
  /** Saves a full-page PNG as `<screenshotDir>/<name>.png` (kept as a test artifact). */
  screenshot(name: string): Promise<string>;
  /** Browser console errors and failed requests seen so far (for assertion messages). */
  problems(): string[];
  close(): Promise<void>;
}

export async function launchChromium({ screenshotDir }: { screenshotDir: string }): Promise<TestBrowser> {
  // No silent skip: without the browser the console's tests fail and say how to get it.
  await access(CHROMIUM_PATH, constants.X_OK).catch(() => {
    throw new Error(`no chromium at ${CHROMIUM_PATH}: run \`make console-browser\` (or set CHROMIUM_PATH)`);
  });
  const userDataDir = await mkdtemp(path.join(os.tmpdir(), 've-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1280, height: 900 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const seen: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') seen.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => seen.push(`page error: ${error.message}`));
  await mkdir(screenshotDir, { recursive: true });
  return {
    page,
    context,
    async screenshot(name) {
      const file = path.join(screenshotDir, `${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      return file;
    },
    problems: () => [...seen],
    async close() {
      await context.close().catch(() => {});
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}
