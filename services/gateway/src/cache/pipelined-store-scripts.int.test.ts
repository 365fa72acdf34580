import { randomUUID } from 'node:crypto';
import { createRedisClient, whenReady } from '@vantageedge/shared/redis/client';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisCacheStore } from './redis-cache-store.js';

/**
 * Regression test: the replica's Redis client pipelines the calls made in one turn of the event loop
 * (auto-pipelining), and ioredis's pipeline has only the scripts the client had when that turn's pipeline
 * was opened. The purge scripts were defined on their first use: a tenant removed (its entries forgotten)
 * or a path purged for the first time while other store calls of the same turn were pipelined made a
 * call the pipeline did not have, and ioredis then handed the pipelined calls fewer answers than it had
 * callers — an uncaught exception that took the replica, and every tenant it serves, down. Found by the
 * replica-chaos test on a slow machine (a tombstone arriving while the cache's lookups were pipelined).
 */
const prefix = `ve-test-pipelined-scripts-${uniqueSuffix()}:`;
const client = createRedisClient({
  url: TEST_INFRA.redisUrl,
  autoPipelining: true,
  name: 'pipelined-scripts',
  // Each call must be answered: 2 s, not the default 50 ms, which a busy machine's scheduling can pass.
  commandTimeoutMs: 2_000,
});
let store: RedisCacheStore;

beforeAll(async () => {
  await whenReady(client);
  store = new RedisCacheStore(client, { keyPrefix: prefix });
});

afterAll(() => {
  client.disconnect();
});

describe('the Redis cache store on a client that pipelines the calls of one turn', () => {
  it("forgets a removed tenant's entries while other calls of the same turn are pipelined: every call answered", async () => {
    const pipelined = client.get(`${prefix}another-call`);
    const forgotten = store.forgetTenantEntries(randomUUID());
    await expect(Promise.all([pipelined, forgotten])).resolves.toEqual([null, undefined]);
  });

  it('purges a path while other calls of the same turn are pipelined: every call answered', async () => {
    const tenantId = randomUUID();
    const pipelined = client.get(`${prefix}another-call`);
    const purged = store.invalidatePath(`c:{${tenantId}}:1:route-1:/path:idx`);
    await expect(Promise.all([pipelined, purged])).resolves.toEqual([null, undefined]);
  });
});
