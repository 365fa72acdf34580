import { randomUUID } from 'node:crypto';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { createTestRedis } from '@vantageedge/shared/testing/redis';
import { RedisQuotaStore } from '@vantageedge/shared/usage/quota-store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCacheStage } from '../cache/cache-stage.js';
import type { ResponseCache } from '../cache/response-cache.js';
import { memoryResponseCache } from '../cache/testing/memory-response-cache.js';
import { send, startTestGateway, TEST_PEPPER, type TestGateway } from '../testing/gateway-harness.js';
import { type HttpOrigin, startHttpOrigin } from '../testing/http-origins.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createQuotaStage } from './quota-stage.js';

/**
 * Regression: a cache HIT replayed the X-Quota-* headers stored with the entry, over the ones the quota
 * stage had set for the request. An origin that reports a quota of its own (another metered API, a
 * gateway in front of it) then told a caller whose key was nearly used up that thousands were left,
 * on HITs only, while its MISSes said the truth.
 */
describe('a cache HIT under a quota carries what is left of the caller’s own quota', () => {
  const redis = createTestRedis('quota-cache-hit');
  let origin: HttpOrigin;
  let originHits = 0;
  let gateway: TestGateway;
  let cache: ResponseCache;
  const host = 'quotahit.localhost';
  const key = `ve_test_${randomUUID()}`;
  const freeKey = `ve_test_${randomUUID()}`;

  beforeAll(async () => {
    origin = await startHttpOrigin((req, res) => {
      originHits++;
      req.resume();
      res.writeHead(200, {
        'content-type': 'application/json',
        'cache-control': 'public, max-age=60',
        'x-quota-limit': '5000',
        'x-quota-remaining': '4999',
        'x-quota-reset': '86000',
      });
      res.end(JSON.stringify({ ok: true }));
    });
    cache = memoryResponseCache();
    gateway = await startTestGateway(
      {},
      {
        stages: [
          createQuotaStage({ store: new RedisQuotaStore(redis.client), keyPrefix: redis.prefix }),
          createCacheStage(cache),
        ],
      },
    );
    const originId = randomUUID();
    const snapshot = buildSnapshot({
      subdomain: 'quotahit',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [
        {
          origin_id: originId,
          path_pattern: '/items/*',
          auth_mode: 'apikey_required',
          cache_policy: { mode: 'override', ttl_seconds: 60, shared: true },
        },
      ],
      apiKeys: [
        { key_hash: hashApiKey(TEST_PEPPER, key), quota: { requests_per_day: 3 } },
        { key_hash: hashApiKey(TEST_PEPPER, freeKey) },
      ],
    });
    gateway.store.apply(snapshot);
    await cache.prepareTenant(snapshot.tenant_id);
  });

  afterAll(async () => {
    await gateway?.close();
    await cache?.close();
    await origin?.close();
    await redis.cleanup();
  });

  it('answers HITs with the key’s own X-Quota-*, never those the origin sent with the entry', async () => {
    // Filled by a caller without a quota: the gateway sets no X-Quota-* of its own, the origin's go out.
    const fill = await send(gateway, host, '/items/1', { headers: { 'x-api-key': freeKey } });
    expect(fill.headers['x-cache']).toBe('MISS');
    expect(fill.headers['x-quota-remaining']).toBe('4999');
    const headers = { 'x-api-key': key };
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await send(gateway, host, '/items/1', { headers }));
    expect(originHits).toBe(1);
    expect(answers.map((answer) => answer.headers['x-cache'])).toEqual(['HIT', 'HIT', 'HIT']);
    expect(answers.map((answer) => answer.headers['x-quota-limit'])).toEqual(['3', '3', '3']);
    expect(answers.map((answer) => answer.headers['x-quota-remaining'])).toEqual(['2', '1', '0']);
    for (const answer of answers) expect(Number(answer.headers['x-quota-reset'])).toBeLessThanOrEqual(86_400);
    const refused = await send(gateway, host, '/items/1', { headers });
    expect(refused.status).toBe(429);
  });
});
