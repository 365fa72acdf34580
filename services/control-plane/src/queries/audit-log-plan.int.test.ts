import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PlanNode, plansOf } from '../testing/query-plans.js';
import { type AuditLogQuery, auditLogQuery, listAuditEntries } from './audit-log.js';

/**
 * Regression test: an audit log page is read through an index that gives the page's order within the
 * caller's tenants, whatever the filters: neither a sort of all the tenant's rows nor a walk past
 * other rows (the tenant's own cache purges, every tenant's rows of one actor or event type, or, filtered
 * by an actor and a type, the rows of one that the other leaves out).
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

/** The plan of the page listAuditEntries reads, with the rows each node read: counts, not times. */
function plan(params: Record<string, string>): Promise<PlanNode[]> {
  const query: AuditLogQuery = auditLogQuery.parse({ limit: '20', ...params });
  return plansOf(db.pool, (explaining) => listAuditEntries(explaining, query, [tenant]));
}

beforeAll(async () => {
  db = await createTestDatabase();
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
  await db.pool.query('analyze read_models.audit_log');
}, 180_000);

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
