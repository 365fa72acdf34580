import { randomUUID } from 'node:crypto';
import { createRedisClient, whenReady } from '@vantageedge/shared/redis/client';
import { TEST_INFRA } from '@vantageedge/shared/testing/infrastructure';
import { createTestRedis, type TestRedis } from '@vantageedge/shared/testing/redis';
import { startTcpProxy } from '@vantageedge/shared/testing/tcp-proxy';
import { RedisUsageBatchStore } from '@vantageedge/shared/usage/redis-usage-batch-store';
import { decodeUsageCell, OVERFLOW_ID } from '@vantageedge/shared/usage/usage-cells';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiKeyIdentity, oidcUserIdentity } from '../auth/identity.js';
import type { GatewayExchange } from '../pipeline/exchange.js';
import { UsageRecorder } from './usage-recorder.js';

/** The usage recorder writing its batches to the shared Redis, read back as the usage flusher reads them. */

let redis: TestRedis;

beforeAll(() => {
  redis = createTestRedis('usage-recorder');
});

afterAll(async () => {
  await redis?.cleanup();
});

function exchange(tenantId: string, routeId: string, identity: GatewayExchange['identity']) {
  return {
    tenant: { id: tenantId },
    route: { config: { id: routeId } },
    identity,
  } as unknown as GatewayExchange;
}

/** What the flusher would add for the tenant: requests by user id, from every pending batch. */
async function requestsByUser(store: RedisUsageBatchStore, tenantId: string): Promise<Map<string, number>> {
  const byUser = new Map<string, number>();
  for (const batchId of await store.list()) {
    for (const [field, requests] of await store.read(batchId)) {
      const cell = decodeUsageCell(field);
      if (cell?.tenantId !== tenantId) continue;
      byUser.set(cell.userId, (byUser.get(cell.userId) ?? 0) + requests);
    }
  }
  return byUser;
}

describe('the usage recorder over the shared Redis', () => {
  it('regression: counts every request of subjects whose ids are not well-formed Unicode (lone surrogates), none lost', async () => {
    const tenantId = randomUUID();
    const routeId = randomUUID();
    const store = new RedisUsageBatchStore(redis.client, redis.prefix);
    const recorder = new UsageRecorder({
      batches: store,
      replicaId: `r-${randomUUID()}`,
      intervalMs: 60_000,
    });
    // A tenant's own issuer may put any JSON string in `sub`: "\ud800" and "\udc00" are two subjects in
    // memory, but one and the same U+FFFD once written to Redis as UTF-8.
    const subjects = ['a\ud800', 'a\udc00', 'a\udbff', 'a\udfff', 'well-formed'];
    for (const [index, sub] of subjects.entries()) {
      for (let i = 0; i <= index; i++) {
        recorder.record(exchange(tenantId, routeId, oidcUserIdentity('https://idp.test', sub, [])), 200);
      }
    }
    await recorder.close();

    const byUser = await requestsByUser(store, tenantId);
    expect([...byUser.values()].reduce((a, b) => a + b, 0)).toBe(1 + 2 + 3 + 4 + 5);
    expect(byUser.get(OVERFLOW_ID)).toBe(1 + 2 + 3 + 4);
  });

  it('regression: a graceful stop while Redis is unreachable writes every count once Redis is back', async () => {
    const tenantId = randomUUID();
    const routeId = randomUUID();
    const keyId = randomUUID();
    // The replica's Redis client as production makes it (commands fail at once while disconnected),
    // through a proxy that can make Redis unreachable.
    const proxy = await startTcpProxy(TEST_INFRA.redisUrl);
    const client = createRedisClient({ url: proxy.urlFor(TEST_INFRA.redisUrl), name: 'usage-stop' });
    try {
      await whenReady(client);
      const refused: string[] = [];
      const recorder = new UsageRecorder({
        batches: new RedisUsageBatchStore(client, redis.prefix),
        replicaId: `r-${randomUUID()}`,
        intervalMs: 60_000,
        closeTimeoutMs: 60_000,
        closeRetryIntervalMs: 20,
        logger: {
          info() {},
          warn: (message) => refused.push(message),
          error: (message) => refused.push(message),
        },
      });
      const request = exchange(tenantId, routeId, apiKeyIdentity(keyId, []));
      for (let i = 0; i < 3; i++) recorder.record(request, 200);
      // A Redis failover: the connection drops and no new one is taken for a while.
      proxy.refuseConnections(true);
      proxy.cutClientSide();
      await recorder.flush(); // refused: kept
      expect(refused).toHaveLength(1);
      for (let i = 0; i < 4; i++) recorder.record(request, 503);
      // SIGTERM during the failover; Redis answers again after the stop's first writes were refused.
      const stopped = recorder.close();
      while (refused.length < 3) await new Promise((resolve) => setTimeout(resolve, 10));
      proxy.refuseConnections(false);
      await stopped;

      const byUser = await requestsByUser(new RedisUsageBatchStore(redis.client, redis.prefix), tenantId);
      expect(byUser).toEqual(new Map([['', 3 + 4]]));
      expect(refused.filter((message) => message.includes('at shutdown'))).toEqual([]);
    } finally {
      client.disconnect();
      await proxy.close();
    }
  });
});
