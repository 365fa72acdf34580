import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cachePolicy } from '@vantageedge/shared/domain/gateway-config';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createCacheStage } from '../cache/cache-stage.js';
import type { ResponseCache } from '../cache/response-cache.js';
import { memoryResponseCache } from '../cache/testing/memory-response-cache.js';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * Regression test for cookies set for every tenant: an origin's `Set-Cookie: …; Domain=<platform base
 * domain>` passed through, so one tenant could set cookies on all tenants' hosts (and the admin
 * host). A Domain that is not the request's host, or a parent of it that is one of the tenant's own
 * hosts, is now removed: the cookie becomes host-only.
 */
describe('Set-Cookie Domain attributes from origins', () => {
  let origin: Server;
  let gateway: TestGateway;
  const cookies = [
    'platform=1; Domain=localhost; Path=/; HttpOnly',
    'platform-dot=1; Path=/; domain=.LOCALHOST',
    'base=1; Domain=vantageedge.dev; Secure',
    'other-tenant=1; Domain=globex.localhost',
    'own-host=1; Domain=acme.localhost; Path=/',
    'own-custom=1; Domain=acme.example',
    'custom-parent=1; Domain=example',
    'no-domain=1; Path=/',
  ];

  beforeAll(async () => {
    origin = createServer((_req, res) => {
      res.setHeader('set-cookie', cookies);
      res.end('ok');
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    gateway = await startTestGateway();
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'acme',
        origins: [{ id: originId, targets: [`http://127.0.0.1:${(origin.address() as AddressInfo).port}`] }],
        routes: [{ origin_id: originId, path_pattern: '/*' }],
        customDomains: ['acme.example', 'api.acme.example'],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await new Promise((resolve) => origin?.close(resolve));
  });

  it('makes cookies scoped to the platform or another tenant host-only on the tenant host', async () => {
    const response = await send(gateway, 'acme.localhost', '/login');
    expect(response.status).toBe(200);
    expect(response.headers['set-cookie']).toEqual([
      'platform=1; Path=/; HttpOnly',
      'platform-dot=1; Path=/',
      'base=1; Secure',
      'other-tenant=1',
      'own-host=1; Domain=acme.localhost; Path=/',
      'own-custom=1',
      'custom-parent=1',
      'no-domain=1; Path=/',
    ]);
  });

  it("keeps a Domain that is one of the tenant's own hosts above the request host", async () => {
    const response = await send(gateway, 'api.acme.example', '/login');
    expect(response.headers['set-cookie']).toEqual([
      'platform=1; Path=/; HttpOnly',
      'platform-dot=1; Path=/',
      'base=1; Secure',
      'other-tenant=1',
      'own-host=1; Path=/',
      'own-custom=1; Domain=acme.example',
      'custom-parent=1',
      'no-domain=1; Path=/',
    ]);
  });
});

/**
 * Regression: a parent domain kept as a cookie's Domain when the tenant's snapshot named it, though
 * another tenant held it on the replica: it had verified the domain after the tenant let go of it (the
 * tenant's release not applied yet on this replica), or won a claim both held. The cookie reached every
 * host of the other tenant under that domain.
 */
