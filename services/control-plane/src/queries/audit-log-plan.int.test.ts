import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chosenPlan, loadWithoutIndexes, type PlanNode, plansOf, rowsRead } from '../testing/query-plans.js';
import { type AuditLogQuery, auditLogQuery, listAuditEntries } from './audit-log.js';

/**
 * Regression test: an audit log page is read through an index that gives the page's order within the
 * caller's tenants, whatever the filters: neither a sort of all the tenant's rows nor a walk past
 * other rows (the tenant's own cache purges, every tenant's rows of one actor or event type, or, filtered
 * by an actor and a type, the rows of one that the other leaves out). A platform admin's page of every
 * tenant's log alike: never a walk of the whole log past the rows its filters leave out.
 */

let db: TestDatabase;
const tenant = randomUUID();
const OWN_CHANGES = 40;
const OWN_PURGES = 200_000;
const OWN_DEPLOYS = 100_000;
const OTHERS = 200_000;

async function insertRows(
  first: number,
  count: number,
  tenantSql: string,
  {
    type,
    actor,
    resourceType,
    occurredAt,
  }: { type: string; actor: string; resourceType: string; occurredAt: string },
) {
  await db.pool.query(
    `insert into read_models.audit_log (position, event_id, event_type, stream, stream_revision,
       resource_type, resource_id, tenant_id, actor, correlation_id, occurred_at, data)
     select $1::bigint + n, gen_random_uuid(), $3, 'route:' || n, 0, $5, n::text, ${tenantSql},
            $4, 'corr', ${occurredAt}, '{}'::jsonb
       from generate_series(0, $2::bigint - 1) as n`,
    [first, count, type, actor, resourceType],
  );
}

/**
 * The plan of the page listAuditEntries reads (of every tenant's log when `tenants` is null), with the
 * rows each node read: counts, not times; with `chosenPlan`, the plan alone.
 */
function plan(
  params: Record<string, string>,
  tenants: string[] | null = [tenant],
  explain?: typeof chosenPlan,
): Promise<PlanNode[]> {
  const query: AuditLogQuery = auditLogQuery.parse({ limit: '20', ...params });
  return plansOf(db.pool, (explaining) => listAuditEntries(explaining, query, tenants), explain);
}

beforeAll(async () => {
  db = await createTestDatabase();
  await loadWithoutIndexes(db.pool, 'read_models.audit_log', loadLog);
}, 180_000);

async function loadLog() {
  // The tenant's route changes a day ago, then its flood of cache purges now; other tenants' route
  // changes a day ago, positioned after.
  const dayAgo = `now() - interval '1 day'`;
  const changes = { type: 'RouteUpdated', resourceType: 'route', occurredAt: dayAgo };
  await insertRows(1, OWN_CHANGES, `'${tenant}'::uuid`, { ...changes, actor: 'user_a' });
  await insertRows(1_000, OWN_PURGES, `'${tenant}'::uuid`, {
    type: 'CachePurgeRequested',
    actor: 'purger',
    resourceType: 'tenant',
    occurredAt: 'now()',
  });
  await insertRows(1_000_000, OTHERS, 'md5((n % 500)::text)::uuid', { ...changes, actor: 'user_b' });
  // Its deploy pipeline's route changes an hour ago, positioned last.
  await insertRows(2_000_000, OWN_DEPLOYS, `'${tenant}'::uuid`, {
    ...changes,
    actor: 'deployer',
    occurredAt: `now() - interval '1 hour'`,
  });
}

afterAll(async () => {
  await db?.drop();
});

describe('audit log pages', () => {
  it.each([
    {},
    { event_type: 'RouteUpdated' },
    { actor: 'user_a' },
    { actor: 'user_b' },
    { resource_type: 'route', resource_id: '7' },
    { event_type: 'RouteUpdated', cursor: '30' },
    { resource_type: 'route' },
    { resource_type: 'origin' },
    { resource_id: '7' },
    // Two filters, each matching many of the tenant's rows, together few or none.
    { actor: 'purger', event_type: 'RouteUpdated' },
    { actor: 'user_a', event_type: 'RouteUpdated' },
    { actor: 'deployer', event_type: 'CachePurgeRequested' },
    { actor: 'purger', resource_type: 'route' },
    { actor: 'user_a', resource_type: 'route' },
    { actor: 'deployer', resource_type: 'tenant' },
    { event_type: 'RouteUpdated', resource_type: 'route' },
    // An event type and a resource type each of many rows, never of the same row.
    { event_type: 'CachePurgeRequested', resource_type: 'route' },
    { event_type: 'RouteUpdated', resource_type: 'tenant' },
    { actor: 'user_a', resource_id: '7' },
    { event_type: 'RouteUpdated', resource_id: '7' },
  ])('read about a page of rows, not the tenant’s or other tenants’ rows: %j', async (params) => {
    const nodes = await plan(params);
    const read = nodes.reduce(
      (sum, node) =>
        sum + (node['Rows Removed by Filter'] ?? 0) + (node.Plans ? 0 : (node['Actual Rows'] ?? 0)),
      0,
    );
    expect(read, JSON.stringify(nodes)).toBeLessThan(1_000);
  });

  it('pages several tenants newest first, below the cursor', async () => {
    const other = 'c4ca4238-a0b9-2382-0dcc-509a6f75849b'; // md5('1'): rows 1_000_001, 1_000_501, …
    const query = auditLogQuery.parse({ limit: '3', event_type: 'RouteUpdated', cursor: '1000501' });
    const rows = await listAuditEntries(db.pool, query, [tenant, other]);
    expect(rows.map((row) => row.position)).toEqual(['1000001', '40', '39', '38']);
  });
});

