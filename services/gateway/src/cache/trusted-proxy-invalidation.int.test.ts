import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { type HttpOrigin, startHttpOrigin } from '../testing/http-origins.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createCacheStage } from './cache-stage.js';
import type { ResponseCache } from './response-cache.js';
import { memoryResponseCache } from './testing/memory-response-cache.js';

/**
 * An unsafe request drops the stored GET responses of its target URI on the route that serves that
 * GET, which may be another route of the tenant, found with the request's own headers. Behind a trusted
 * proxy, a route chosen by a header it alone passes on (CF-Connecting-IP) is that route.
 */
describe('a POST behind a trusted proxy invalidates the GET route a trusted-proxy header chose', () => {
  let origin: HttpOrigin;
  let gateway: TestGateway;
  let cache: ResponseCache;
  const host = 'proxiedinval.localhost';
  const proxied = { 'cf-connecting-ip': '10.1.2.3' };
  const OFFICE = randomUUID();

  beforeAll(async () => {
    origin = await startHttpOrigin((req, res) => {
      req.resume();
      if (req.method === 'POST') {
        const location = req.headers['x-location'];
        res.writeHead(201, typeof location === 'string' ? { location } : {});
        res.end('created');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=600' });
      res.end(String(req.headers['x-vantageedge-route-id']));
    });
    cache = memoryResponseCache();
    // The test client connects from 127.0.0.1: to this gateway it is a trusted proxy.
    gateway = await startTestGateway(
      { GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32' },
      { stages: [createCacheStage(cache)] },
    );
    const originId = randomUUID();
    const cached = { ttl_seconds: 600 };
    const snapshot = buildSnapshot({
      subdomain: 'proxiedinval',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [
        {
          id: OFFICE,
          origin_id: originId,
          path_pattern: '/office/*',
          methods: ['GET'],
          priority: 10,
          match: { headers: [{ name: 'CF-Connecting-IP', prefix: '10.' }] },
          cache_policy: cached,
        },
        { origin_id: originId, path_pattern: '/office/*', methods: ['GET'], cache_policy: cached },
        { origin_id: originId, path_pattern: '/office/*', methods: ['POST'], cache_policy: cached },
        { origin_id: originId, path_pattern: '/plain/*', methods: ['GET'], cache_policy: cached },
      ],
    });
    gateway.store.apply(snapshot);
    await cache.prepareTenant(snapshot.tenant_id);
  });

  afterAll(async () => {
    await gateway?.close();
    await cache?.close();
    await origin?.close();
  });

  const get = (path: string, headers: Record<string, string> = {}) => send(gateway, host, path, { headers });

  // Regression: the invalidation looked the GET route up as if no trusted proxy had sent the request,
  // found the route for other clients, and left the office route's entry answering HITs after the POST.
  it('drops the entry of the route the proxy’s CF-Connecting-IP chose', async () => {
    const office = await get('/office/a', proxied);
    expect([office.text, office.headers['x-cache']]).toEqual([OFFICE, 'MISS']);
    expect((await get('/office/a', proxied)).headers['x-cache']).toBe('HIT');
    // Named by the POST's Location: dropped in the same pass, after the target URI's.
    expect((await get('/plain/a')).headers['x-cache']).toBe('MISS');
    expect((await get('/plain/a')).headers['x-cache']).toBe('HIT');

    const post = await send(gateway, host, '/office/a', {
      method: 'POST',
      headers: { ...proxied, 'x-location': '/plain/a' },
      body: '{}',
    });
    expect(post.status).toBe(201);
    for (let attempt = 0; (await get('/plain/a')).headers['x-cache'] === 'HIT'; attempt++) {
      if (attempt > 100) throw new Error('the POST invalidated nothing');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const after = await get('/office/a', proxied);
    expect([after.text, after.headers['x-cache']]).toEqual([OFFICE, 'MISS']);
  });
});
