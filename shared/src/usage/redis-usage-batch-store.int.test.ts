import { afterAll, describe, expect, it } from 'vitest';
import { createTestRedis } from '../testing/redis.js';
import { recordCommandSizes } from '../testing/redis-command-sizes.js';
import { RedisUsageBatchStore } from './redis-usage-batch-store.js';
import type { UsageCounts } from './usage-cells.js';

const redis = createTestRedis('usage-batches');

afterAll(async () => {
  await redis.cleanup();
});

describe('the work one usage batch gives the shared Redis', () => {
  it('writes and reads a batch of GATEWAY_USAGE_MAX_CELLS (100,000) cells in commands of at most 1,000 fields', async () => {
    const store = new RedisUsageBatchStore(redis.client, redis.prefix);
    // Tenants naming fresh routes, keys and users fill a replica's batch up to the cell limit.
    const counts: UsageCounts = new Map(Array.from({ length: 100_000 }, (_, i) => [`cell-${i}`, i + 1]));

    const sizes = recordCommandSizes(redis.client);
    await store.write('batch-1', counts).finally(() => sizes.stop());
    const written = sizes.largest();
    const readSizes = recordCommandSizes(redis.client);
    const read = await store.read('batch-1').finally(() => readSizes.stop());

    // HSCAN's COUNT is a hint: a bucket it walks may hold a few more fields.
    expect(written.size).toBeLessThanOrEqual(2 * 1_000 + 1);
    expect(readSizes.largest().size).toBeLessThanOrEqual(2 * 1_000 + 1);
    expect(read).toEqual(counts);
    expect(await store.list()).toEqual(['batch-1']);
    expect(await redis.client.ttl(`${redis.prefix}u:{usage}:batch:batch-1`)).toBeGreaterThan(0);
  });
});
