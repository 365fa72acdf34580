import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzedPlan, loadWithoutIndexes, rowsRead as scannedRows } from '../testing/query-plans.js';
import { indexedPageQuery } from './tenant-events.js';

/**
 * Regression test: a fold of a tenant's config at a position (GET …/config?at_position=, …/config/diff,
 * a rollback's target) finds the tenant's config events through an index that holds only them, so its
 * cost is the tenant's config changes, not the cache purges it can append by the hundred a minute. A
 * fold at a position with no checkpoint before it walked every purge row of the tenant up to there
 * (864,000 a day at the default command rate), and every other tenant's row in the range too once the
 * planner took the primary key, uncharged by the config read budget, which counts events folded.
 */

let db: TestDatabase;
const tenant = randomUUID();
/** A tenant with a long config history: a page is the first rows of its range, not all of them sorted. */
const busyTenant = randomUUID();
const BUSY_FROM = 2_000_000;
const BUSY_CHANGES = 50_000;
const ROUTE_CHANGES = 40;
const PURGES = 200_000;
const PURGES_FROM = 1_000;
const LAST_CHANGE = PURGES_FROM + PURGES;
const OTHERS_FROM = 1_000_000;
const OTHERS = 100_000;

async function insertRows(
  first: number,
  count: number,
  tenantSql: string,
  { type, resourceType, stream }: { type: string; resourceType: string; stream: string },
) {
  await db.pool.query(
    `insert into unordered_log (position, event_id, event_type, stream, stream_revision,
       resource_type, resource_id, tenant_id, actor, correlation_id, occurred_at, occurred_high, data)
     select $1::bigint + n, gen_random_uuid(), $3, ${stream}, n, $4, n::text, ${tenantSql},
            'user_a', 'corr', now(), now(), '{}'::jsonb
       from generate_series(0, $2::bigint - 1) as n`,
    [first, count, type, resourceType],
  );
}

/** The rows PostgreSQL read for one page of the tenant's config events: counts, not times. */
async function rowsRead(
  page: { after: bigint; upTo: bigint; limit: number },
  tenantId = tenant,
): Promise<number> {
  const { text, values } = indexedPageQuery(tenantId, page);
  return scannedRows(await analyzedPlan(db.pool, text, values));
}

async function pageOf(page: { after: bigint; upTo: bigint; limit: number }): Promise<string[]> {
  const { rows } = await db.pool.query<{ position: string }>(indexedPageQuery(tenant, page));
  return rows.map((row) => row.position);
}

beforeAll(async () => {
  db = await createTestDatabase();
  await loadWithoutIndexes(db.pool, 'read_models.audit_log', loadLog);
}, 180_000);

async function loadLog() {
  await db.pool.query('create unlogged table unordered_log (like read_models.audit_log including defaults)');
  // The tenant's routes, then its flood of cache purges, then one more route change; other tenants'
  // route changes after.
  const routes = { type: 'RouteUpdated', resourceType: 'route', stream: `'route-' || n` };
  await insertRows(1, ROUTE_CHANGES, `'${tenant}'::uuid`, routes);
  await insertRows(PURGES_FROM, PURGES, `'${tenant}'::uuid`, {
    type: 'CachePurgeRequested',
    resourceType: 'cache',
    stream: `'cache-${tenant}'`,
  });
  await insertRows(LAST_CHANGE, 1, `'${tenant}'::uuid`, routes);
  await insertRows(OTHERS_FROM, OTHERS, 'md5((n % 500)::text)::uuid', routes);
  // Its changes interleaved with other tenants', as the log has them.
  await insertRows(
    BUSY_FROM,
    2 * BUSY_CHANGES,
    `case when n % 2 = 0 then '${busyTenant}'::uuid else md5((n % 500)::text)::uuid end`,
    routes,
  );
  // Stored in no particular order, as a log of interleaved tenants is for tenant_id: whether the planner
  // reads a page or a tenant's whole range must not hang on how the random tenant ids sort.
  await db.pool.query('insert into read_models.audit_log select * from unordered_log order by random()');
}

afterAll(async () => {
  await db?.drop();
});

describe('a page of a tenant’s config events', () => {
  it('holds its config events only, in log order', async () => {
    const positions = await pageOf({ after: 0n, upTo: BigInt(OTHERS_FROM + OTHERS), limit: 1_000 });
    expect(positions).toEqual([
      ...Array.from({ length: ROUTE_CHANGES }, (_, index) => String(index + 1)),
      String(LAST_CHANGE),
    ]);
  });

  it.each([
    { after: 0n, upTo: BigInt(OTHERS_FROM + OTHERS) },
    { after: 0n, upTo: BigInt(LAST_CHANGE - 1) },
    { after: BigInt(ROUTE_CHANGES), upTo: BigInt(LAST_CHANGE) },
    { after: BigInt(PURGES_FROM + 10), upTo: BigInt(OTHERS_FROM + 10) },
  ])('reads about its own rows, not the tenant’s cache purges: ($after, $upTo]', async ({ after, upTo }) => {
    expect(await rowsRead({ after, upTo, limit: 1_000 })).toBeLessThan(1_000);
  });

  it('of a tenant with a long config history reads about a page of rows, not its whole range', async () => {
    const whole = { after: 0n, upTo: BigInt(BUSY_FROM + 2 * BUSY_CHANGES), limit: 1_000 };
    expect(await rowsRead(whole, busyTenant)).toBeLessThan(2_000);
    expect(await rowsRead({ ...whole, after: BigInt(BUSY_FROM + 40_000) }, busyTenant)).toBeLessThan(2_000);
  });
});
