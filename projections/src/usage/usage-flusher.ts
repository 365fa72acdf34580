import type { Logger } from '@vantageedge/shared/observability/logger';
import { onPooledConnection } from '@vantageedge/shared/postgres/pooled-connection';
import { USAGE_BATCH_TTL_SECONDS } from '@vantageedge/shared/usage/redis-usage-batch-store';
import {
  decodeUsageCell,
  encodeUsageCell,
  type UsageBatchStore,
  type UsageCell,
  usageBatchCreatedMs,
} from '@vantageedge/shared/usage/usage-cells';
import type pg from 'pg';
import { Counter, type Registry } from 'prom-client';

/**
 * The usage flusher: moves the gateways' usage batches from the batch store (Redis) into
 * `usage_counts`, one PostgreSQL transaction per batch that records the batch id in `usage_batches`
 * and adds its counts. A batch id already recorded (a flusher that died after committing, or two
 * flushers racing for one batch: the second waits on the first's row and then finds it) is only
 * deleted from the store, never added twice. Runs beside the read-model projector.
 *
 * Retention: at start and every `retentionIntervalMs` (an hour) it deletes `usage_counts` rows of hours
 * older than `retentionDays` (0 keeps them forever) and the `usage_batches` ids applied more than
 * USAGE_BATCH_DEDUPE_DAYS ago, in chunks of `chunkRows` rows (each its own short statement: no long
 * locks, the gateways' batches go on being added between chunks).
 *
 * A batch that fails stops no other: each is tried on its own, and the pass goes on with the next one
 * (a warning per failure, vantageedge_usage_flusher_batch_failures_total). A failure counts against
 * the batch when PostgreSQL refused the batch's own data (SQLSTATE class 22 data exception, 23
 * integrity constraint, 54 program limit exceeded) or took another batch in the same pass; after
 * `maxBatchFailures` (5) such failures in a row the batch is moved aside — out of the pending batches,
 * counts kept (UsageBatchStore.moveAside: a `dead` key in Redis) — with an error log and
 * vantageedge_usage_flusher_batches_moved_aside_total. While PostgreSQL is unreachable, read-only or
 * out of disk, every batch fails alike and none applies: nothing is counted, nothing moved aside.
 */
export interface UsageFlusherOptions {
  pool: pg.Pool;
  batches: UsageBatchStore;
  intervalMs?: number;
  logger?: Logger;
  /** USAGE_RETENTION_DAYS: counts of hours older than this are deleted; 0 keeps them (default 400). */
  retentionDays?: number;
  /** How often retention runs (also once at start); default an hour. */
  retentionIntervalMs?: number;
  /** Failures in a row (counted as above) after which a batch is moved aside; default 5. */
  maxBatchFailures?: number;
  /** Where the flusher's counters are registered (none when absent). */
  registry?: Registry;
}

export interface UsageFlusher {
  /** Applies every pending batch now; resolves with the number of requests added. */
  flush(): Promise<number>;
  /** Runs retention now (after a run in progress); resolves with the rows deleted. */
  prune(): Promise<PrunedUsage>;
  stop(): Promise<void>;
}

export const DEFAULT_USAGE_RETENTION_DAYS = 400;
export const DEFAULT_MAX_USAGE_BATCH_FAILURES = 5;
const RETENTION_INTERVAL_MS = 3_600_000;
const DAY_MS = 86_400_000;

/**
 * How long an applied batch id is remembered (`usage_batches`): while it is, the same batch found
 * in the store again (a flusher that died before deleting it, a gateway that retried a write that had
 * landed) is not added twice. A batch waits in Redis at most USAGE_BATCH_TTL_SECONDS (7 days) after its
 * last write; the window is that and a week more.
 */
export const USAGE_BATCH_DEDUPE_DAYS = 2 * (USAGE_BATCH_TTL_SECONDS / 86_400);
/**
 * A batch made longer ago than this (its id says when: newUsageBatchId) is never applied, since its id
 * may already be pruned: one a gateway held through a Redis outage of two weeks, or wrote again that
 * long after it landed. A day less than the window, for gateways whose clocks run ahead.
 */
export const USAGE_BATCH_MAX_AGE_MS = (USAGE_BATCH_DEDUPE_DAYS - 1) * DAY_MS;

export interface PrunedUsage {
  /** usage_counts rows deleted. */
  counts: number;
  /** usage_batches rows deleted. */
  batches: number;
}

/**
 * Deletes, `chunkRows` at a time until none is left, the counts of hours older than `retentionDays`
 * (none when 0) and the batch ids applied more than USAGE_BATCH_DEDUPE_DAYS ago. Each chunk is one
 * statement in its own transaction; `stopping` ends the run between chunks.
 */
