import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InMemoryEventStore } from '@vantageedge/shared/event-store/in-memory/in-memory-event-store';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createControlPlaneApp } from './app.js';

/**
 * The admin API's answers carry what tenant admins wrote (names, paths, error details) and /docs is an
 * HTML page of scripts: neither may be framed by another site (clickjacking a platform admin) nor read
 * as another type than it says. Nothing here connects anywhere: a request that needs PostgreSQL is
 * refused (401) before it would.
 */

const pool = new pg.Pool({ connectionString: 'postgres://unused@127.0.0.1:1/unused' });
const store = new InMemoryEventStore();
let server: Server;
let base: string;

beforeAll(async () => {
  const app = createControlPlaneApp({
    store,
    pool,
    auth: {
      jwtKey: undefined,
      publishableKey: 'pk_test_unused',
      issuer: 'https://unused.clerk.accounts.dev',
      authorizedParties: [],
      platformAdminUserIds: new Set(),
    },
    apiKeyPepper: 'unit-pepper-0123456789abcdef0123456789abcdef',
    console: { directory: '/nonexistent', clerkPublishableKey: undefined },
  });
  server = await new Promise<Server>((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await store.close();
  await pool.end();
});

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
    for (const path of ['/docs', '/docs/', '/DOCS']) {
      const docs = await fetch(`${base}${path}`);
      expect(await docs.text(), path).toContain('Scalar.createApiReference');
      expect(docs.headers.get('content-security-policy'), path).toBe("frame-ancestors 'none'");
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
