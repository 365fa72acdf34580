import { randomUUID } from 'node:crypto';
import { createTestRedis, type TestRedis } from '@vantageedge/shared/testing/redis';
import { RedisUsageBatchStore } from '@vantageedge/shared/usage/redis-usage-batch-store';
import { decodeUsageCell, OVERFLOW_ID } from '@vantageedge/shared/usage/usage-cells';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { oidcUserIdentity } from '../auth/identity.js';
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
});
