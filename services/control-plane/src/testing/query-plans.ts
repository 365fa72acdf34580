import type pg from 'pg';

/** A node of PostgreSQL's `explain (analyze, format json)` plan: the fields the plan tests read. */
export interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  /** A condition a scan checks on each row it reads, besides its index's. */
  Filter?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Rows Removed by Filter'?: number;
  Plans?: PlanNode[];
}

/** Every node of a plan, the root first. */
export const nodesOf = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(nodesOf)];

/**
 * The nodes of `text`'s plan as PostgreSQL ran it. ANALYZE counts the rows each node read and
 * discarded: counts, not times.
 */
export async function analyzedPlan(pool: pg.Pool, text: string, values: unknown[]): Promise<PlanNode[]> {
  return explainedPlan(pool, `explain (analyze, format json) ${text}`, values);
}

/** The nodes of the plan PostgreSQL chooses for `text`, without running it. */
export function chosenPlan(pool: pg.Pool, text: string, values: unknown[]): Promise<PlanNode[]> {
  return explainedPlan(pool, `explain (format json) ${text}`, values);
}

async function explainedPlan(pool: pg.Pool, explain: string, values: unknown[]): Promise<PlanNode[]> {
  const { rows } = await pool.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(explain, values);
  const root = rows[0]?.['QUERY PLAN'][0]?.Plan;
  if (!root) throw new Error('no plan');
  return nodesOf(root);
}

/**
 * The nodes of the plans of every statement `read` runs on the pool it is given, as PostgreSQL ran them
 * on `pool` (or, with `chosenPlan`, as it would run them); each statement answers `read` no rows.
 */
export async function plansOf(
  pool: pg.Pool,
  read: (explaining: pg.Pool) => Promise<unknown>,
  explain: typeof analyzedPlan = analyzedPlan,
): Promise<PlanNode[]> {
  const nodes: PlanNode[] = [];
  const explaining = {
    async query(text: string, values: unknown[]) {
      nodes.push(...(await explain(pool, text, values)));
      return { rows: [] };
    },
  } as unknown as pg.Pool;
  await read(explaining);
  return nodes;
}

/** Rows the scans of a plan read: the rows they returned and the rows their filters discarded. */
export const rowsRead = (nodes: PlanNode[]): number =>
  nodes.reduce(
    (sum, node) =>
      sum +
      ((node['Rows Removed by Filter'] ?? 0) + (node.Plans ? 0 : (node['Actual Rows'] ?? 0))) *
        (node['Actual Loops'] ?? 1),
    0,
  );

/**
 * Runs `load` on `table` with its secondary indexes set aside, then builds them again as the migrations
 * defined them and ANALYZEs the table: one sorted build per index instead of an index entry per inserted
 * row, for plan tests that need hundreds of thousands of rows. Indexes backing constraints stay.
 */
export async function loadWithoutIndexes(
  pool: pg.Pool,
  table: string,
  load: () => Promise<void>,
): Promise<void> {
  const { rows: indexes } = await pool.query<{ name: string; definition: string }>(
    `select quote_ident(n.nspname) || '.' || quote_ident(i.relname) as name,
            pg_get_indexdef(x.indexrelid) as definition
       from pg_index x
       join pg_class i on i.oid = x.indexrelid
       join pg_namespace n on n.oid = i.relnamespace
      where x.indrelid = $1::regclass
        and not exists (select 1 from pg_constraint c where c.conindid = x.indexrelid)`,
    [table],
  );
  if (indexes.length > 0) await pool.query(`drop index ${indexes.map((index) => index.name).join(', ')}`);
  await load();
  const client = await pool.connect();
  try {
    // Each index's sort in memory rather than in temporary files.
    await client.query(`set maintenance_work_mem = '256MB'`);
    for (const index of indexes) await client.query(index.definition);
    await client.query(`analyze ${table}`);
  } finally {
    client.release(true);
  }
}
