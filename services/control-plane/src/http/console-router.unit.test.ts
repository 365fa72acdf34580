import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { plainHttpRequest } from '@vantageedge/shared/testing/plain-http';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConsoleRouterDeps, createConsoleRouter, isLoopbackPeer } from './console-router.js';
import { clerkFrontendApi } from './console-settings.js';
import { createErrorHandler } from './errors.js';

const publishableKeyFor = (host: string) => `pk_live_${Buffer.from(`${host}$`).toString('base64')}`;

let built: string;
const servers: Server[] = [];

async function serve(deps: Partial<ConsoleRouterDeps> = {}, listenOn = '127.0.0.1'): Promise<string> {
  const app = express();
  app.use(createConsoleRouter({ directory: built, clerkPublishableKey: undefined, ...deps }));
  app.use(createErrorHandler());
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, listenOn, () => resolve(s));
  });
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  built = await mkdtemp(path.join(os.tmpdir(), 've-console-'));
  await mkdir(path.join(built, 'assets'));
  await writeFile(path.join(built, 'index.html'), '<!doctype html><div id="app"></div>');
  await writeFile(path.join(built, 'assets', 'index-abc123.js'), 'console.log(1)');
  // As a build from before the maps were moved out of the served folder holds them.
  await writeFile(
    path.join(built, 'assets', 'index-abc123.js.map'),
    '{"version":3,"sources":["../../services/console/src/main.tsx"],"sourcesContent":["secret"]}',
  );
});
afterAll(async () => {
  for (const server of servers) server.close();
  await rm(built, { recursive: true, force: true });
});

