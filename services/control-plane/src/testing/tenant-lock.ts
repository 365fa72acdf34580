import type pg from 'pg';
import { LOCK_CLASS } from '../config-history/config-change-lock.js';

/**
 * Holds a tenant's config change lock, as a long config apply does, until `release`; `waitedFor(n)`
 * returns once n requests of this database wait for it (each passed its checks before the lock).
 */
export async function holdTenantLock(pool: pg.Pool, tenantId: string) {
  const holder = await pool.connect();
  await holder.query('select pg_advisory_lock($1, hashtext($2))', [LOCK_CLASS, tenantId]);
  let held = true;
  return {
    async waitedFor(waiters = 1): Promise<void> {
      for (let attempt = 0; attempt < 500; attempt++) {
        const { rows } = await pool.query<{ waiting: number }>(
          `select count(*)::int as waiting from pg_locks
            where locktype = 'advisory' and not granted and classid = $1
              and database = (select oid from pg_database where datname = current_database())`,
          [LOCK_CLASS],
        );
        if ((rows[0]?.waiting ?? 0) >= waiters) return;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      throw new Error(`fewer than ${waiters} requests waited for the tenant lock`);
    },
    async release(): Promise<void> {
      if (!held) return;
      held = false;
      await holder.query('select pg_advisory_unlock($1, hashtext($2))', [LOCK_CLASS, tenantId]);
      holder.release();
    },
  };
}
