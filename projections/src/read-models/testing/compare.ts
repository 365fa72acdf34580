import type pg from 'pg';
import { qualified, READ_MODEL_TABLES, type ReadModelTable } from '../schema.js';

/** Rows in one schema's table and not the other's (both ways, duplicates counted), per table. */
export async function tableDifferences(
  pool: pg.Pool,
  left: string,
  right: string,
): Promise<Partial<Record<ReadModelTable, number>>> {
  const differences: Partial<Record<ReadModelTable, number>> = {};
  for (const table of READ_MODEL_TABLES) {
    const a = qualified(left, table);
    const b = qualified(right, table);
    const { rows } = await pool.query<{ count: string }>(
      `select count(*) as count from ((select * from ${a} except all select * from ${b})
         union all (select * from ${b} except all select * from ${a})) as difference`,
    );
    const count = Number(rows[0]?.count ?? 0);
    if (count > 0) differences[table] = count;
  }
  return differences;
}

export async function rowCounts(pool: pg.Pool, schema: string): Promise<Record<ReadModelTable, number>> {
  const counts = {} as Record<ReadModelTable, number>;
  for (const table of READ_MODEL_TABLES) {
    const { rows } = await pool.query<{ count: string }>(
      `select count(*) as count from ${qualified(schema, table)}`,
    );
    counts[table] = Number(rows[0]?.count ?? 0);
  }
  return counts;
}

/** Polls until `check` holds (the test's own timeout bounds the wait). */
export async function eventually(check: () => Promise<boolean>, intervalMs = 20): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, intervalMs));
}
