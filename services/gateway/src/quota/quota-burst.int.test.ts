import { randomUUID } from 'node:crypto';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { createTestRedis } from '@vantageedge/shared/testing/redis';
import { RedisQuotaStore } from '@vantageedge/shared/usage/quota-store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  TEST_PEPPER,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { sendHttp2Burst } from '../testing/http2-bursts.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createQuotaStage } from './quota-stage.js';

/**
 * An HTTP/2 client delivers a hundred requests in one read, all of them at the quota stage before Redis
 * answers the first: far more than the tenant's turns and queue of checks on the replica's Redis
 * connection. A key whose quota is used up must not get any of them to its origin (they were served
 * uncounted, as if Redis were down).
 */
const SESSIONS = 10;
const STREAMS_PER_SESSION = 100;
const QUOTA = 5;

describe('a used-up key quota and a burst of concurrent HTTP/2 requests', () => {
  const redis = createTestRedis('quota-burst');
  let origin: TestOrigin;
  let gateway: TestGateway;
  const originId = randomUUID();
  const key = `ve_test_${randomUUID().replaceAll('-', '')}`;

  beforeAll(async () => {
    origin = await startTestOrigin('quota-burst-origin');
    gateway = await startTestGateway(
      { GATEWAY_H2C: 'true' },
      { stages: [createQuotaStage({ store: new RedisQuotaStore(redis.client), keyPrefix: redis.prefix })] },
    );
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'metered-burst',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [{ path_pattern: '/keyed/*', origin_id: originId, auth_mode: 'apikey_required' }],
        apiKeys: [{ key_hash: hashApiKey(TEST_PEPPER, key), quota: { requests_per_day: QUOTA } }],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
    await redis.cleanup();
  });

  it('gets none of them to the origin: each is refused, as used up or as past the checks’ bound', async () => {
    const headers = { 'x-api-key': key };
    for (let i = 0; i < QUOTA; i++) {
      expect((await send(gateway, 'metered-burst.localhost', '/keyed/a', { headers })).status).toBe(200);
    }
    expect((await send(gateway, 'metered-burst.localhost', '/keyed/a', { headers })).status).toBe(429);
    const seenBefore = origin.seen.length;

    const tally = await sendHttp2Burst(gateway, {
      sessions: SESSIONS,
      streamsPerSession: STREAMS_PER_SESSION,
      headers: { ':path': '/keyed/burst', ':authority': 'metered-burst.localhost', 'x-api-key': key },
    });

    expect(origin.seen.length - seenBefore).toBe(0);
    for (const answer of Object.keys(tally))
      expect(answer).toMatch(/^(429 quota_exceeded|503 limit_checks_busy)$/);
    expect(tally['429 quota_exceeded']).toBeGreaterThan(0);
  }, 60_000);
});
