import { randomUUID } from 'node:crypto';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createRateLimitStage } from './rate-limit-stage.js';
import { createRateLimiter } from './rate-limiter.js';
import { RedisLimitStore } from './redis-limit-store.js';

/**
 * A tenant admin changes a route's limit while callers are refused by it: every replica applies the new
 * limit from the next request on, whatever the accuracy mode. Regressions: fast mode remembers a refusal
 * Redis gave until its retry-after (for a long window, hours away), and remembered it past a change of
 * the limit, so a raised limit kept refusing on every replica that had refused before; and a sliding
 * window's key holds the index of its window, so made longer, the index counted in the old, shorter
 * windows lay far in the future: the caller was refused past every Retry-After it was given, until its
 * key expired two windows after its last admission.
 */
const SUBDOMAIN = `limchg${Date.now()}`;
const HOST = `${SUBDOMAIN}.localhost`;
const prefix = `test:rl-changed:${uniqueSuffix()}:`;
const tenantId = randomUUID();
const originId = randomUUID();

let origin: TestOrigin;
let gateway: TestGateway;
let redis: RedisClient;
let version = 0;

/** The tenant's next version: one route, `routeId`, with this limit. */
function applyLimit(routeId: string, rateLimit: Record<string, unknown>): void {
  version++;
  gateway.store.apply(
    buildSnapshot({
      tenantId,
      version,
      subdomain: SUBDOMAIN,
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [{ id: routeId, origin_id: originId, path_pattern: '/api/*', rate_limit: rateLimit }],
    }),
  );
}

const get = () => send(gateway, HOST, '/api/items');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  origin = await startTestOrigin('changed-limits-origin');
  // 2 s for an answer: the default 50 ms is a busy machine's scheduling delay, and a check Redis did not
  // answer in time is served uncounted, which these tests would read as the limit's decision.
  redis = createRedisClient({ url: TEST_INFRA.redisUrl, name: 'changed-limits', commandTimeoutMs: 2_000 });
  await whenReady(redis);
  const limiter = createRateLimiter({
    store: new RedisLimitStore(redis),
    registry: createMetricsRegistry('changed_limits', { defaultMetrics: false }),
    logger: createLogger({ service: 'test', level: 'error' }),
    keyPrefix: prefix,
  });
  gateway = await startTestGateway({}, { stages: [createRateLimitStage(limiter)] });
});

afterAll(async () => {
  await gateway?.close();
  await origin?.close();
  redis?.disconnect();
  const cleaner = new Redis(TEST_INFRA.redisUrl);
  const keys = await cleaner.keys(`${prefix}*`);
  if (keys.length > 0) await cleaner.del(...keys);
  cleaner.disconnect();
});

describe('a limit changed while its callers are refused', () => {
  it.each(['exact', 'fast'])('%s accuracy: a raised limit serves the next request', async (accuracy) => {
    const routeId = randomUUID();
    const hourly = { algorithm: 'sliding_window', window_seconds: 3600, requests_per_second: 1, accuracy };
    applyLimit(routeId, { ...hourly, limit: 2 });
    const first = [await get(), await get(), await get()].map((response) => response.status);
    expect(first).toEqual([200, 200, 429]);

    applyLimit(routeId, { ...hourly, limit: 100 });
    const after = await get();
    expect(after.status, after.text).toBe(200);
    expect(after.headers['ratelimit-policy']).toContain('q=100');
  });

  it('a sliding window made longer: a client that waits its Retry-After is served', async () => {
    const routeId = randomUUID();
    const window = { algorithm: 'sliding_window', requests_per_second: 1, limit: 4 };
    applyLimit(routeId, { ...window, window_seconds: 1 });
    expect((await get()).status).toBe(200);

    // The caller's counts were kept by 1-second windows; they are now read as 4-second ones.
    applyLimit(routeId, { ...window, window_seconds: 4 });
    let refused = await get();
    for (let sent = 0; refused.status === 200 && sent < 4; sent++) refused = await get();
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).toBeLessThanOrEqual(5);

    await sleep(retryAfter * 1000);
    const waited = await get();
    expect(waited.status, waited.text).toBe(200);
  });
});
