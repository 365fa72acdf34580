import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from '@vantageedge/shared/observability/logger';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { createTestRedis, type TestRedis } from '@vantageedge/shared/testing/redis';
import { startTcpProxy } from '@vantageedge/shared/testing/tcp-proxy';
import { RedisUsageBatchStore } from '@vantageedge/shared/usage/redis-usage-batch-store';
import {
  encodeUsageCell,
  hourOf,
  newUsageBatchId,
  OVERFLOW_ID,
  type UsageCell,
  type UsageCounts,
} from '@vantageedge/shared/usage/usage-cells';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { applyUsageBatch, pruneUsage, startUsageFlusher, USAGE_BATCH_DEDUPE_DAYS } from './usage-flusher.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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

  it('locks the rows of a batch in one order whatever order the batch lists them in, so two flushers adding to the same rows never deadlock', async () => {
    // Two batches naming the same two rows the other way round: each statement would lock its first row
    // and wait for the other's (PostgreSQL aborts one, SQLSTATE 40P01). Seen from outside: while a batch
    // waits for its first row in the common order, it holds none of the later ones.
    const [keyA, keyB] = [randomUUID(), randomUUID()].sort() as [string, string];
    const first = cell({ statusClass: '5xx', apiKeyId: keyA });
    const second = cell({ statusClass: '5xx', apiKeyId: keyB });
    await applyUsageBatch(
      db.pool,
      randomUUID(),
      new Map([
        [first, 1],
        [second, 1],
      ]),
    );
    const holder = await db.pool.connect();
    const prober = await db.pool.connect();
    try {
      await holder.query('begin');
      await holder.query('select 1 from usage_counts where tenant_id = $1 and api_key_id = $2 for update', [
        tenantId,
        keyA,
      ]);
      const applying = applyUsageBatch(
        db.pool,
        randomUUID(),
        new Map([
          [second, 2],
          [first, 2],
        ]),
      );
      for (let attempt = 0; ; attempt += 1) {
        const { rows } = await prober.query<{ waiting: number }>(
          "select count(*)::int as waiting from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query like 'insert into usage_counts%'",
        );
        if (rows[0]?.waiting === 1) break;
        if (attempt > 200) throw new Error('the batch never waited for the locked row');
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      await prober.query('begin');
      const later = await prober
        .query('select 1 from usage_counts where tenant_id = $1 and api_key_id = $2 for update nowait', [
          tenantId,
          keyB,
        ])
        .then(
          () => 'free',
          (error: { code?: string }) => error.code,
        );
      await prober.query('rollback');
      await holder.query('commit');
      expect(await applying).toBe(4);
      expect(later).toBe('free');
    } finally {
      await holder.query('rollback').catch(() => {});
      holder.release();
      prober.release();
    }
    expect(await totals()).toMatchObject({ [`5xx/${keyA}`]: 3, [`5xx/${keyB}`]: 3 });
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
  it('counts a cell PostgreSQL cannot store as it is (NUL in a user id from a tenant’s issuer) under user "*": the batch and the next ones are added, totals exact', async () => {
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
      expect(await flusher.flush()).toBe(6);
    } finally {
      await flusher.stop();
    }
    expect((await totals())['2xx/-']).toBe(before + 6);
    const { rows } = await db.pool.query<{ requests: string }>(
      `select sum(requests) as requests from usage_counts where tenant_id = $1 and user_id = '*'`,
      [tenantId],
    );
    expect(Number(rows[0]!.requests)).toBe(5);
    expect(await batches.list()).toEqual([]);
  });
});

