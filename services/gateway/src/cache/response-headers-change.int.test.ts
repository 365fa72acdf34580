import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { cachePolicy } from '@vantageedge/shared/domain/gateway-config';
import type { HeaderTransform } from '@vantageedge/shared/domain/route-policies';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createTestRedis, type TestRedis } from '@vantageedge/shared/testing/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { type HttpOrigin, startHttpOrigin } from '../testing/http-origins.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createCacheStage } from './cache-stage.js';
import { RedisCacheStore } from './redis-cache-store.js';
import { createResponseCache, type ResponseCache } from './response-cache.js';

/**
 * Regression: a route's `response_headers` are applied before the cache stores an answer, and its keys
 * did not depend on them. An admin who changed them (a Content-Security-Policy tightened, a header
 * leaking an internal name removed) still had every stored entry answer with the former headers, on
 * every replica, until it expired.
 */

function originHandler(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  res.writeHead(200, {
    'content-type': 'text/plain',
    'cache-control': 'max-age=600',
    'x-powered-by': 'internal-build-7',
    // An origin with CORS of its own: on a CORS route the gateway's policy answers instead.
    'access-control-allow-origin': '*',
  });
  res.end('page');
}

describe('a route whose response_headers change', () => {
  let origin: HttpOrigin;
  let gateway: TestGateway;
  let cache: ResponseCache;
  let redis: TestRedis;
  const tenantId = randomUUID();
  const originId = randomUUID();
  const routeId = randomUUID();
  const subdomain = `resphdr${tenantId.slice(0, 8)}`;
  const host = `${subdomain}.localhost`;

  beforeAll(async () => {
    origin = await startHttpOrigin(originHandler);
    redis = createTestRedis('response-headers-change');
    cache = createResponseCache({
      store: new RedisCacheStore(redis.client, { keyPrefix: redis.prefix }),
      l1MaxBytes: 1_000_000,
      registry: createMetricsRegistry('response-headers-change', { defaultMetrics: false }),
      logger: createLogger({ service: 'test', level: 'error' }),
    });
    gateway = await startTestGateway({}, { stages: [createCacheStage(cache)] });
  });
  afterAll(async () => {
    await gateway.close();
    await cache.close();
    await origin.close();
    await redis.cleanup();
  });

  const apply = async (
    version: number,
    responseHeaders: HeaderTransform | null,
    cors: { allow_origins: string[] } | null = null,
  ) => {
    gateway.store.apply(
      buildSnapshot({
        tenantId,
        version,
        subdomain,
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [
          {
            id: routeId,
            origin_id: originId,
            path_pattern: '/*',
            response_headers: responseHeaders,
            cors,
            cache_policy: cachePolicy.parse({ ttl_seconds: 600 }),
          },
        ],
      }),
    );
    await cache.prepareTenant(tenantId);
  };

  it('regression: a HIT after the change carries the headers the route writes now', async () => {
    await apply(1, { set: { 'content-security-policy': "default-src 'self' *" }, add: {}, remove: [] });
    const path = `/page/${randomUUID()}`;
    expect((await send(gateway, host, path)).headers['x-cache']).toBe('MISS');
    const before = await send(gateway, host, path);
    expect(before.headers['x-cache']).toBe('HIT');
    expect(before.headers['content-security-policy']).toBe("default-src 'self' *");
    expect(before.headers['x-powered-by']).toBe('internal-build-7');

    await apply(2, {
      set: { 'content-security-policy': "default-src 'self'" },
      add: {},
      remove: ['x-powered-by'],
    });
    for (let i = 0; i < 2; i++) {
      const after = await send(gateway, host, path);
      expect(after.headers['content-security-policy']).toBe("default-src 'self'");
      expect(after.headers['x-powered-by']).toBeUndefined();
    }
    expect((await send(gateway, host, path)).headers['x-cache']).toBe('HIT');

    // Dropped again, the route's answers are the origin's own.
    await apply(3, null);
    const plain = await send(gateway, host, path);
    expect(plain.headers['content-security-policy']).toBeUndefined();
    expect(plain.headers['x-powered-by']).toBe('internal-build-7');
  });

  it('a change that leaves the transform as it was keeps the stored entries', async () => {
    const transform = { set: { 'x-frame-options': 'DENY' }, add: {}, remove: [] };
    await apply(4, transform);
    const path = `/page/${randomUUID()}`;
    await send(gateway, host, path);
    expect((await send(gateway, host, path)).headers['x-cache']).toBe('HIT');
    await apply(5, { ...transform, set: { ...transform.set } });
    const after = await send(gateway, host, path);
    expect(after.headers['x-cache']).toBe('HIT');
    expect(after.headers['x-frame-options']).toBe('DENY');
  });

  it("a CORS policy's change reaches the HITs: their CORS headers are the policy's of the moment", async () => {
    const allowed = 'https://app.example';
    await apply(6, null);
    const path = `/page/${randomUUID()}`;
    await send(gateway, host, path, { headers: { origin: allowed } });
    const open = await send(gateway, host, path, { headers: { origin: 'https://evil.example' } });
    expect(open.headers['x-cache']).toBe('HIT');
    expect(open.headers['access-control-allow-origin']).toBe('*');

    await apply(7, null, { allow_origins: [allowed] });
    const refused = await send(gateway, host, path, { headers: { origin: 'https://evil.example' } });
    expect(refused.headers['access-control-allow-origin']).toBeUndefined();
    await send(gateway, host, path, { headers: { origin: allowed } });
    const hit = await send(gateway, host, path, { headers: { origin: allowed } });
    expect(hit.headers['x-cache']).toBe('HIT');
    expect(hit.headers['access-control-allow-origin']).toBe(allowed);

    await apply(8, null, { allow_origins: ['https://other.example'] });
    const dropped = await send(gateway, host, path, { headers: { origin: allowed } });
    expect(dropped.headers['x-cache']).toBe('HIT');
    expect(dropped.headers['access-control-allow-origin']).toBeUndefined();
  });
});
