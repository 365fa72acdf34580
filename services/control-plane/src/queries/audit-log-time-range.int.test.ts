import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzedPlan, loadWithoutIndexes, type PlanNode, rowsRead } from '../testing/query-plans.js';
import { type AuditLogQuery, auditLogQuery, listAuditEntries } from './audit-log.js';

/**
 * Regression test: an audit log page bounded in time reads about a page of rows, however old the range
 * and however many of the tenant's rows are newer (it walked them all, up to the read timeout), and
 * finds exactly the rows the range holds, including the ones that occurred long before rows positioned
 * ahead of them.
 */

const summary = (nodes: PlanNode[]): string =>
  nodes
    .map((node) =>
      [
        node['Node Type'],
        node['Index Name'],
        `rows ${node['Actual Rows']} × ${node['Actual Loops']}`,
        `removed ${node['Rows Removed by Filter'] ?? 0}`,
      ].join(' '),
    )
    .join('\n');

const BASE = Date.parse('2026-01-01T00:00:00Z');
/** Rows are ten seconds apart: position n occurred at BASE + n × 10 s. */
const at = (position: number): string => new Date(BASE + position * 10_000).toISOString();

async function insertRows(
  pool: pg.Pool,
  sql: { positions: string; tenant: string; occurredAt: string; occurredHigh: string; eventType?: string },
  values: unknown[] = [],
): Promise<void> {
  await pool.query(
    `insert into read_models.audit_log (position, event_id, event_type, stream, stream_revision,
       resource_type, resource_id, tenant_id, actor, correlation_id, occurred_at, data, occurred_high)
     select n, gen_random_uuid(),
            ${sql.eventType ?? `case when n % 100 = 1 then 'RouteUpdated' else 'CachePurgeRequested' end`},
            'route:' || n, 0, 'route', n::text, ${sql.tenant},
            case when n % 100 = 1 then 'user_a' else 'purger' end, 'corr', ${sql.occurredAt}, '{}'::jsonb,
            ${sql.occurredHigh}
       from ${sql.positions} as n`,
    values,
  );
}

describe('audit log pages bounded in time', () => {
  let db: TestDatabase;
  const tenant = randomUUID();
  const small = randomUUID();
  const ROWS = 250_000;
  const LATE_FROM = ROWS + 1;

  /** The plans of the statements listAuditEntries runs, with the rows each node read: counts, not times. */
  async function plan(params: Record<string, string>, tenantIds: string[] | null): Promise<PlanNode[]> {
    const query: AuditLogQuery = auditLogQuery.parse({ limit: '20', ...params });
    const nodes: PlanNode[] = [];
    const explaining = {
      async query(text: string, values: unknown[]) {
        nodes.push(...(await analyzedPlan(db.pool, text, values)));
        return db.pool.query(text, values);
      },
    } as unknown as pg.Pool;
    await listAuditEntries(explaining, query, tenantIds);
    return nodes;
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    await loadWithoutIndexes(db.pool, 'read_models.audit_log', async () => {
      // 250,000 rows in order, ten seconds apart (about 29 days): four in five the tenant's (its cache
      // purges and, one in a hundred, its route changes), one in five another tenant's, one in a
      // thousand a small tenant's.
      const occurredAt = `to_timestamp(($1::float8 + n::float8 * 10000) / 1000)`;
      await insertRows(
        db.pool,
        {
          positions: `generate_series(1, ${ROWS})`,
          tenant: `case when n % 1000 = 500 then '${small}'::uuid
                        when n % 5 = 0 then md5((n / 5 % 50)::text)::uuid else '${tenant}'::uuid end`,
          occurredAt,
          occurredHigh: occurredAt,
        },
        [BASE],
      );
      // Then rows that occurred days before their position: a command stamped and appended late, and one
      // written without occurred_high (by a projector of before migration 0240).
      await insertRows(
        db.pool,
        {
          positions: `generate_series(${LATE_FROM}, ${LATE_FROM + 2})`,
          tenant: `'${tenant}'::uuid`,
          occurredAt: `to_timestamp(($1::float8 + (n - ${ROWS}) * 1000) / 1000) + interval '3 days'`,
          occurredHigh: `case when n = ${LATE_FROM + 2} then null else to_timestamp(($1::float8 + ${ROWS}::float8 * 10000) / 1000) end`,
        },
        [BASE],
      );
    });
  }, 180_000);

  afterAll(async () => {
    await db?.drop();
  });

  const ranges = [
    { from: at(20_000), to: at(20_120) },
    { from: at(1_000), to: at(100_000) },
    { to: at(100_000) },
    { from: at(1_000), to: at(100_000), event_type: 'RouteUpdated' },
    { from: at(1_000), to: at(100_000), actor: 'user_a', cursor: '50000' },
    { from: at(1_000), to: at(100_000), resource_type: 'route', resource_id: '40000' },
    { from: at(200_000) },
  ];

  it.each(ranges)('read about a page of rows, not the tenant’s newer ones: %j', async (params) => {
    const nodes = await plan(params, [tenant]);
    expect(rowsRead(nodes), summary(nodes)).toBeLessThan(1_000);
  });

  it.each(ranges)('read about a page of rows of a tenant with few: %j', async (params) => {
    const nodes = await plan(params, [small]);
    expect(rowsRead(nodes), summary(nodes)).toBeLessThan(1_000);
  });

  it.each(ranges)('read about a page of rows across tenants (platform admins): %j', async (params) => {
    const nodes = await plan(params, null);
    expect(rowsRead(nodes), summary(nodes)).toBeLessThan(1_000);
  });

  it('finds the rows that occurred in the range after rows that occurred later', async () => {
    const query = auditLogQuery.parse({ limit: '5', from: at(25_000), to: at(26_000) });
    const rows = await listAuditEntries(db.pool, query, [tenant]);
    expect(rows.map((row) => row.position)).toEqual([
      String(LATE_FROM + 2),
      String(LATE_FROM + 1),
      String(LATE_FROM),
      '25999',
      '25998',
      '25997',
    ]);
  });
});