describe('the usage flusher and batches PostgreSQL refuses', () => {
  // Each test its own tenant and batch store (its own Redis prefix): a batch left pending by one test
  // must not be flushed by another.
  let stores = 0;
  const storeOfItsOwn = () => new RedisUsageBatchStore(redis.client, `${redis.prefix}refused-${++stores}:`);
  const tenantCell = (tenant: string, overrides: Partial<UsageCell> = {}) =>
    encodeUsageCell({
      tenantId: tenant,
      routeId,
      apiKeyId: '',
      userId: '',
      statusClass: '2xx',
      hour,
      ...overrides,
    });
  async function byUser(tenant: string): Promise<Record<string, number>> {
    const { rows } = await db.pool.query<{ user_id: string; requests: string }>(
      `select user_id, sum(requests) as requests from usage_counts where tenant_id = $1 and user_id <> 'full'
       group by 1`,
      [tenant],
    );
    return Object.fromEntries(
      rows.map((row) => [
        row.user_id.length > 40 ? `${row.user_id.length} chars` : row.user_id,
        Number(row.requests),
      ]),
    );
  }
  const flushes = async (flusher: { flush(): Promise<number> }, times: number): Promise<string[]> => {
    const errors: string[] = [];
    for (let i = 0; i < times; i++)
      await flusher.flush().catch((error: unknown) => errors.push(String(error)));
    return errors;
  };
  const logs = () => {
    const logger = { info: vi.fn(), warn: vi.fn(), error: vi.fn(), debug: vi.fn() };
    return { logger, as: logger as unknown as Logger };
  };

  it('adds a cell whose user id PostgreSQL cannot index (4 KB, from a gateway of the previous version) under user "*", and every batch after it', async () => {
    const tenant = randomUUID();
    const store = storeOfItsOwn();
    // Random, so PostgreSQL cannot compress them into the index: "index row size 4080 exceeds btree
    // version 4 maximum 2704 for index usage_counts_pkey" failed the batch, and every one after it.
    await store.write(
      newUsageBatchId('gw-old', Date.now()),
      new Map([
        [tenantCell(tenant, { userId: randomBytes(3_072).toString('base64') }), 3],
        [tenantCell(tenant, { userId: randomBytes(2_250).toString('base64') }), 2],
        [tenantCell(tenant, { userId: OVERFLOW_ID }), 1],
        [tenantCell(tenant, { userId: 'user_ok' }), 5],
      ]),
    );
    for (let i = 0; i < 20; i++) {
      await store.write(newUsageBatchId(`gw-${i}`, Date.now()), new Map([[tenantCell(tenant), 1]]));
    }
    const flusher = startUsageFlusher({ pool: db.pool, batches: store, intervalMs: 60_000 });
    try {
      expect(await flushes(flusher, 3)).toEqual([]);
    } finally {
      await flusher.stop();
    }
    // Three cells of one route, key, class and hour met as user "*": added together, one row.
    expect(await byUser(tenant)).toEqual({ '': 20, user_ok: 5, [OVERFLOW_ID]: 6 });
    expect(await store.list()).toEqual([]);
  });

  /** The count of user 'full' (near the bigint maximum), as PostgreSQL prints it. */
  async function fullCount(tenant: string): Promise<string | undefined> {
    const { rows } = await db.pool.query<{ requests: string }>(
      `select requests from usage_counts where tenant_id = $1 and user_id = 'full'`,
      [tenant],
    );
    return rows[0]?.requests;
  }

  /** A batch PostgreSQL refuses whatever its cells: it would take a count past bigint. */
  async function refusedBatch(store: RedisUsageBatchStore, tenant: string): Promise<string> {
    await db.pool.query(
      `insert into usage_counts (tenant_id, hour, route_id, api_key_id, user_id, status_class, requests)
       values ($1, to_timestamp($2), $3, '', 'full', '2xx', 9223372036854775000)`,
      [tenant, hour, routeId],
    );
    const id = newUsageBatchId('gw-refused', Date.now());
    await store.write(
      id,
      new Map([
        [tenantCell(tenant, { userId: 'full' }), 1_000],
        [tenantCell(tenant), 7],
      ]),
    );
    return id;
  }

  it('a batch PostgreSQL refuses stops no other batch, and after 3 failures in a row it is moved aside in Redis (error log, metrics), its counts kept', async () => {
    const tenant = randomUUID();
    const store = storeOfItsOwn();
    const refused = await refusedBatch(store, tenant);
    for (let i = 0; i < 20; i++) {
      await store.write(newUsageBatchId(`gw-${i}`, Date.now()), new Map([[tenantCell(tenant), 1]]));
    }
    const registry = new Registry();
    const { logger, as } = logs();
    const flusher = startUsageFlusher({
      pool: db.pool,
      batches: store,
      intervalMs: 60_000,
      maxBatchFailures: 3,
      registry,
      logger: as,
    });
    try {
      expect(await flusher.flush()).toBe(20);
      expect(await byUser(tenant)).toEqual({ '': 20 });
      expect(await store.list()).toEqual([refused]);
      expect(await flushes(flusher, 1)).toEqual([]);
      expect(await store.list()).toEqual([refused]);
      expect(logger.error).not.toHaveBeenCalled();
      expect(await flushes(flusher, 1)).toEqual([]);
    } finally {
      await flusher.stop();
    }
    expect(await store.list()).toEqual([]);
    expect(await store.listMovedAside()).toEqual([refused]);
    expect(await store.readMovedAside(refused)).toEqual(
      new Map([
        [tenantCell(tenant, { userId: 'full' }), 1_000],
        [tenantCell(tenant), 7],
      ]),
    );
    expect(logger.warn).toHaveBeenCalledTimes(2);
    expect(logger.error).toHaveBeenCalledTimes(1);
    expect(logger.error.mock.calls[0]![1]).toMatchObject({ batch_id: refused, failures: 3 });
    expect(String(logger.error.mock.calls[0]![1].error)).toMatch(/out of range/);
    const metrics = await registry.metrics();
    expect(metrics).toMatch(/^vantageedge_usage_flusher_batch_failures_total 3$/m);
    expect(metrics).toMatch(/^vantageedge_usage_flusher_batches_moved_aside_total 1$/m);
    expect(await byUser(tenant)).toEqual({ '': 20 });
    expect(await fullCount(tenant)).toBe('9223372036854775000');
  });

  it('moves nothing aside while PostgreSQL is unreachable (every batch fails alike), and adds the batches once it is back', async () => {
    const tenant = randomUUID();
    const store = storeOfItsOwn();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push(newUsageBatchId(`gw-${i}`, Date.now()));
      await store.write(ids.at(-1)!, new Map([[tenantCell(tenant), 2]]));
    }
    const unreachable = new pg.Pool({ host: '127.0.0.1', port: 1, connectionTimeoutMillis: 2_000 });
    unreachable.on('error', () => {});
    const { logger, as } = logs();
    const down = startUsageFlusher({
      pool: unreachable,
      batches: store,
      intervalMs: 60_000,
      maxBatchFailures: 2,
      logger: as,
    });
    try {
      expect(await flushes(down, 4)).toEqual([]);
    } finally {
      await down.stop();
      await unreachable.end();
    }
    expect((await store.list()).sort()).toEqual([...ids].sort());
    expect(await store.listMovedAside()).toEqual([]);
    expect(logger.error).not.toHaveBeenCalled();
    // One warning a pass for all of them, not one per batch.
    const passes = logger.warn.mock.calls.filter(([message]) => String(message).startsWith('usage batches'));
    expect(passes).toHaveLength(4);
    expect(passes[0]![1]).toMatchObject({ batches: 3, error: expect.stringMatching(/ECONNREFUSED/) });
    const up = startUsageFlusher({ pool: db.pool, batches: store, intervalMs: 60_000, maxBatchFailures: 2 });
    try {
      expect(await up.flush()).toBe(6);
    } finally {
      await up.stop();
    }
    expect(await byUser(tenant)).toEqual({ '': 6 });
  });

  it('queues no pass behind one PostgreSQL does not answer: the interval skips while it waits, and the batch is added once', async () => {
    const tenant = randomUUID();
    const store = storeOfItsOwn();
    await store.write(newUsageBatchId('gw-stalled', Date.now()), new Map([[tenantCell(tenant), 3]]));
    const listed = vi.spyOn(store, 'list');
    // PostgreSQL accepts connections and answers nothing (a server frozen by its disk, a stalled link).
    const proxy = await startTcpProxy(db.url);
    const stalled = new pg.Pool({ connectionString: proxy.urlFor(db.url), max: 2 });
    stalled.on('error', () => {});
    proxy.stall(true);
    // Only the flusher's interval runs on the test's clock: PostgreSQL and Redis I/O stay real.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const flusher = startUsageFlusher({ pool: stalled, batches: store, intervalMs: 1_000 });
    try {
      vi.advanceTimersByTime(1_000);
      for (let i = 0; i < 200 && listed.mock.calls.length === 0; i++) await sleep(25);
      expect(listed).toHaveBeenCalledTimes(1);
      // An hour of intervals while the pass waits for PostgreSQL.
      vi.advanceTimersByTime(3_600_000);
      proxy.stall(false);
      for (let i = 0; i < 400 && (await byUser(tenant))[''] === undefined; i++) await sleep(25);
      expect(await byUser(tenant)).toEqual({ '': 3 });
    } finally {
      await flusher.stop();
      vi.useRealTimers();
      await stalled.end();
      await proxy.close();
    }
    // The pass that waited, and none of the 3,600 intervals that passed meanwhile.
    expect(listed.mock.calls.length).toBeLessThanOrEqual(2);
    expect(await store.list()).toEqual([]);
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

  // Regression test: the flusher measured a batch's age on its own clock, so a projector whose clock ran
  // two weeks ahead deleted every fresh batch unapplied: the usage of all tenants went uncounted.
  it("measures a batch's age on Redis's clock: a flusher whose own clock is 20 days ahead adds fresh batches", async () => {
    const before = (await totals())['2xx/-'] ?? 0;
    await batches.write(newUsageBatchId('gw-1', Date.now() - 60_000), new Map([[cell(), 4]]));
    const realNow = Date.now.bind(Date);
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 20 * 86_400_000);
    const flusher = startUsageFlusher({ pool: db.pool, batches, intervalMs: 60_000 });
    try {
      expect(await flusher.flush()).toBe(4);
    } finally {
      await flusher.stop();
      vi.restoreAllMocks();
    }
    expect((await totals())['2xx/-']).toBe(before + 4);
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
