import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listenOffline } from '../testing/offline-app.js';

/**
 * The admin API's answers carry what tenant admins wrote (names, paths, error details) and /docs is an
 * HTML page of scripts: neither may be framed by another site (clickjacking a platform admin) nor read
 * as another type than it says. Nothing here connects anywhere: a request that needs PostgreSQL is
 * refused (401) before it would.
 */

let app: Awaited<ReturnType<typeof listenOffline>>;
let base: string;

beforeAll(async () => {
  app = await listenOffline({ console: { directory: '/nonexistent', clerkPublishableKey: undefined } });
  base = app.base;
});
afterAll(() => app.close());

describe('every control-plane answer', () => {
  it('may not be framed by any page and is read only as the type it says', async () => {
    for (const [method, path, status] of [
      ['GET', '/docs', 200],
      ['GET', '/openapi.json', 200],
      ['GET', '/schemas/tenant-config.json', 200],
      ['GET', '/healthz', 200],
      ['POST', '/api/v1/tenants', 401],
      ['GET', '/no-such-thing/%3Cscript%3E', 404],
    ] as const) {
      const response = await fetch(`${base}${path}`, { method });
      await response.arrayBuffer();
      expect(response.status, path).toBe(status);
      expect(response.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(response.headers.get('x-frame-options'), path).toBe('DENY');
      expect(response.headers.get('content-security-policy'), path).toContain("frame-ancestors 'none'");
    }
  });

  it('runs nothing when a JSON answer is opened as a page; /docs keeps its own scripts', async () => {
    const api = await fetch(`${base}/api/v1/tenants`, { method: 'POST' });
    expect(api.status).toBe(401);
    expect(api.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'");
    const docs = await fetch(`${base}/docs`);
    expect(await docs.text()).toContain('Scalar.createApiReference');
    expect(docs.headers.get('content-security-policy')).toBe("frame-ancestors 'none'");
    // Paths are matched exactly: these are the JSON 404 of an unknown path, and run nothing either.
    for (const path of ['/docs/', '/DOCS']) {
      const other = await fetch(`${base}${path}`);
      expect(other.status, path).toBe(404);
      expect(other.headers.get('content-security-policy'), path).toBe(
        "default-src 'none'; frame-ancestors 'none'",
      );
    }
  });

  it('leaves the console its own Content-Security-Policy', async () => {
    const response = await fetch(`${base}/console/config.json`);
    expect(response.status).toBe(200);
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(response.headers.get('x-frame-options')).toBe('DENY');
  });
});
