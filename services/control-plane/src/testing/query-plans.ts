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
