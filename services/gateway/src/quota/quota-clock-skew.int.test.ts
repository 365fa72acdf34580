import { randomUUID } from 'node:crypto';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { createTestRedis } from '@vantageedge/shared/testing/redis';
import { RedisQuotaStore } from '@vantageedge/shared/usage/quota-store';
import { quotaWindows } from '@vantageedge/shared/usage/quota-windows';
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
import { createQuotaStage } from './quota-stage.js';

const DAY_MS = 86_400_000;

// Regression test: each replica chose the period (the counter's key) by its own clock, so a replica
// whose clock was already past midnight counted into tomorrow's counter while the others still counted
// today's: a client got a fresh quota from it, and one behind it counted into yesterday's.
describe('quota periods over replicas whose clocks disagree', () => {
  const redis = createTestRedis('quota-clock-skew');
  const originId = randomUUID();
  const tenantId = randomUUID();
  const keyId = randomUUID();
  const key = `ve_test_${randomUUID()}`;
  let origin: TestOrigin;
  const replicas: Record<'onTime' | 'ahead' | 'behind', TestGateway | undefined> = {
    onTime: undefined,
    ahead: undefined,
    behind: undefined,
  };

  const startReplica = async (skewMs: number) => {
    const gateway = await startTestGateway(
      {},
      {
        stages: [
          createQuotaStage({
            store: new RedisQuotaStore(redis.client),
            keyPrefix: redis.prefix,
            clock: () => Date.now() + skewMs,
          }),
        ],
      },
    );
    gateway.store.apply(
      buildSnapshot({
        tenantId,
        subdomain: 'skewed',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [{ path_pattern: '/keyed/*', origin_id: originId, auth_mode: 'apikey_required' }],
        apiKeys: [{ id: keyId, key_hash: hashApiKey(TEST_PEPPER, key), quota: { requests_per_day: 4 } }],
      }),
    );
    return gateway;
  };

  beforeAll(async () => {
    origin = await startTestOrigin('quota-clock-origin');
    // Clocks that read a few seconds into the next UTC day, and a few seconds before this one began.
    const sinceMidnight = Date.now() % DAY_MS;
    replicas.onTime = await startReplica(0);
    replicas.ahead = await startReplica(DAY_MS - sinceMidnight + 3_000);
    replicas.behind = await startReplica(-sinceMidnight - 3_000);
  });

  afterAll(async () => {
    for (const replica of Object.values(replicas)) await replica?.close();
    await origin?.close();
    await redis.cleanup();
  });

  it("counts every replica's requests in the period of the shared counters' clock, and refuses on all past the quota", async () => {
    const call = (replica: TestGateway) =>
      send(replica, 'skewed.localhost', '/keyed/1', { headers: { 'x-api-key': key } });
    const served = [
      await call(replicas.onTime!),
      await call(replicas.ahead!),
      await call(replicas.behind!),
      await call(replicas.onTime!),
    ];
    expect(served.map((answer) => answer.status)).toEqual([200, 200, 200, 200]);
    expect(served.map((answer) => answer.headers['x-quota-remaining'])).toEqual(['3', '2', '1', '0']);
    // The period ends at the shared clock's midnight, not at the skewed replica's.
    const secondsToMidnight = Math.ceil((DAY_MS - (Date.now() % DAY_MS)) / 1000);
    expect(Number(served[1]!.headers['x-quota-reset'])).toBeGreaterThanOrEqual(secondsToMidnight - 5);
    expect(Number(served[1]!.headers['x-quota-reset'])).toBeLessThanOrEqual(secondsToMidnight + 5);

    for (const replica of [replicas.ahead!, replicas.behind!, replicas.onTime!]) {
      expect((await call(replica)).status).toBe(429);
    }
    // Today's counter holds all four, and no other period's counter was made.
    const today = quotaWindows(
      redis.prefix,
      tenantId,
      { kind: 'api_key', id: keyId },
      { requests_per_day: 4 },
      Date.now(),
    );
    expect(await redis.client.get(today[0]!.key)).toBe('4');
    expect(await redis.client.keys(`${redis.prefix}q:{${tenantId}}:key:*`)).toEqual([today[0]!.key]);
  });
});