export async function pruneUsage(
  pool: pg.Pool,
  options: { retentionDays: number; chunkRows?: number; stopping?: () => boolean },
): Promise<PrunedUsage> {
  const chunkRows = options.chunkRows ?? 5_000;
  const stopping = options.stopping ?? (() => false);
  const deleteChunks = async (sql: string, days: number): Promise<number> => {
    let deleted = 0;
    for (;;) {
      if (stopping()) return deleted;
      const result = await pool.query(sql, [days, chunkRows]);
      deleted += result.rowCount ?? 0;
      if ((result.rowCount ?? 0) < chunkRows) return deleted;
    }
  };
  // By ctid (a TID scan) over rows the index on hour / applied_at finds; the condition again on the
  // delete, for a row updated in between.
  const counts =
    options.retentionDays > 0
      ? await deleteChunks(
          `delete from usage_counts where ctid = any(array(
             select ctid from usage_counts where hour < now() - $1 * interval '1 day' limit $2))
             and hour < now() - $1 * interval '1 day'`,
          options.retentionDays,
        )
      : 0;
  const batches = await deleteChunks(
    `delete from usage_batches where ctid = any(array(
       select ctid from usage_batches where applied_at < now() - $1 * interval '1 day' limit $2))
       and applied_at < now() - $1 * interval '1 day'`,
    USAGE_BATCH_DEDUPE_DAYS,
  );
  return { counts, batches };
}

export async function applyUsageBatch(
  pool: pg.Pool,
  batchId: string,
  counts: ReadonlyMap<string, number>,
): Promise<number> {
  // Cells that decode to one row (a gateway of an earlier version wrote two long user ids, both now
  // OVERFLOW_ID) are added up first: one statement may not update a row twice.
  const cells = new Map<string, { cell: UsageCell; requests: number }>();
  for (const [field, count] of counts) {
    const cell = decodeUsageCell(field);
    if (!cell || !Number.isSafeInteger(count) || count <= 0) continue;
    const key = encodeUsageCell(cell);
    const same = cells.get(key);
    if (same) same.requests += count;
    else cells.set(key, { cell, requests: count });
  }
  const rows = { tenant: [] as string[], hour: [] as string[], route: [] as string[], key: [] as string[] };
  const users: string[] = [];
  const classes: string[] = [];
  const requests: number[] = [];
  for (const { cell, requests: count } of cells.values()) {
    rows.tenant.push(cell.tenantId);
    rows.hour.push(new Date(cell.hour * 1000).toISOString());
    rows.route.push(cell.routeId);
    rows.key.push(cell.apiKeyId);
    users.push(cell.userId);
    classes.push(cell.statusClass);
    requests.push(count);
  }
  const total = requests.reduce((sum, n) => sum + n, 0);
  return onPooledConnection(pool, async (client) => {
    try {
      await client.query('begin');
      const claimed = await client.query(
        'insert into usage_batches (batch_id, requests) values ($1, $2) on conflict (batch_id) do nothing',
        [batchId, total],
      );
      if (claimed.rowCount === 1 && requests.length > 0) {
        // Rows are locked in one order, whatever order the batch lists its cells in: two flushers
        // adding batches that share rows wait for each other instead of deadlocking.
        await client.query(
          `insert into usage_counts (tenant_id, hour, route_id, api_key_id, user_id, status_class, requests)
           select * from unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[])
             as cell (tenant_id, hour, route_id, api_key_id, user_id, status_class, requests)
           order by tenant_id, hour, route_id, api_key_id, user_id, status_class
           on conflict (tenant_id, hour, route_id, api_key_id, user_id, status_class)
           do update set requests = usage_counts.requests + excluded.requests`,
          [rows.tenant, rows.hour, rows.route, rows.key, users, classes, requests],
        );
      }
      await client.query('commit');
      return claimed.rowCount === 1 ? total : 0;
    } catch (error) {
      await client.query('rollback').catch(() => {});
      throw error;
    }
  });
}

/**
 * PostgreSQL refused what a batch holds, whatever the server's state: SQLSTATE class 22 (data
 * exception: a count out of range, a value it cannot parse), 23 (integrity constraint) or 54 (program
 * limit exceeded: an index row too large).
 */
function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(22|23|54)[0-9A-Z]{3}$/.test(code);
}