describe('the console at /console', () => {
  it('serves the built app with a strict content security policy, index uncached and assets immutable', async () => {
    const base = await serve();
    const bare = await fetch(`${base}/console`, { redirect: 'manual' });
    expect(bare.status).toBe(200);
    expect(await bare.text()).toContain('<div id="app">');

    const index = await fetch(`${base}/console/`);
    expect(index.status).toBe(200);
    expect(await index.text()).toContain('<div id="app">');
    expect(index.headers.get('cache-control')).toBe('no-cache');
    const csp = index.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self';");
    expect(csp).toContain("frame-ancestors 'none'");

    const asset = await fetch(`${base}/console/assets/index-abc123.js`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('cache-control')).toContain('immutable');
  });

  // Regression: a page on another site that opened the console (window.open) kept a handle on its
  // window, so once the admin had signed in there it could send that tab to a look-alike sign-in page.
  it('opens in a browsing context of its own: no page that opened the console keeps a handle on it', async () => {
    const base = await serve();
    for (const file of ['/console', '/console/', '/console/assets/index-abc123.js', '/console/config.json']) {
      const response = await fetch(`${base}${file}`);
      await response.arrayBuffer();
      expect(response.status, file).toBe(200);
      expect(response.headers.get('cross-origin-opener-policy'), file).toBe('same-origin');
    }
  });

  it('never serves a source map, even one left in the built folder', async () => {
    const base = await serve();
    const port = new URL(base).port;
    // Sent as written: fetch would resolve the `.` segments before the server sees them.
    const get = (file: string) =>
      plainHttpRequest({ host: '127.0.0.1', port, path: `/console/assets/${file}` });
    for (const file of [
      'index-abc123.js.map',
      'INDEX-ABC123.JS.MAP',
      'index-abc123.js%2Emap',
      'index-abc123.js.map/',
      // The static files resolve `.` segments, decoded or not: each of these names the map itself.
      'index-abc123.js.map/.',
      'index-abc123.js.map/%2E',
      'index-abc123.js.map%2F.',
      './index-abc123.js.map/.',
    ]) {
      const map = await get(file);
      expect(map.status, file).toBe(404);
      expect(map.body, file).not.toContain('sourcesContent');
    }
    expect((await get('index-abc123.js')).status).toBe(200);
  });

  it('never serves a file outside the built folder', async () => {
    const base = await serve();
    for (const outside of [
      '/console/../package.json',
      '/console/%2e%2e/package.json',
      '/console/..%2fpackage.json',
    ]) {
      const response = await fetch(`${base}${outside}`);
      expect([400, 403, 404], outside).toContain(response.status);
    }
  });

  it.each([
    ['a stale If-Match', { 'if-match': '"not-this-file"' }, 412, 'precondition_failed', 'if-match'],
    [
      'an If-Unmodified-Since before the file',
      { 'if-unmodified-since': 'Mon, 01 Jan 1990 00:00:00 GMT' },
      412,
      'precondition_failed',
      'if-unmodified-since',
    ],
    ['a Range past the end of the file', { range: 'bytes=100000-' }, 416, 'range_not_satisfiable', 'range'],
  ])('answers %s in the error shape, never a 500', async (_case, headers, status, code, field) => {
    const base = await serve();
    for (const file of ['/console', '/console/', '/console/assets/index-abc123.js']) {
      const response = await fetch(`${base}${file}`, { headers });
      expect(response.status, file).toBe(status);
      const body = (await response.json()) as { error: { code: string; details: { field: string }[] } };
      expect(body.error.code, file).toBe(code);
      expect(body.error.details[0]?.field, file).toBe(field);
      if (status === 416) expect(response.headers.get('content-range'), file).toMatch(/^bytes \*\/\d+$/);
    }
  });

  it('answers 503 console_not_built, naming the fix, when the folder has no build', async () => {
    const base = await serve({ directory: path.join(built, 'missing') });
    const response = await fetch(`${base}/console/`);
    expect(response.status).toBe(503);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('console_not_built');
    expect(body.error.message).toContain('make console-build');
  });

  it('offers no development sign-in outside dev mode: config says so and the endpoint is 404', async () => {
    const base = await serve();
    expect(await (await fetch(`${base}/console/config.json`)).json()).toEqual({
      dev_sign_in: false,
      clerk: null,
    });
    const response = await fetch(`${base}/console/dev-session`, { method: 'POST' });
    expect(response.status).toBe(404);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('not_found');
  });

  it('issues a development token in dev mode', async () => {
    const base = await serve({ devSignIn: async () => ({ token: 'a.b.c', userId: 'user_dev_admin' }) });
    expect(
      ((await (await fetch(`${base}/console/config.json`)).json()) as { dev_sign_in: boolean }).dev_sign_in,
    ).toBe(true);
    const response = await fetch(`${base}/console/dev-session`, { method: 'POST' });
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(await response.json()).toEqual({ token: 'a.b.c', user_id: 'user_dev_admin' });
  });

  // Regression: any Host and Origin got the token, so a page the developer visited could read it through
  // DNS rebinding (its name resolving to 127.0.0.1) while `make dev` ran.
  it('issues the development token only to this machine’s own pages', async () => {
    const base = await serve({ devSignIn: async () => ({ token: 'a.b.c', userId: 'user_dev_admin' }) });
    const port = new URL(base).port;
    const post = async (headers: Record<string, string>) =>
      (
        await plainHttpRequest({
          host: '127.0.0.1',
          port,
          path: '/console/dev-session',
          method: 'POST',
          headers,
        })
      ).status;
    expect(await post({ host: `localhost:${port}`, origin: `http://localhost:${port}` })).toBe(200);
    expect(await post({ host: `127.0.0.1:${port}` })).toBe(200);
    expect(
      await post({
        host: `rebind.attacker.example:${port}`,
        origin: `http://rebind.attacker.example:${port}`,
      }),
    ).toBe(403);
    expect(await post({ host: `localhost:${port}`, origin: 'https://evil.example' })).toBe(403);
  });

  // Regression: with the control plane bound to 0.0.0.0 (CONTROL_PLANE_HOST in .env.example), another
  // machine got the platform-admin development token by sending `Host: localhost`.
  it('refuses the development token to a connection from another address, whatever its Host says', async () => {
    const lanAddress = Object.values(os.networkInterfaces())
      .flat()
      .find((i) => i?.family === 'IPv4' && !i.internal)?.address;
    if (!lanAddress) throw new Error('this test needs a non-loopback IPv4 interface to connect from');
    const base = await serve(
      { devSignIn: async () => ({ token: 'a.b.c', userId: 'user_dev_admin' }) },
      '0.0.0.0',
    );
    const port = new URL(base).port;
    const post = async (from: string, headers: Record<string, string>) =>
      (
        await plainHttpRequest({
          host: from,
          localAddress: from,
          port,
          path: '/console/dev-session',
          method: 'POST',
          headers,
        })
      ).status;
    expect(await post(lanAddress, { host: `localhost:${port}` })).toBe(403);
    expect(await post(lanAddress, { host: `127.0.0.1:${port}`, origin: `http://127.0.0.1:${port}` })).toBe(
      403,
    );
    expect(await post('127.0.0.1', { host: `localhost:${port}` })).toBe(200);
  });

  it('counts only loopback peers as this machine', () => {
    for (const peer of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1'])
      expect(isLoopbackPeer(peer)).toBe(true);
    for (const peer of ['192.0.2.2', '::ffff:192.0.2.2', 'fd00::2', '::', '0.0.0.0', '1127.0.0.1', undefined])
      expect(isLoopbackPeer(peer)).toBe(false);
  });

  it("loads ClerkJS from the instance's Frontend API when CLERK_PUBLISHABLE_KEY is set, and allows only that host", async () => {
    const key = publishableKeyFor('clerk.acme.example');
    const base = await serve({ clerkPublishableKey: key });
    const config = await (await fetch(`${base}/console/config.json`)).json();
    expect(config).toEqual({
      dev_sign_in: false,
      clerk: {
        publishable_key: key,
        script_url: 'https://clerk.acme.example/npm/@clerk/clerk-js@6/dist/clerk.browser.js',
      },
    });
    const csp = (await fetch(`${base}/console/`)).headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self' https://clerk.acme.example;");
    expect(csp).toContain("connect-src 'self' https://clerk.acme.example;");
  });
});

describe('clerkFrontendApi', () => {
  it('reads the host a publishable key names and refuses anything else', () => {
    expect(clerkFrontendApi(publishableKeyFor('clerk.acme.example'))).toBe('clerk.acme.example');
    expect(clerkFrontendApi('pk_test_bm90LWEtaG9zdA')).toBeNull(); // no trailing $
    expect(clerkFrontendApi(publishableKeyFor('evil.example/"><script>'))).toBeNull();
    expect(clerkFrontendApi('sk_live_abc')).toBeNull();
  });
});
