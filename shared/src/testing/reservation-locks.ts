import type pg from 'pg';

/** Sessions of the pool's database waiting on a lock. */
async function lockWaiters(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ waiting: number }>(
    `select count(*)::int as waiting from pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock'`,
  );
  return rows[0]?.waiting ?? 0;
}

/**
 * Runs `appends` while another session holds the reservation rows of `values` (FOR UPDATE): each is
 * started once the one before it waits on a lock, and the rows are let go once all of them wait, so
 * appends that would otherwise pass one another in a moment meet in the order given.
 */
export async function heldWhileAppendsWait<T>(
  pool: pg.Pool,
  values: readonly string[],
  appends: ReadonlyArray<() => Promise<T>>,
): Promise<PromiseSettledResult<T>[]> {
  const holder = await pool.connect();
  try {
    await holder.query('begin');
    await holder.query('select 1 from event_store_reservations where value = any($1) for update', [values]);
    const started: Promise<T>[] = [];
    for (const append of appends) {
      const running = append();
      // Settled here too, so one refused while the next is awaited is no unhandled rejection.
      running.catch(() => {});
      started.push(running);
      // Asked outside the holder's transaction, which would see one snapshot of the activity.
      while ((await lockWaiters(pool)) < started.length) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
    await holder.query('commit');
    return await Promise.allSettled(started);
  } finally {
    holder.release();
  }
}