describe('audit log pages bounded in time, whatever the order rows occurred in', () => {
  let db: TestDatabase;
  const tenants = [randomUUID(), randomUUID()];

  beforeAll(async () => {
    db = await createTestDatabase();
    // 3,000 rows ten seconds apart, each stamped up to three hours early or late (the clocks of
    // control planes, slow commands), a few written without occurred_high; occurred_high as the
    // projector writes it, the latest occurred_at up to the row.
    await insertRows(
      db.pool,
      {
        positions: 'generate_series(1, 3000)',
        tenant: `case when n % 3 = 0 then '${tenants[1]}'::uuid else '${tenants[0]}'::uuid end`,
        occurredAt: `to_timestamp(($1::float8 + n * 10000 + (hashint4(n) % 10800) * 1000) / 1000)`,
        occurredHigh: 'null',
        eventType: `case when n % 7 = 0 then 'RouteUpdated' else 'CachePurgeRequested' end`,
      },
      [BASE],
    );
    await db.pool.query(
      `update read_models.audit_log a set occurred_high = h.high
         from (select position, max(occurred_at) over (order by position) as high from read_models.audit_log) h
        where a.position = h.position and a.position % 97 <> 0`,
    );
    await db.pool.query('analyze read_models.audit_log');
  }, 60_000);

  afterAll(async () => {
    await db?.drop();
  });

  /** The page as a reading of every row would find it. */
  async function expected(query: AuditLogQuery, tenantIds: string[] | null): Promise<string[]> {
    const { rows } = await db.pool.query<{ position: string }>(
      `select position from read_models.audit_log
        where ($1::uuid[] is null or tenant_id = any($1))
          and ($2::text is null or event_type = $2)
          and ($3::timestamptz is null or occurred_at >= $3)
          and ($4::timestamptz is null or occurred_at < $4)
          and ($5::bigint is null or position < $5)
        order by position desc limit $6`,
      [
        tenantIds,
        query.event_type ?? null,
        query.from ?? null,
        query.to ?? null,
        query.cursor?.toString() ?? null,
        query.limit + 1,
      ],
    );
    return rows.map((row) => row.position);
  }

  const hours = (h: number): string => new Date(BASE + h * 3_600_000).toISOString();
  const cases: Array<Record<string, string>> = [];
  for (const [from, to] of [
    [undefined, 1],
    [1, 2],
    [2, 2.01],
    [3, 5],
    [4, undefined],
    [7, 9],
    [8, undefined],
    [-1, 0.5],
  ] as const) {
    for (const extra of [
      {},
      { event_type: 'RouteUpdated' },
      { cursor: '1500' },
      { event_type: 'RouteUpdated', cursor: '1500' },
      { limit: '200' },
    ]) {
      cases.push({
        limit: '10',
        ...(from === undefined ? {} : { from: hours(from) }),
        ...(to === undefined ? {} : { to: hours(to) }),
        ...extra,
      });
    }
  }

  it.each(cases)('finds the rows a reading of every row finds: %j', async (params) => {
    const query = auditLogQuery.parse(params);
    for (const tenantIds of [[tenants[0] as string], tenants, null]) {
      const rows = await listAuditEntries(db.pool, query, tenantIds);
      expect(
        rows.map((row) => row.position),
        JSON.stringify(tenantIds),
      ).toEqual(await expected(query, tenantIds));
    }
  });
});
