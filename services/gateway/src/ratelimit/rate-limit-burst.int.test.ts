import { randomUUID } from 'node:crypto';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createTestRedis } from '@vantageedge/shared/testing/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { sendHttp2Burst } from '../testing/http2-bursts.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createRateLimitStage } from './rate-limit-stage.js';
import { createRateLimiter } from './rate-limiter.js';
import { RedisLimitStore } from './redis-limit-store.js';

/**
 * One HTTP/2 client delivers a hundred requests in one read, all of them at the rate-limit stage before
 * Redis answers the first: past the tenant's 32 calls in flight and 512 waiting. Those were decided as if
 * Redis were down, and a fail-open limit's per-replica fallback admitted a second full allowance on
 * every replica (5 + 5 on one, 5 + 3 × 5 on three, Redis healthy all along). They are refused 503.
 */
const LIMIT = 5;
const SESSIONS = 10;
const STREAMS_PER_SESSION = 100;
const HOST = 'rlburst.localhost';

describe('a fail-open limit and an HTTP/2 burst past its tenant’s checks', () => {
  const redis = createTestRedis('rate-limit-burst');
  let origin: TestOrigin;
  const replicas: TestGateway[] = [];
  const originId = randomUUID();
  const tenantId = randomUUID();
  const routeIds = [randomUUID(), randomUUID()];
  const snapshot = () =>
    buildSnapshot({
      tenantId,
      subdomain: 'rlburst',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: ['/one/*', '/three/*'].map((path_pattern, i) => ({
        id: routeIds[i]!,
        path_pattern,
        origin_id: originId,
        rate_limit: { requests_per_second: LIMIT / 60, burst: LIMIT, scope: 'route' as const },
      })),
    });
  const replica = async (): Promise<TestGateway> => {
    const limiter = createRateLimiter({
      store: new RedisLimitStore(redis.client),
      keyPrefix: redis.prefix,
      registry: createMetricsRegistry(`burst${replicas.length}`, { defaultMetrics: false }),
      logger: createLogger({ service: 'test', level: 'error' }),
    });
    const gateway = await startTestGateway(
      { GATEWAY_H2C: 'true' },
      { stages: [createRateLimitStage(limiter)] },
    );
    gateway.store.apply(snapshot());
    replicas.push(gateway);
    return gateway;
  };

  beforeAll(async () => {
    origin = await startTestOrigin('rate-limit-burst-origin');
  });

  afterAll(async () => {
    for (const gateway of replicas) await gateway.close();
    await origin?.close();
    await redis.cleanup();
  });

  const burst = (gateway: TestGateway, path: string) =>
    sendHttp2Burst(gateway, {
      sessions: SESSIONS,
      streamsPerSession: STREAMS_PER_SESSION,
      headers: { ':path': path, ':authority': HOST },
    });

  const reached = (path: string) => origin.seen.filter((seen) => seen.url.startsWith(path)).length;

  it('admits the limit and no more on one replica; the rest are refused 429 or 503', async () => {
    const gateway = await replica();
    const tally = await burst(gateway, '/one/x');
    expect(reached('/one/')).toBe(LIMIT);
    for (const answer of Object.keys(tally)) {
      expect(answer).toMatch(/^(200 |429 rate_limited|503 limit_checks_busy)$/);
    }
    expect(tally['503 limit_checks_busy']).toBeGreaterThan(0);
  }, 60_000);

  it('admits the limit and no more across three replicas sharing Redis', async () => {
    const gateways = [replicas[0] ?? (await replica()), await replica(), await replica()];
    for (const gateway of gateways) await burst(gateway, '/three/x');
    expect(reached('/three/')).toBe(LIMIT);
  }, 120_000);
});