describe('Set-Cookie Domain of a parent domain that moved to another tenant', () => {
  let origin: Server;
  let gateway: TestGateway;

  beforeAll(async () => {
    origin = createServer((_req, res) => {
      res.setHeader('set-cookie', ['moved-parent=1; Domain=moved-parent.example; Path=/', 'own=1; Path=/']);
      res.end('ok');
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    gateway = await startTestGateway();
    const target = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
    const [formerId, newId] = [randomUUID(), randomUUID()];
    gateway.store.apply(
      buildSnapshot({
        tenantId: formerId,
        version: 10,
        subdomain: `former-${formerId.slice(0, 8)}`,
        origins: [{ id: formerId, targets: [target] }],
        routes: [{ origin_id: formerId, path_pattern: '/*' }],
        customDomains: [
          { domain: 'moved-parent.example', verified_position: 5 },
          { domain: 'api.moved-parent.example', verified_position: 5 },
        ],
      }),
    );
    gateway.store.apply(
      buildSnapshot({
        tenantId: newId,
        version: 60,
        subdomain: `new-${newId.slice(0, 8)}`,
        origins: [{ id: newId, targets: [target] }],
        routes: [{ origin_id: newId, path_pattern: '/*' }],
        customDomains: [{ domain: 'moved-parent.example', verified_position: 60 }],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await new Promise((resolve) => origin?.close(resolve));
  });

  it('makes the cookie host-only on the former holder’s remaining host', async () => {
    const response = await send(gateway, 'api.moved-parent.example', '/login');
    expect(response.status).toBe(200);
    expect(response.headers['set-cookie']).toEqual(['moved-parent=1; Path=/', 'own=1; Path=/']);
  });
});

/**
 * Regression: a stale-while-revalidate refresh took the origin's 304 headers as they came, Set-Cookie
 * included, without the Domain scoping the proxy applies. On a route with `cache_set_cookie`, the 304's
 * `Set-Cookie: …; Domain=localhost` was merged into the stored entry and replayed on every HIT: one
 * tenant's origin set cookies for every tenant's host. A background refresh now stores no cookie, as
 * for its full responses; the entry keeps the one its client-facing fill stored.
 */
describe('Set-Cookie from a background revalidation (304)', () => {
  let origin: Server;
  let gateway: TestGateway;
  let cache: ResponseCache;
  let clock = Date.now();
  let requests = 0;

  beforeAll(async () => {
    origin = createServer((req, res) => {
      req.resume();
      requests++;
      const headers = {
        'cache-control': 'public, max-age=1, stale-while-revalidate=600',
        etag: '"v1"',
      };
      if (req.headers['if-none-match'] === '"v1"') {
        res.writeHead(304, { ...headers, 'set-cookie': 'sid=fixed; Domain=localhost; Path=/' });
        res.end();
        return;
      }
      res.writeHead(200, { ...headers, 'set-cookie': 'sid=first; Path=/', 'content-type': 'text/plain' });
      res.end('page');
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    cache = memoryResponseCache({
      now: () => clock,
    });
    gateway = await startTestGateway({}, { stages: [createCacheStage(cache)] });
    const originId = randomUUID();
    const snapshot = buildSnapshot({
      subdomain: 'cookiejar',
      origins: [{ id: originId, targets: [`http://127.0.0.1:${(origin.address() as AddressInfo).port}`] }],
      routes: [{ origin_id: originId, path_pattern: '/*' }],
    });
    snapshot.routes[0]!.cache_policy = cachePolicy.parse({ ttl_seconds: 60, cache_set_cookie: true });
    gateway.store.apply(snapshot);
    await cache.prepareTenant(snapshot.tenant_id);
  });

  afterAll(async () => {
    await gateway?.close();
    await cache?.close();
    await new Promise((resolve) => origin?.close(resolve));
  });

  it('never replays a Domain the proxy would have removed on later HITs', async () => {
    const fill = await send(gateway, 'cookiejar.localhost', '/page');
    expect(fill.headers['set-cookie']).toEqual(['sid=first; Path=/']);
    clock += 2_000; // stale, within stale-while-revalidate: served STALE and refreshed in the background
    expect((await send(gateway, 'cookiejar.localhost', '/page')).headers['x-cache']).toBe('STALE');
    await vi.waitFor(() => expect(requests).toBe(2), { timeout: 10_000 });
    await vi.waitFor(
      async () => {
        const hit = await send(gateway, 'cookiejar.localhost', '/page');
        expect(hit.headers['x-cache']).toBe('HIT');
        for (const cookie of [hit.headers['set-cookie'] ?? []].flat())
          expect(cookie.toLowerCase()).not.toContain('domain=localhost');
        expect(hit.headers['set-cookie']).toEqual(['sid=first; Path=/']);
      },
      { timeout: 10_000 },
    );
  });
});
