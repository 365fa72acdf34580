import { randomUUID } from 'node:crypto';
import { cachePolicy, rateLimitPolicy } from '@vantageedge/shared/domain/gateway-config';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryLimitStore } from '../ratelimit/memory-limit-store.js';
import { createRateLimitStage } from '../ratelimit/rate-limit-stage.js';
import { createRateLimiter } from '../ratelimit/rate-limiter.js';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createCacheStage } from './cache-stage.js';
import { MemoryCacheStore } from './memory-cache-store.js';
import { createResponseCache } from './response-cache.js';

/** The rate-limit and cache stages inside the gateway's real pipeline (memory mode: no Redis needed). */
describe('rate-limit and cache stages in the gateway pipeline', () => {
  let origin: TestOrigin;
  let gateway: TestGateway;
  const host = 'limits.localhost';

  beforeAll(async () => {
    origin = await startTestOrigin('stages');
    const logger = createLogger({ service: 'test', level: 'error' });
    const registry = createMetricsRegistry('stages', { defaultMetrics: false });
    const cache = createResponseCache({
      store: new MemoryCacheStore({ maxBytes: 1_000_000 }),
      l1MaxBytes: 1_000_000,
      registry,
      logger,
    });
    const limiter = createRateLimiter({ store: new MemoryLimitStore(), registry, logger });
    gateway = await startTestGateway(
      {},
      { stages: [createRateLimitStage(limiter), createCacheStage(cache)] },
    );
    const originId = randomUUID();
    const snapshot = buildSnapshot({
      subdomain: 'limits',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [
        { origin_id: originId, path_pattern: '/cached/*' },
        { origin_id: originId, path_pattern: '/limited/*' },
      ],
    });
    const [cached, limited] = snapshot.routes as [(typeof snapshot.routes)[0], (typeof snapshot.routes)[0]];
    cached.cache_policy = cachePolicy.parse({ ttl_seconds: 60 });
    limited.rate_limit = rateLimitPolicy.parse({
      requests_per_second: 1,
      algorithm: 'sliding_window',
      window_seconds: 60,
      limit: 2,
      scope: 'ip',
    });
    gateway.store.apply(snapshot);
    await cache.prepareTenant(snapshot.tenant_id);
  });
  afterAll(async () => {
    await gateway.close();
    await origin.close();
  });

  it('answers the second GET from the cache without reaching the origin', async () => {
    const first = await send(gateway, host, '/cached/a?x=1');
    const second = await send(gateway, host, '/cached/a?x=1');
    expect(first.status).toBe(200);
    expect(first.headers['x-cache']).toBe('MISS');
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.text).toBe(first.text);
    expect(origin.seen.filter((r) => r.url === '/cached/a?x=1').length).toBe(1);
    expect(
      (await send(gateway, host, '/cached/a?x=1', { method: 'POST', body: '{}' })).headers['x-cache'],
    ).toBe('BYPASS');
    expect((await send(gateway, host, '/cached/a?x=1')).headers['x-cache']).toBe('MISS');
  });

  it('refuses over the limit with 429, Retry-After and RateLimit headers', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await send(gateway, host, '/limited/x')).status);
    expect(statuses).toEqual([200, 200, 429]);
    const refused = await send(gateway, host, '/limited/x');
    expect(refused.headers['retry-after']).toMatch(/^\d+$/);
    expect(refused.headers['ratelimit-policy']).toBe('"route_ip";q=2;w=60');
    expect(refused.json()).toEqual({ error: { code: 'rate_limited', message: expect.any(String) } });
  });
});
