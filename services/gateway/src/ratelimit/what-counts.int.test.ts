import { randomUUID } from 'node:crypto';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createTestRedis } from '@vantageedge/shared/testing/redis';
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
import { createRateLimitStage } from './rate-limit-stage.js';
import { createRateLimiter } from './rate-limiter.js';
import { RedisLimitStore } from './redis-limit-store.js';

/**
 * What a tenant-wide limit counts, through a real gateway pipeline and the real Redis: answers given
 * before the limit (IP rules, CORS preflights, failed authentication, fixed responses, an OPTIONS
 * the gateway answers itself for `Max-Forwards: 0`) spend nothing;
 * GET and HEAD each spend one; the refusal's headers say when to come back.
 */
describe('what a rate limit counts', () => {
  const redis = createTestRedis('what-counts');
  const host = 'counted.localhost';
  const key = `ve_test_${randomUUID()}`;
  const appOrigin = 'https://app.example.com';
  let origin: TestOrigin;
  let gateway: TestGateway;

  beforeAll(async () => {
    origin = await startTestOrigin('what-counts-origin');
    const limiter = createRateLimiter({
      store: new RedisLimitStore(redis.client),
      registry: createMetricsRegistry('what_counts', { defaultMetrics: false }),
      logger: createLogger({ service: 'test', level: 'error' }),
      keyPrefix: redis.prefix,
    });
    gateway = await startTestGateway({}, { stages: [createRateLimitStage(limiter)] });
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'counted',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [
          {
            origin_id: originId,
            path_pattern: '/api/*',
            auth_mode: 'apikey_required',
            cors: { allow_origins: [appOrigin] },
            ip_rules: { deny: ['127.0.0.2'] },
          },
          {
            origin_id: originId,
            path_pattern: '/maintenance/*',
            fixed_response: { status: 503, headers: { 'retry-after': '60' }, body: 'maintenance' },
          },
        ],
        apiKeys: [{ key_hash: hashApiKey(TEST_PEPPER, key) }],
        // Two requests for the whole tenant, then one per 1,000 s.
        settings: { rate_limit: { requests_per_second: 0.001, burst: 2, scope: 'tenant' } },
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
    await redis.cleanup();
  });

  it('spends nothing on answers given before it, one per GET or HEAD, then refuses with Retry-After', async () => {
    const before = [];
    for (let i = 0; i < 3; i++) {
      before.push(
        await send(gateway, host, '/api/a', {
          method: 'OPTIONS',
          headers: { origin: appOrigin, 'access-control-request-method': 'GET' },
        }),
      );
      before.push(
        await send(gateway, host, '/api/a', { headers: { 'x-api-key': key }, localAddress: '127.0.0.2' }),
      );
      before.push(await send(gateway, host, '/api/a'));
      before.push(await send(gateway, host, '/maintenance/a'));
      before.push(
        await send(gateway, host, '/api/a', {
          method: 'OPTIONS',
          headers: { 'x-api-key': key, 'max-forwards': '0' },
        }),
      );
    }
    expect(before.map((answer) => answer.status)).toEqual([
      204, 403, 401, 503, 200, 204, 403, 401, 503, 200, 204, 403, 401, 503, 200,
    ]);

    const get = await send(gateway, host, '/api/a', { headers: { 'x-api-key': key } });
    const head = await send(gateway, host, '/api/a', { method: 'HEAD', headers: { 'x-api-key': key } });
    const refused = await send(gateway, host, '/api/a', { headers: { 'x-api-key': key } });
    expect([get.status, head.status, refused.status]).toEqual([200, 200, 429]);
    expect(get.headers['ratelimit-policy']).toBe('"tenant";q=2;w=2000');
    expect(get.headers['ratelimit']).toMatch(/^"tenant";r=1;t=\d+$/);
    expect(head.headers['ratelimit']).toMatch(/^"tenant";r=0;t=\d+$/);
    expect(refused.json()).toMatchObject({ error: { code: 'rate_limited' } });
    // A token comes back every 1,000 s: the client is told to wait that long at most, never 0.
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(1000);
    expect(refused.headers['ratelimit']).toBe(`"tenant";r=0;t=${retryAfter}`);
  });
});
