import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { createTestRedis, type TestRedis } from '@vantageedge/shared/testing/redis';
import { RedisUsageBatchStore } from '@vantageedge/shared/usage/redis-usage-batch-store';
import {
  encodeUsageCell,
  hourOf,
  type UsageCell,
  type UsageCounts,
} from '@vantageedge/shared/usage/usage-cells';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyUsageBatch, startUsageFlusher } from './usage-flusher.js';

/** Gateway usage batches in the real Redis, moved into the real PostgreSQL: each batch added once. */

let db: TestDatabase;
let redis: TestRedis;
let batches: RedisUsageBatchStore;
const tenantId = randomUUID();
const routeId = randomUUID();
const hour = hourOf(Date.parse('2026-11-27T10:15:00Z'));

const cell = (overrides: Partial<UsageCell> = {}): string =>
  encodeUsageCell({
    tenantId,
    routeId,
    apiKeyId: '',
    userId: '',
    statusClass: '2xx',
    hour,
    ...overrides,
  });

async function totals(): Promise<Record<string, number>> {
  const { rows } = await db.pool.query<{ status_class: string; api_key_id: string; requests: string }>(
    'select status_class, api_key_id, sum(requests) as requests from usage_counts where tenant_id = $1 group by 1, 2',
    [tenantId],
  );
  return Object.fromEntries(
    rows.map((row) => [`${row.status_class}/${row.api_key_id || '-'}`, Number(row.requests)]),
  );
}

beforeAll(async () => {
  db = await createTestDatabase();
  redis = createTestRedis('usage');
  batches = new RedisUsageBatchStore(redis.client, redis.prefix);
});
afterAll(async () => {
  await redis.cleanup();
  await db.drop();
});

describe('the usage flusher', () => {
  it('adds every replica batch into the hourly counts and empties the store', async () => {
    const keyId = randomUUID();
    await batches.write(
      `gw-1:${randomUUID()}`,
      new Map([
        [cell(), 5],
        [cell({ statusClass: '4xx' }), 2],
      ]),
    );
    await batches.write(
      `gw-2:${randomUUID()}`,
      new Map([
        [cell(), 3],
        [cell({ apiKeyId: keyId }), 4],
      ]),
    );
    const flusher = startUsageFlusher({ pool: db.pool, batches, intervalMs: 60_000 });
    try {
      expect(await flusher.flush()).toBe(14);
    } finally {
      await flusher.stop();
    }
    expect(await totals()).toEqual({ '2xx/-': 8, '4xx/-': 2, [`2xx/${keyId}`]: 4 });
    expect(await batches.list()).toEqual([]);
  });

  it('does not count again a batch applied before a crash (still in Redis) is not counted again', async () => {
    const before = await totals();
    const batchId = `gw-1:${randomUUID()}`;
    const counts: UsageCounts = new Map([[cell({ statusClass: '5xx' }), 7]]);
    await batches.write(batchId, counts);
    // The flusher committed this batch, then died before deleting it from Redis.
    await applyUsageBatch(db.pool, batchId, counts);
    const flusher = startUsageFlusher({ pool: db.pool, batches, intervalMs: 60_000 });
    try {
      expect(await flusher.flush()).toBe(0);
    } finally {
      await flusher.stop();
    }
    expect((await totals())['5xx/-']).toBe((before['5xx/-'] ?? 0) + 7);
    expect(await batches.list()).toEqual([]);
  });

  it('counts a batch once when two flushers race for it', async () => {
    const before = (await totals())['3xx/-'] ?? 0;
    for (let i = 0; i < 5; i++) {
      await batches.write(`gw-${i}:${randomUUID()}`, new Map([[cell({ statusClass: '3xx' }), 10]]));
    }
    const one = startUsageFlusher({ pool: db.pool, batches, intervalMs: 60_000 });
    const two = startUsageFlusher({ pool: db.pool, batches, intervalMs: 60_000 });
    try {
      const added = await Promise.all([one.flush(), two.flush()]);
      expect(added[0] + added[1]).toBe(50);
    } finally {
      await Promise.all([one.stop(), two.stop()]);
    }
    expect((await totals())['3xx/-']).toBe(before + 50);
  });

  it('skips cells it cannot read instead of failing the batch', async () => {
    const before = (await totals())['1xx/-'] ?? 0;
    await batches.write(
      `gw-1:${randomUUID()}`,
      new Map([
        ['garbage', 3],
        [cell({ statusClass: '1xx' }), 1],
      ]),
    );
    const flusher = startUsageFlusher({ pool: db.pool, batches, intervalMs: 60_000 });
    try {
      expect(await flusher.flush()).toBe(1);
    } finally {
      await flusher.stop();
    }
    expect((await totals())['1xx/-']).toBe(before + 1);
  });
});
