import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzedPlan, loadWithoutIndexes, type PlanNode } from '../testing/query-plans.js';
import { CONFIG_EVENT_TYPES, configHistoryQuery, readConfigHistory } from './config-history.js';

/**
 * Regression test: a config history page filtered the tenant's audit rows by event type over the
 * (tenant_id, position) index, so a tenant with 300,000 cache purges newer than its config changes
 * made every page read and discard all of them. The plan must read the page's own rows only.
 */

let db: TestDatabase;
const tenant = randomUUID();
const CONFIG_CHANGES = 40;
const OTHER_ROWS = 300_000;

/** Audit rows: `count` of `type` for `tenantSql` (an SQL expression of the row number n), from `first`. */
async function insertRows(first: number, count: number, tenantSql: string, type: string, resource: string) {
  await db.pool.query(
    `insert into read_models.audit_log (position, event_id, event_type, stream, stream_revision,
       resource_type, resource_id, tenant_id, actor, correlation_id, occurred_at, data)
     select $1::bigint + n, gen_random_uuid(), $3, $4 || ':' || n, 0, $4, n::text, ${tenantSql},
            'user_1', 'corr', now(), '{}'::jsonb
       from generate_series(0, $2::bigint - 1) as n`,
    [first, count, type, resource],
  );
}

async function plan(before: bigint | undefined): Promise<PlanNode[]> {
  const query = configHistoryQuery(tenant, { before, limit: 20 });
  return analyzedPlan(db.pool, query.text, query.values);
}

beforeAll(async () => {
  db = await createTestDatabase();
  await loadWithoutIndexes(db.pool, 'read_models.audit_log', async () => {
    // The tenant's config changes first, then a flood of cache purges; other tenants' config changes too.
    await insertRows(1, CONFIG_CHANGES, `'${tenant}'::uuid`, 'RouteUpdated', 'route');
    await insertRows(1_000, OTHER_ROWS, `'${tenant}'::uuid`, 'CachePurgeRequested', 'cache');
    await insertRows(1_000_000, 50_000, 'md5((n % 500)::text)::uuid', 'OriginUpdated', 'origin');
  });
}, 120_000);

afterAll(async () => {
  await db?.drop();
});

describe('config history pages', () => {
  it('read the page through an index of config events, not past the tenant’s other rows', async () => {
    expect(CONFIG_EVENT_TYPES).not.toContain('CachePurgeRequested');
    for (const before of [undefined, 30n]) {
      const nodes = await plan(before);
      expect(nodes.map((node) => node['Node Type'])).not.toContain('Seq Scan');
      const discarded = nodes.reduce((sum, node) => sum + (node['Rows Removed by Filter'] ?? 0), 0);
      expect(discarded, JSON.stringify(nodes)).toBeLessThan(100);
      expect(nodes.map((node) => node['Index Name'])).toContain('audit_log_config_history');
    }
    // Newest first by position (not as text: "9" sorted before "40"), the next page below a cursor.
    const positions = (from: number) => Array.from({ length: 21 }, (_, i) => BigInt(from - i));
    const first = await readConfigHistory(db.pool, tenant, { before: undefined, limit: 20 });
    expect(first.map((entry) => entry.key)).toEqual(positions(CONFIG_CHANGES));
    const next = await readConfigHistory(db.pool, tenant, { before: 30n, limit: 20 });
    expect(next.map((entry) => entry.key)).toEqual(positions(29));
  });

  it('read of each event the fields its summary needs, not the whole route it carries', async () => {
    const owner = randomUUID();
    const route = {
      route_id: randomUUID(),
      tenant_id: owner,
      methods: ['GET', 'POST'],
      path_pattern: '/orders/:id',
      required_scopes: Array.from({ length: 700 }, (_, i) => `orders:scope-${i}`),
      changed_fields: ['required_scopes'],
    };
    await db.pool.query(
      `insert into read_models.audit_log (position, event_id, event_type, stream, stream_revision,
         resource_type, resource_id, tenant_id, actor, correlation_id, occurred_at, data)
       values (5000000, gen_random_uuid(), 'RouteUpdated', 'route-x', 1, 'route', $1, $2, 'user_1', 'corr',
               now(), $3::jsonb)`,
      [route.route_id, owner, JSON.stringify(route)],
    );
    const query = configHistoryQuery(owner, { before: undefined, limit: 20 });
    const { rows } = await db.pool.query<{ data: Record<string, unknown> }>(query.text, query.values);
    expect(rows).toHaveLength(1);
    // The 700 scopes (some 20 KiB) stay in the database.
    expect(Object.keys(rows[0]?.data ?? {}).sort()).toEqual(['changed_fields', 'methods', 'path_pattern']);
    const [entry] = await readConfigHistory(db.pool, owner, { before: undefined, limit: 20 });
    expect(entry?.summary).toBe('route GET,POST /orders/:id changed (required_scopes)');
  });
});
