import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { cachePolicy } from '@vantageedge/shared/domain/gateway-config';
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
 * Regression: a route's `cache_set_cookie` was not part of its keys. Its entries hold the Set-Cookie of
 * the client that filled them (a session, a CSRF token), which every HIT replays; an admin who turned
 * the setting off to stop that still had every stored entry hand the same cookie to each client until
 * it expired (up to its freshness, a year at most).
 */

function originHandler(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  res.writeHead(200, {
    'content-type': 'text/plain',
    'cache-control': 'max-age=600',
    'set-cookie': `session=${randomUUID()}; Path=/; HttpOnly`,
  });
  res.end('welcome');
}

describe('a route that stops storing Set-Cookie', () => {
  let origin: HttpOrigin;
  let gateway: TestGateway;
  let cache: ResponseCache;
  let redis: TestRedis;

  beforeAll(async () => {
    origin = await startHttpOrigin(originHandler);
    redis = createTestRedis('set-cookie-policy-change');
    cache = createResponseCache({
      store: new RedisCacheStore(redis.client, { keyPrefix: redis.prefix }),
      l1MaxBytes: 1_000_000,
      registry: createMetricsRegistry('set-cookie-policy-change', { defaultMetrics: false }),
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

  it("regression: never replays a cookie an entry stored before, on this replica's memory cache or the store", async () => {
    const tenantId = randomUUID();
    const originId = randomUUID();
    const routeId = randomUUID();
    const subdomain = `setcookie${tenantId.slice(0, 8)}`;
    const host = `${subdomain}.localhost`;
    const apply = async (version: number, cacheSetCookie: boolean) => {
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
              cache_policy: cachePolicy.parse({ ttl_seconds: 600, cache_set_cookie: cacheSetCookie }),
            },
          ],
        }),
      );
      await cache.prepareTenant(tenantId);
    };
    await apply(1, true);
    const path = `/welcome/${randomUUID()}`;
    const filled = await send(gateway, host, path);
    expect(filled.headers['x-cache']).toBe('MISS');
    const hit = await send(gateway, host, path);
    expect(hit.headers['x-cache']).toBe('HIT');
    expect(hit.headers['set-cookie']).toEqual(filled.headers['set-cookie']);

    await apply(2, false);
    const after = await send(gateway, host, path);
    expect(after.headers['set-cookie']).not.toEqual(filled.headers['set-cookie']);
    const next = await send(gateway, host, path);
    expect(next.headers['set-cookie']).not.toEqual(after.headers['set-cookie']);
  });
});
