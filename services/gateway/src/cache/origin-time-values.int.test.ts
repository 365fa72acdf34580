import { randomUUID } from 'node:crypto';
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
 * Time values an origin picks to be absurd (RFC 9111 §1.2.2: a delta-seconds value too large to
 * represent counts as 2^31 seconds), or invalid (§4.2.1: a response with invalid freshness information
 * is stale). Two replicas share the real Redis: what one stores, the other answers from the shared store.
 * Regression test: `max-age=1.5` was read as 1 s, two different max-age values as the last one, and an
 * Expires that is no HTTP-date (`3000`) as a date: each response was served from the cache as fresh.
 */
describe('an origin sending absurd time values', () => {
  let origin: HttpOrigin;
  const originHits = new Map<string, number>();
  const replicas: Array<{ gateway: TestGateway; cache: ResponseCache }> = [];
  let redis: TestRedis;
  const host = 'origintimes.localhost';
  /** The response headers the origin sends for each path. */
  const headersFor: Record<string, Record<string, string>> = {
    '/cached/huge-s-maxage': { 'cache-control': 'public, s-maxage=99999999999999999999' },
    '/cached/huge-max-age': { 'cache-control': 'max-age=340282366920938463463374607431768211456' },
    '/cached/huge-age': { 'cache-control': 'max-age=60', age: '999999999999' },
    '/cached/fractional-max-age': { 'cache-control': 'max-age=1.5' },
    '/cached/fractional-s-maxage': { 'cache-control': 'max-age=60, s-maxage=1.5' },
    '/cached/words-max-age': { 'cache-control': 'max-age=abc' },
    '/cached/negative-max-age': { 'cache-control': 'max-age=-1' },
    '/cached/two-max-ages': { 'cache-control': 'max-age=0, max-age=60' },
    '/cached/two-s-maxages': { 'cache-control': 's-maxage=60, s-maxage=0' },
    '/cached/year-as-expires': { expires: '3000' },
    '/cached/iso-expires': { expires: '2999-01-01T00:00:00Z' },
  };

  beforeAll(async () => {
    origin = await startHttpOrigin((req, res) => {
      const path = req.url ?? '/';
      originHits.set(path, (originHits.get(path) ?? 0) + 1);
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain', ...headersFor[path] });
      res.end(`answer ${originHits.get(path)}`);
    });
    redis = createTestRedis('cache-origin-times');
    const logger = createLogger({ service: 'test', level: 'error' });
    const originId = randomUUID();
    const snapshot = buildSnapshot({
      subdomain: 'origintimes',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [{ origin_id: originId, path_pattern: '/cached/*' }],
    });
    snapshot.routes[0]!.cache_policy = cachePolicy.parse({});
    for (let i = 0; i < 2; i++) {
      const cache = createResponseCache({
        store: new RedisCacheStore(redis.client, { keyPrefix: redis.prefix }),
        l1MaxBytes: 1_000_000,
        registry: createMetricsRegistry(`origin-times-${i}`, { defaultMetrics: false }),
        logger,
      });
      const gateway = await startTestGateway({}, { stages: [createCacheStage(cache)] });
      gateway.store.apply(snapshot);
      await cache.prepareTenant(snapshot.tenant_id);
      replicas.push({ gateway, cache });
    }
  });
  afterAll(async () => {
    for (const { gateway, cache } of replicas) {
      await gateway.close();
      await cache.close();
    }
    await origin.close();
    await redis.cleanup();
  });

  it.each(['/cached/huge-s-maxage', '/cached/huge-max-age'])(
    '%s: the response is stored in the shared store and every replica answers it',
    async (path) => {
      const [one, other] = replicas;
      const miss = await send(one!.gateway, host, path);
      expect(miss.status).toBe(200);
      expect(miss.headers['x-cache']).toBe('MISS');
      const hit = await send(other!.gateway, host, path);
      expect(hit.status).toBe(200);
      expect(hit.headers['x-cache']).toBe('HIT');
      expect(hit.text).toBe('answer 1');
      expect(hit.headers.age).toMatch(/^\d+$/);
      expect(originHits.get(path)).toBe(1);
    },
  );

  it('an Age too large to represent makes the response stale, not new', async () => {
    const path = '/cached/huge-age';
    const [one] = replicas;
    await send(one!.gateway, host, path);
    const again = await send(one!.gateway, host, path);
    expect(again.status).toBe(200);
    expect(again.headers['x-cache']).not.toBe('HIT');
    expect(again.text).toBe('answer 2');
    expect(originHits.get(path)).toBe(2);
  });

  it.each([
    '/cached/fractional-max-age',
    '/cached/fractional-s-maxage',
    '/cached/words-max-age',
    '/cached/negative-max-age',
    '/cached/two-max-ages',
    '/cached/two-s-maxages',
    '/cached/year-as-expires',
    '/cached/iso-expires',
  ])(
    '%s: invalid freshness information makes the response stale, never served from the cache',
    async (path) => {
      const [one, other] = replicas;
      await send(one!.gateway, host, path);
      for (const { gateway } of [one!, other!]) {
        const again = await send(gateway, host, path);
        expect(again.status).toBe(200);
        expect(again.headers['x-cache']).not.toBe('HIT');
      }
      expect(originHits.get(path)).toBe(3);
    },
  );
});
