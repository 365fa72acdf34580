import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  TEST_PEPPER,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * Regression tests for path spellings that bypassed route protection. With `/api/*` public and
 * `/api/admin/*` and `/api/internal` requiring a key:
 *  - an Express origin (case-insensitive, non-strict routing) served its admin handler for
 *    `/api/ADMIN/users` and its internal handler for `/api/internal/`;
 *  - `/api/admin#/users` reached the admin handler (an origin reads `#` as the start of a fragment);
 *  - `/api/admin;x=1/users` got through (Tomcat/Spring drop `;` path parameters);
 *  - `/tomcat/%C3%89T%C3%89/x` got through (ASP.NET and IIS decode the path, then compare letters in
 *    any case: it is their `/tomcat/été/x`).
 */
const KEY = 've_live_path_matching_key_000000000000';

describe('route protection holds for every common origin reading of the path', () => {
  let expressOrigin: Server;
  let plain: TestOrigin;
  let gateway: TestGateway;
  let expressHits: string[];

  beforeAll(async () => {
    expressHits = [];
    const app = express();
    app.use((req, _res, next) => {
      expressHits.push(req.url);
      next();
    });
    app.get('/api/admin/users', (_req, res) => {
      res.json({ handler: 'admin' });
    });
    app.get('/api/internal', (_req, res) => {
      res.json({ handler: 'internal' });
    });
    app.get('/api/public/posts', (_req, res) => {
      res.json({ handler: 'public' });
    });
    expressOrigin = await new Promise<Server>((resolve) => {
      const server = app.listen(0, '127.0.0.1', () => resolve(server));
    });
    plain = await startTestOrigin('plain');
    gateway = await startTestGateway();
    const expressId = randomUUID();
    const plainId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'acme',
        origins: [
          { id: expressId, targets: [`http://127.0.0.1:${(expressOrigin.address() as AddressInfo).port}`] },
          { id: plainId, targets: [plain.url] },
        ],
        routes: [
          { origin_id: expressId, path_pattern: '/api/*' },
          { origin_id: expressId, path_pattern: '/api/admin/*', auth_mode: 'apikey_required' },
          { origin_id: expressId, path_pattern: '/api/internal', auth_mode: 'apikey_required' },
          { origin_id: plainId, path_pattern: '/tomcat/*' },
          { origin_id: plainId, path_pattern: '/tomcat/admin/*', auth_mode: 'apikey_required' },
          { origin_id: plainId, path_pattern: '/tomcat/%C3%A9t%C3%A9/*', auth_mode: 'apikey_required' },
          {
            origin_id: plainId,
            path_pattern: '/tomcat/legacy/*',
            auth_mode: 'apikey_required',
            strip_prefix: '/tomcat/legacy',
          },
          {
            origin_id: plainId,
            path_pattern: '/tomcat/v2/*',
            auth_mode: 'apikey_required',
            rewrite_path: { template: '/internal/*' },
          },
        ],
        apiKeys: [{ key_hash: hashApiKey(TEST_PEPPER, KEY) }],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await plain?.close();
    await new Promise((resolve) => expressOrigin?.close(resolve));
  });

  const get = (path: string, key?: string) =>
    send(gateway, 'acme.localhost', path, key ? { headers: { 'x-api-key': key } } : {});

  it.each(['/api/ADMIN/users', '/api/Admin/users', '/api/internal/', '/api/INTERNAL'])(
    '%s needs the key of the protected route the Express origin would serve',
    async (path) => {
      const before = expressHits.length;
      const anonymous = await get(path);
      expect(anonymous.status).toBe(401);
      expect(expressHits.length).toBe(before);
      const keyed = await get(path, KEY);
      expect(keyed.status).toBe(200);
      expect(keyed.json()['handler']).toMatch(/^(admin|internal)$/);
    },
  );

  it('matches routes as written: another reading adds protection, never a route', async () => {
    const before = expressHits.length;
    expect((await get('/API/admin/users')).status).toBe(404);
    expect((await get('/API/admin/users', KEY)).status).toBe(404);
    expect(expressHits.length).toBe(before);
  });

  it.each(['/tomcat/admin;x=1/users', '/tomcat/admin;jsessionid=1/users', '/tomcat/ADMIN/users'])(
    '%s needs the key of the route Tomcat would read after dropping ;params',
    async (path) => {
      const before = plain.seen.length;
      expect((await get(path)).status).toBe(401);
      expect(plain.seen.length).toBe(before);
      expect((await get(path, KEY)).status).toBe(200);
    },
  );

  // Regression: only ASCII letters were read in either case: /tomcat/%C3%89T%C3%89/x (ÉTÉ) went to the
  // public /tomcat/* route, and ASP.NET or IIS, which decode the path and compare letters in any case,
  // served it with their /tomcat/été handler.
  it.each(['/tomcat/%C3%89T%C3%89/x', '/tomcat/%C3%89t%C3%A9', '/tomcat/%c3%a9T%c3%a9/x'])(
    '%s needs the key of the route an origin comparing letters in any case would read',
    async (path) => {
      const before = plain.seen.length;
      expect((await get(path)).status).toBe(401);
      expect(plain.seen.length).toBe(before);
      expect((await get(path, KEY)).status).toBe(200);
    },
  );

  // Regression: `..;` is `..` to Tomcat, which drops `;` parameters: /tomcat/x/..;/admin/users reached
  // the admin handler, and through a rewrite the origin got /internal/..;/admin/users (its /admin/users).
  it.each([
    '/tomcat/x/..;/admin/users',
    '/tomcat/v2/..;/..;/admin',
    '/tomcat/v2/%2e%2e;x/admin',
    '/tomcat/.;/v2/x',
  ])('%s is refused 400 invalid_path: a dot segment with ;params', async (path) => {
    const before = plain.seen.length;
    const answer = await get(path, KEY);
    expect(answer.status).toBe(400);
    expect(answer.json()['error']).toMatchObject({ code: 'invalid_path' });
    expect(plain.seen.length).toBe(before);
  });

  // Regression: the stricter route a reading found rewrote a path its pattern never matched:
  // /tomcat/LEGACY/users went out as it was written, /tomcat/V2/users unrewritten.
  it.each(['/tomcat/LEGACY/users', '/tomcat/legacy;x=1/users', '/tomcat/V2/users', '/tomcat/v2;x/users'])(
    '%s is refused 403 ambiguous_path: its stricter route rewrites the path it matched',
    async (path) => {
      const before = plain.seen.length;
      const answer = await get(path, KEY);
      expect(answer.status).toBe(403);
      expect(answer.json()['error']).toMatchObject({ code: 'ambiguous_path' });
      expect(plain.seen.length).toBe(before);
    },
  );

  it('rewrites a path spelled as its route is', async () => {
    expect((await get('/tomcat/legacy/users', KEY)).status).toBe(200);
    expect((await get('/tomcat/v2/users', KEY)).status).toBe(200);
    expect(plain.seen.slice(-2).map((request) => request.url)).toEqual(['/users', '/internal/users']);
  });

  it.each([
    '/api/admin#/users',
    '/api/public/posts#x',
    '/api/public/"x"',
    '/api/public/<x>',
    '/api/public/{x}',
    '/api/public/x|y',
    '/api/public/x^y',
    '/api/public/`x`',
    '/api/public/[x]',
    '/api/public/posts?q=#admin',
    '/api/public/posts?q=<script>',
  ])('refuses %s: a character that is not allowed in a request target', async (path) => {
    const before = expressHits.length;
    const response = await get(path);
    expect(response.status).toBe(400);
    expect(response.json()).toMatchObject({
      error: { code: expect.stringMatching(/^invalid_(path|query)$/) },
    });
    expect(expressHits.length).toBe(before);
  });

  it('leaves ordinary requests alone', async () => {
    expect((await get('/api/public/posts')).json()).toEqual({ handler: 'public' });
    expect((await get('/api/public/posts?a[]=1&b={x}|y')).status).toBe(200);
    expect((await get('/api/admin/users', KEY)).json()).toEqual({ handler: 'admin' });
    expect((await get("/tomcat/it's;fine")).status).toBe(200);
  });
});
