import { randomUUID } from 'node:crypto';
import { createTestRedis, type TestRedis } from '@vantageedge/shared/testing/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryLimitStore } from '../ratelimit/memory-limit-store.js';
import { createRateLimitStage } from '../ratelimit/rate-limit-stage.js';
import { createRateLimiter } from '../ratelimit/rate-limiter.js';
import { type CachingTestGateway, startCachingGateway } from '../testing/caching-gateways.js';
import { send } from '../testing/gateway-harness.js';
import { type HttpOrigin, startHttpOrigin } from '../testing/http-origins.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { RedisCacheStore } from './redis-cache-store.js';

/**
 * Regression: a cache HIT replayed per-request headers of the MISS that filled the entry (its
 * X-Request-Id first of all). The origin here echoes the per-request headers many origins echo
 * (request id, trace context, identity headers) and adds its own rate-limit / timing headers; a HIT must
 * carry only the origin's replayable headers plus fresh per-request headers of its own request.
 */
describe('a cache HIT carries its own per-request headers, not those of the MISS that filled it', () => {
  let origin: HttpOrigin;
  let originHits = 0;
  let gateway: CachingTestGateway;
  let redis: TestRedis;
  const host = 'hitheaders.localhost';

  beforeAll(async () => {
    origin = await startHttpOrigin((req, res) => {
      originHits++;
      req.resume();
      // A header named __proto__, twice: undici hands it over as an own property holding an array.
      if (req.url?.endsWith('/proto')) res.setHeader('__proto__', ['a', 'b']);
      res.writeHead(200, {
        'content-type': 'application/json',
        etag: '"v3"',
        'x-origin-version': '3',
        'x-request-id': String(req.headers['x-request-id']),
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
        tracestate: 'origin=1',
        'x-vantageedge-tenant-id': String(req.headers['x-vantageedge-tenant-id']),
        'x-vantageedge-auth-kind': String(req.headers['x-vantageedge-auth-kind']),
        ratelimit: '"origin";r=4;t=1',
        'ratelimit-policy': '"origin";q=5;w=1',
        'retry-after': '7',
        'server-timing': 'db;dur=53',
        age: '3',
        'x-cache': 'MISS from origin-cdn',
        connection: 'keep-alive, x-origin-hop',
        'x-origin-hop': 'hop-by-hop',
      });
      res.end(JSON.stringify({ ok: true }));
    });

    redis = createTestRedis('cache-hit-headers');
    const originId = randomUUID();
    gateway = await startCachingGateway({
      name: 'hit-headers',
      store: new RedisCacheStore(redis.client, { keyPrefix: redis.prefix }),
      before: (registry, logger) => [
        createRateLimitStage(createRateLimiter({ store: new MemoryLimitStore(), registry, logger })),
      ],
      snapshot: buildSnapshot({
        subdomain: 'hitheaders',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [
          {
            origin_id: originId,
            path_pattern: '/cached/*',
            cache_policy: { ttl_seconds: 60 },
            rate_limit: { requests_per_second: 100, burst: 100, scope: 'route' },
          },
        ],
      }),
    });
  });
  afterAll(async () => {
    await gateway.close();
    await origin.close();
    await redis.cleanup();
  });

  it('answers the HIT with its own X-Request-Id and RateLimit headers and only replayable origin headers', async () => {
    const first = await send(gateway, host, '/cached/item', { headers: { 'x-request-id': 'req-miss-0001' } });
    const second = await send(gateway, host, '/cached/item', { headers: { 'x-request-id': 'req-hit-0002' } });
    expect(originHits).toBe(1);
    expect(first.headers['x-request-id']).toBe('req-miss-0001');
    // On the MISS too, the gateway's own headers win over same-named origin headers.
    expect(first.headers['x-cache']).toBe('MISS');
    expect(first.headers['ratelimit-policy']).toBe('"route";q=100;w=1');

    expect(second.status).toBe(200);
    expect(second.text).toBe(first.text);
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.headers['x-request-id']).toBe('req-hit-0002');
    // The gateway's own rate-limit headers for this request, not the origin's stored ones.
    expect(second.headers['ratelimit-policy']).toBe('"route";q=100;w=1');
    expect(second.headers.ratelimit).toMatch(/^"route";r=\d+;t=\d+$/);
    expect(second.headers['retry-after']).toBeUndefined();
    // Per-request headers of the filling request are not replayed.
    expect(second.headers.traceparent).toBeUndefined();
    expect(second.headers.tracestate).toBeUndefined();
    expect(second.headers['server-timing']).toBeUndefined();
    expect(Object.keys(second.headers).filter((name) => name.startsWith('x-vantageedge-'))).toEqual([]);
    expect(second.headers['x-origin-hop']).toBeUndefined();
    expect(second.headers.age).toMatch(/^\d+$/);
    // Recomputed, not replayed: the origin's Age (3) plus the time the entry spent here (RFC 9111
    // §4.2.3; standard mode, the default, counts the Age a response arrives with).
    expect(Number(second.headers.age)).toBeGreaterThanOrEqual(3);
    expect(Number(second.headers.age)).toBeLessThan(6);
    // The origin's own replayable headers are kept.
    expect(second.headers.etag).toBe('"v3"');
    expect(second.headers['x-origin-version']).toBe('3');
    expect(second.headers['content-type']).toBe('application/json');
  });

  it('keeps no per-request header in the entry stored in Redis', async () => {
    await send(gateway, host, '/cached/stored', { headers: { 'x-request-id': 'req-miss-0003' } });
    const keys = await redis.client.keys(`${redis.prefix}c:*`);
    const entries = await Promise.all(
      keys
        // Fill leases (':lease') come and go with fills; they hold a random token, never headers. The
        // tenant's byte-bound keys (':bound:') hold key names and sizes; tag sets (':tag:', every entry
        // is in its path segments' sets) hold cache keys.
        .filter(
          (key) =>
            !key.endsWith(':idx') &&
            !key.endsWith(':gen') &&
            !key.endsWith(':lease') &&
            !key.includes(':bound:') &&
            !key.includes(':tag:'),
        )
        .map((key) => redis.client.getBuffer(key)),
    );
    const stored = entries.map((buffer) => buffer?.toString('latin1') ?? '').join('\n');
    expect(stored).toContain('x-origin-version');
    for (const name of [
      'req-miss-0003',
      'traceparent',
      'x-vantageedge-',
      '"ratelimit',
      'retry-after',
      'server-timing',
    ])
      expect(stored).not.toContain(name);
  });

  // Regression: the origin's `__proto__` header, copied into the gateway's response header object by
  // assignment, made that object's prototype the array of its values, and the MISS went out with
  // headers named `0` and `1`.
  it("never takes an origin's __proto__ header as the prototype of the answer's headers", async () => {
    const miss = await send(gateway, host, '/cached/proto');
    const hit = await send(gateway, host, '/cached/proto');
    for (const answer of [miss, hit]) {
      expect(answer.status).toBe(200);
      expect(answer.headers['0']).toBeUndefined();
      expect(answer.headers['1']).toBeUndefined();
      expect(answer.headers['x-origin-version']).toBe('3');
    }
  });
});
