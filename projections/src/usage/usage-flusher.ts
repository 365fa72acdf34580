import type { Logger } from '@vantageedge/shared/observability/logger';
import { decodeUsageCell, type UsageBatchStore } from '@vantageedge/shared/usage/usage-cells';
import type pg from 'pg';

/**
 * The usage flusher: moves the gateways' usage batches from the batch store (Redis) into
 * `usage_counts`, one PostgreSQL transaction per batch that records the batch id in `usage_batches`
 * and adds its counts. A batch id already recorded (a flusher that died after committing, or two
 * flushers racing for one batch: the second waits on the first's row and then finds it) is only
 * deleted from the store, never added twice. Runs beside the read-model projector.
 */
export interface UsageFlusherOptions {
  pool: pg.Pool;
  batches: UsageBatchStore;
  intervalMs?: number;
  logger?: Logger;
}

export interface UsageFlusher {
  /** Applies every pending batch now; resolves with the number of requests added. */
  flush(): Promise<number>;
  stop(): Promise<void>;
}

export async function applyUsageBatch(
  pool: pg.Pool,
  batchId: string,
  counts: ReadonlyMap<string, number>,
): Promise<number> {
  const rows = { tenant: [] as string[], hour: [] as string[], route: [] as string[], key: [] as string[] };
  const users: string[] = [];
  const classes: string[] = [];
  const requests: number[] = [];
  for (const [field, count] of counts) {
    const cell = decodeUsageCell(field);
    if (!cell || !Number.isSafeInteger(count) || count <= 0) continue;
    rows.tenant.push(cell.tenantId);
    rows.hour.push(new Date(cell.hour * 1000).toISOString());
    rows.route.push(cell.routeId);
    rows.key.push(cell.apiKeyId);
    users.push(cell.userId);
    classes.push(cell.statusClass);
    requests.push(count);
  }
  const total = requests.reduce((sum, n) => sum + n, 0);
  const client = await pool.connect();
  try {
    await client.query('begin');
    const claimed = await client.query(
      'insert into usage_batches (batch_id, requests) values ($1, $2) on conflict (batch_id) do nothing',
      [batchId, total],
    );
    if (claimed.rowCount === 1 && requests.length > 0) {
      await client.query(
        `insert into usage_counts (tenant_id, hour, route_id, api_key_id, user_id, status_class, requests)
         select * from unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[])
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
  } finally {
    client.release();
  }
}

export function startUsageFlusher(options: UsageFlusherOptions): UsageFlusher {
  const { pool, batches, logger } = options;
  let running: Promise<number> | undefined;
  let stopped = false;

  const flushAll = async (): Promise<number> => {
    let added = 0;
    for (const batchId of await batches.list()) {
      const counts = await batches.read(batchId);
      added += await applyUsageBatch(pool, batchId, counts);
      await batches.remove(batchId);
    }
    return added;
  };
  const flush = (): Promise<number> => {
    // One pass at a time; a caller during a pass waits for it and then runs its own.
    const previous = running ?? Promise.resolve(0);
    const next = previous.catch(() => 0).then(flushAll);
    running = next;
    return next;
  };

  const timer = setInterval(() => {
    if (stopped) return;
    flush().catch((error: unknown) => logger?.warn('usage flush failed', { error: String(error) }));
  }, options.intervalMs ?? 2_000);
  timer.unref();

  return {
    flush,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running?.catch(() => 0);
    },
  };
}
