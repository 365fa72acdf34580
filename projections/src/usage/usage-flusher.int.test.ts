import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { createTestRedis, type TestRedis } from '@vantageedge/shared/testing/redis';
import { RedisUsageBatchStore } from '@vantageedge/shared/usage/redis-usage-batch-store';
import {
  encodeUsageCell,
  hourOf,
  newUsageBatchId,
  type UsageCell,
  type UsageCounts,
} from '@vantageedge/shared/usage/usage-cells';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { applyUsageBatch, pruneUsage, startUsageFlusher, USAGE_BATCH_DEDUPE_DAYS } from './usage-flusher.js';

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

describe('the usage flusher and what a tenant controls', () => {
  it('skips a cell PostgreSQL cannot store (NUL in a user id from a tenant’s issuer): the batch and the next ones are added', async () => {
    const before = (await totals())['2xx/-'] ?? 0;
    await batches.write(
      `gw-1:${randomUUID()}`,
      new Map([
        [cell({ userId: 'evil\u0000' }), 5],
        [cell(), 1],
      ]),
    );
    const flusher = startUsageFlusher({ pool: db.pool, batches, intervalMs: 60_000 });
    try {
      expect(await flusher.flush()).toBe(1);
    } finally {
      await flusher.stop();
    }
    expect((await totals())['2xx/-']).toBe(before + 1);
    expect(await batches.list()).toEqual([]);
  });
});

describe('the usage flusher’s retention', () => {
  const DAY = 86_400_000;
  const old = randomUUID(); // a tenant of its own, so other tests' rows do not matter

  async function countsOf(tenant: string): Promise<string[]> {
    const { rows } = await db.pool.query<{ route_id: string }>(
      'select route_id from usage_counts where tenant_id = $1 order by route_id',
      [tenant],
    );
    return rows.map((row) => row.route_id);
  }
  async function addCount(tenant: string, routeId: string, ageMs: number): Promise<void> {
    await db.pool.query(
      `insert into usage_counts (tenant_id, hour, route_id, api_key_id, user_id, status_class, requests)
       values ($1, date_trunc('hour', now() - $2 * interval '1 millisecond'), $3, '', '', '2xx', 1)`,
      [tenant, ageMs, routeId],
    );
  }
  async function addBatch(id: string, ageMs: number): Promise<void> {
    await db.pool.query(
      `insert into usage_batches (batch_id, requests, applied_at) values ($1, 1, now() - $2 * interval '1 millisecond')`,
      [id, ageMs],
    );
  }
  async function batchesLike(prefix: string): Promise<string[]> {
    const { rows } = await db.pool.query<{ batch_id: string }>(
      'select batch_id from usage_batches where batch_id like $1 order by batch_id',
      [`${prefix}%`],
    );
    return rows.map((row) => row.batch_id);
  }

  it('deletes counts older than the retention and batch ids older than the dedupe window, chunk by chunk', async () => {
    for (let i = 0; i < 7; i++) await addCount(old, `old-${i}`, (401 + i * 30) * DAY);
    await addCount(old, 'recent-399d', 399 * DAY);
    await addCount(old, 'recent-1h', 3_600_000);
    const prefix = `prune-${randomUUID()}:`;
    for (let i = 0; i < 5; i++) await addBatch(`${prefix}old-${i}`, (USAGE_BATCH_DEDUPE_DAYS + 1 + i) * DAY);
    await addBatch(`${prefix}recent`, (USAGE_BATCH_DEDUPE_DAYS - 1) * DAY);

    const pruned = await pruneUsage(db.pool, { retentionDays: 400, chunkRows: 3 });
    expect(pruned.counts).toBeGreaterThanOrEqual(7);
    expect(pruned.batches).toBeGreaterThanOrEqual(5);
    expect(await countsOf(old)).toEqual(['recent-1h', 'recent-399d']);
    expect(await batchesLike(prefix)).toEqual([`${prefix}recent`]);
    // Every other test's counts (this hour, and the hours of 2026-11-27) are kept.
    expect(Object.values(await totals()).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });

  it('keeps every count with a retention of 0 days, and still prunes batch ids', async () => {
    const tenant = randomUUID();
    await addCount(tenant, 'ancient', 5_000 * DAY);
    const prefix = `keep-${randomUUID()}:`;
    await addBatch(`${prefix}old`, (USAGE_BATCH_DEDUPE_DAYS + 1) * DAY);
    await pruneUsage(db.pool, { retentionDays: 0 });
    expect(await countsOf(tenant)).toEqual(['ancient']);
    expect(await batchesLike(prefix)).toEqual([]);
  });

  it('prunes when the flusher starts and then on its interval', async () => {
    const tenant = randomUUID();
    await addCount(tenant, 'before-start', 500 * DAY);
    const flusher = startUsageFlusher({
      pool: db.pool,
      batches,
      intervalMs: 60_000,
      retentionDays: 30,
      retentionIntervalMs: 200,
    });
    try {
      await vi.waitFor(async () => expect(await countsOf(tenant)).toEqual([]), { timeout: 5_000 });
      await addCount(tenant, 'later', 31 * DAY);
      await addCount(tenant, 'kept', 29 * DAY);
      await vi.waitFor(async () => expect(await countsOf(tenant)).toEqual(['kept']), { timeout: 5_000 });
    } finally {
      await flusher.stop();
    }
  });

  it('never applies a batch older than the dedupe window (its id may be pruned already): no double count', async () => {
    const before = (await totals())['2xx/-'] ?? 0;
    const now = Date.now();
    // Applied once, long ago; its id has since been pruned, and a replica that kept retrying wrote it again.
    await batches.write(
      newUsageBatchId('gw-1', now - USAGE_BATCH_DEDUPE_DAYS * 86_400_000),
      new Map([[cell(), 40]]),
    );
    await batches.write(newUsageBatchId('gw-1', now - 60_000), new Map([[cell(), 2]]));
    const flusher = startUsageFlusher({ pool: db.pool, batches, intervalMs: 60_000 });
    try {
      expect(await flusher.flush()).toBe(2);
    } finally {
      await flusher.stop();
    }
    expect((await totals())['2xx/-']).toBe(before + 2);
    expect(await batches.list()).toEqual([]);
  });
});