/** Filters of a platform admin's page over every tenant's log, each matching many rows or few, old or new. */
const EVERY_TENANT_FILTERS: Record<string, string>[] = [
  {},
  { event_type: 'RouteUpdated' },
  { event_type: 'CachePurgeRequested', cursor: '1500' },
  { actor: 'user_a' },
  { resource_type: 'route' },
  { resource_type: 'tenant' },
  { resource_type: 'origin' },
  { resource_id: '7' },
  { resource_type: 'route', resource_id: '7' },
  { actor: 'purger', event_type: 'RouteUpdated' },
  { actor: 'user_a', event_type: 'RouteUpdated' },
  { actor: 'deployer', event_type: 'CachePurgeRequested' },
  { actor: 'purger', resource_type: 'route' },
  { actor: 'user_a', resource_type: 'route' },
  { actor: 'user_b', resource_type: 'tenant' },
  { event_type: 'RouteUpdated', resource_type: 'route' },
  { event_type: 'CachePurgeRequested', resource_type: 'route' },
  { event_type: 'RouteUpdated', resource_type: 'tenant' },
];

describe('audit log pages of every tenant (platform admins)', () => {
  it.each(EVERY_TENANT_FILTERS)('read about a page of rows, not the whole log: %j', async (params) => {
    const nodes = await plan(params, null);
    expect(rowsRead(nodes), JSON.stringify(nodes)).toBeLessThan(1_000);
  });

  it.each([
    { params: {}, index: 'audit_log_pkey' },
    { params: { resource_type: 'tenant' }, index: 'audit_log_resource_type' },
    { params: { resource_id: '7' }, index: 'audit_log_resource_id' },
    { params: { resource_type: 'route', resource_id: '7' }, index: 'audit_log_resource' },
    { params: { actor: 'purger', event_type: 'RouteUpdated' }, index: 'audit_log_actor_event_type' },
    { params: { actor: 'deployer', event_type: 'CachePurgeRequested' }, index: 'audit_log_actor_event_type' },
    { params: { actor: 'purger', resource_type: 'route' }, index: 'audit_log_actor_resource_type' },
    { params: { actor: 'user_b', resource_type: 'tenant' }, index: 'audit_log_actor_resource_type' },
    {
      params: { event_type: 'CachePurgeRequested', resource_type: 'route' },
      index: 'audit_log_event_resource_type',
    },
  ])('walk an index that holds the filters: $params', async ({ params, index }) => {
    const nodes = await plan(params, null, chosenPlan);
    const shown = JSON.stringify(nodes);
    const types = nodes.map((node) => node['Node Type']);
    expect(types, shown).not.toContain('Seq Scan');
    // Walked in the page's order, or, when the planner expects few rows, read whole through a bitmap.
    const indexes = nodes.flatMap((node) =>
      node['Node Type'] === 'Index Scan' || node['Node Type'] === 'Bitmap Index Scan'
        ? [node['Index Name']]
        : [],
    );
    expect(indexes, shown).toEqual([index]);
    const heapScans = nodes.filter((node) => node['Relation Name'] === 'audit_log');
    expect(
      heapScans.map((scan) => scan.Filter),
      shown,
    ).toEqual([undefined]);
    if (types.includes('Sort')) expect(types, shown).toContain('Bitmap Index Scan');
  });

  it('pages a resource newest first across tenants and equal times, below the cursor', async () => {
    // Resource id 7: the tenant's route change, its purge, another tenant's change, its deploy.
    const first = await listAuditEntries(
      db.pool,
      auditLogQuery.parse({ limit: '2', resource_id: '7' }),
      null,
    );
    expect(first.map((row) => row.position)).toEqual(['2000007', '1000007', '1007']);
    const next = await listAuditEntries(
      db.pool,
      auditLogQuery.parse({ limit: '2', resource_id: '7', cursor: '1000007' }),
      null,
    );
    expect(next.map((row) => row.position)).toEqual(['1007', '8']);
  });
});