export function startUsageFlusher(options: UsageFlusherOptions): UsageFlusher {
  const { pool, batches, logger } = options;
  const retentionDays = options.retentionDays ?? DEFAULT_USAGE_RETENTION_DAYS;
  let running: Promise<number> | undefined;
  let pruning: Promise<PrunedUsage> | undefined;
  let stopped = false;

  const maxFailures = options.maxBatchFailures ?? DEFAULT_MAX_USAGE_BATCH_FAILURES;
  const registers = options.registry ? [options.registry] : [];
  const failuresTotal = new Counter({
    name: 'vantageedge_usage_flusher_batch_failures_total',
    help: 'Usage batches the flusher failed to add, per attempt (retried on its next pass; the other batches of the pass are added)',
    registers,
  });
  const movedAsideTotal = new Counter({
    name: 'vantageedge_usage_flusher_batches_moved_aside_total',
    help: 'Usage batches moved aside (Redis u:{usage}:dead) after failing to be added the given number of passes in a row',
    registers,
  });
  /** Failures in a row, counted against each batch still pending (this process's own tally). */
  const failures = new Map<string, number>();

  const flushAll = async (): Promise<number> => {
    let added = 0;
    let applied = false;
    const failed: Array<{ batchId: string; error: unknown }> = [];
    const pending = await batches.list();
    // The clock the gateways name batches by: a flusher whose own clock is off refuses no fresh batch.
    const now = pending.length === 0 ? 0 : ((await batches.time?.()) ?? Date.now());
    for (const batchId of pending) {
      if (stopped) break;
      try {
        const createdMs = usageBatchCreatedMs(batchId);
        if (createdMs !== undefined && now - createdMs > USAGE_BATCH_MAX_AGE_MS) {
          logger?.warn('usage batch older than the dedupe window not added (it may have been already)', {
            batch_id: batchId,
          });
        } else {
          added += await applyUsageBatch(pool, batchId, await batches.read(batchId));
          applied = true;
        }
        await batches.remove(batchId);
        failures.delete(batchId);
      } catch (error) {
        failuresTotal.inc();
        failed.push({ batchId, error });
      }
    }
    const uncounted: Array<{ batchId: string; error: unknown }> = [];
    for (const { batchId, error } of failed) {
      // PostgreSQL took another batch, or refused this one's data: the batch's own failure. Else it
      // fails as every batch does (PostgreSQL away): one warning for them all, below.
      if (!applied && !isDataError(error)) {
        uncounted.push({ batchId, error });
        continue;
      }
      const inARow = (failures.get(batchId) ?? 0) + 1;
      failures.set(batchId, inARow);
      if (inARow >= maxFailures) {
        try {
          await batches.moveAside(batchId);
          failures.delete(batchId);
          movedAsideTotal.inc();
          logger?.error('usage batch moved aside: it failed to be added too many passes in a row', {
            batch_id: batchId,
            failures: inARow,
            error: String(error),
          });
        } catch (moveError) {
          logger?.warn('usage batch not moved aside; tried again next pass', {
            batch_id: batchId,
            error: String(moveError),
          });
        }
      } else {
        logger?.warn('usage batch not added; retried next pass', {
          batch_id: batchId,
          failures: inARow,
          error: String(error),
        });
      }
    }
    if (uncounted.length > 0) {
      logger?.warn('usage batches not added, none was; retried next pass', {
        batches: uncounted.length,
        batch_id: uncounted[0]!.batchId,
        error: String(uncounted[0]!.error),
      });
    }
    // Forget the batches no longer pending (added or moved aside by another flusher, expired).
    const listed = new Set(pending);
    for (const batchId of failures.keys()) if (!listed.has(batchId)) failures.delete(batchId);
    return added;
  };
  /** Passes running or waiting for the one before them. */
  let passes = 0;
  const flush = (): Promise<number> => {
    // One pass at a time; a caller during a pass waits for it and then runs its own.
    const previous = running ?? Promise.resolve(0);
    passes += 1;
    const next = previous
      .catch(() => 0)
      .then(flushAll)
      .finally(() => {
        passes -= 1;
      });
    running = next;
    return next;
  };

  const timer = setInterval(() => {
    // A pass still running (PostgreSQL or Redis answering slowly or not at all) is not queued behind:
    // one a tick would pile up for as long as the stall lasts, then all run back to back.
    if (stopped || passes > 0) return;
    flush().catch((error: unknown) => logger?.warn('usage flush failed', { error: String(error) }));
  }, options.intervalMs ?? 2_000);
  timer.unref();

  const none: PrunedUsage = { counts: 0, batches: 0 };
  const prune = (): Promise<PrunedUsage> => {
    const previous = pruning ?? Promise.resolve(none);
    const next = previous
      .catch(() => none)
      .then(() => pruneUsage(pool, { retentionDays, stopping: () => stopped }))
      .then((pruned) => {
        if (pruned.counts > 0 || pruned.batches > 0) {
          logger?.info('usage retention', {
            usage_counts_deleted: pruned.counts,
            usage_batches_deleted: pruned.batches,
          });
        }
        return pruned;
      });
    pruning = next;
    return next;
  };
  const pruneInBackground = () => {
    if (stopped) return;
    prune().catch((error: unknown) => logger?.warn('usage retention failed', { error: String(error) }));
  };
  const retentionTimer = setInterval(pruneInBackground, options.retentionIntervalMs ?? RETENTION_INTERVAL_MS);
  retentionTimer.unref();
  pruneInBackground();

  return {
    flush,
    prune,
    async stop() {
      stopped = true;
      clearInterval(timer);
      clearInterval(retentionTimer);
      await Promise.all([running?.catch(() => 0), pruning?.catch(() => none)]);
    },
  };
}
