import { qualified, READ_MODELS_SCHEMA, RESOURCE_TYPES } from '@vantageedge/projections/read-models/schema';
import { redactedCredentials } from '@vantageedge/shared/domain/credential-headers';
import { uuidId } from '@vantageedge/shared/domain/uuid-id';
import type pg from 'pg';
import { z } from 'zod';
import { cursorParam, limitParam } from './pagination.js';

export const auditLogQuery = z.strictObject({
  tenant_id: uuidId().optional(),
  resource_type: z.enum(RESOURCE_TYPES, `must be one of ${RESOURCE_TYPES.join(', ')}`).optional(),
  resource_id: z.string().min(1).max(200).optional(),
  actor: z.string().min(1).max(200).optional(),
  event_type: z
    .string()
    .regex(/^[A-Za-z]{1,100}$/, 'must be an event type such as RouteUpdated')
    .optional(),
  /** Inclusive lower and exclusive upper bound on occurred_at; an empty range finds nothing. */
  from: z.iso.datetime({ offset: true, message: 'must be an ISO-8601 date-time' }).optional(),
  to: z.iso.datetime({ offset: true, message: 'must be an ISO-8601 date-time' }).optional(),
  limit: limitParam,
  cursor: cursorParam,
});

export type AuditLogQuery = z.infer<typeof auditLogQuery>;

/** How long before its occurred_high a row may occur and still be read within its time range's positions. */
const LATE = "interval '1 minute'";
const LAST_POSITION = '9223372036854775807';

interface AuditRow {
  position: string;
  event_id: string;
  event_type: string;
  stream: string;
  stream_revision: string;
  resource_type: string;
  resource_id: string;
  tenant_id: string | null;
  actor: string;
  correlation_id: string;
  causation_id: string | null;
  occurred_at: Date;
  data: unknown;
}

/**
 * Newest first; the cursor is the position of the last entry returned. With `tenantIds`, each tenant's
 * page is read on its own, through indexes keyed (tenant_id[, filter], position): over `tenant_id =
 * any(…)` no index gives the order, and the planner walked the primary key backwards past every other
 * tenant's newer rows (migration 0220). Without, a filtered page is read in the order of -position,
 * which only the indexes keyed (filter, -position) give: in the order of position, the planner walked
 * the primary key backwards past every newer row of the log that the filter leaves out (migration 0340).
 * A time range is first translated into positions (timeRangePositions), which the page walks alike.
 */
export async function listAuditEntries(
  pool: pg.Pool,
  query: AuditLogQuery,
  tenantIds: readonly string[] | null,
): Promise<AuditRow[]> {
  const table = qualified(READ_MODELS_SCHEMA, 'audit_log');
  // As epoch milliseconds: PostgreSQL refuses offsets ISO-8601 allows (e.g. +18:32).
  const from = query.from === undefined ? null : Date.parse(query.from);
  const to = query.to === undefined ? null : Date.parse(query.to);
  const positions = from === null && to === null ? null : await timeRangePositions(pool, table, from, to);
  const filtered = [query.resource_type, query.resource_id, query.actor, query.event_type].some(
    (filter) => filter !== undefined,
  );
  const negated = tenantIds === null && filtered;
  const newestFirst = negated ? '-position' : 'position desc';
  const filters = `($2::text is null or resource_type = $2)
        and ($3::text is null or resource_id = $3)
        and ($4::text is null or actor = $4)
        and ($5::text is null or event_type = $5)
        and ($6::float8 is null or occurred_at >= to_timestamp($6::float8 / 1000))
        and ($7::float8 is null or occurred_at < to_timestamp($7::float8 / 1000))
        and ($8::bigint is null or ${negated ? '-position > -$8::bigint' : 'position < $8'})`;
  const between = negated
    ? '-position between -$11::bigint and -$10::bigint'
    : 'position between $10 and $11';
  const page = (tenant: string) =>
    positions === null
      ? `select * from ${table} where ${tenant} and ${filters} order by ${newestFirst} limit $9`
      : // The late rows are fenced off (offset 0) so that they are read through their own indexes: with
        // the order and the limit, the planner walked the tenant's rows for them.
        `(select * from ${table} where ${tenant} and ${filters} and ${between}
            order by ${newestFirst} limit $9)
          union all
          (select * from (select * from ${table} where ${tenant} and ${filters}
              and (occurred_high is null or occurred_high - occurred_at > ${LATE})
              and (position < $10 or position > $11) offset 0) as late
            order by position desc limit $9)
          order by position desc limit $9`;
  const text =
    tenantIds === null
      ? `select * from (${page('$1::uuid[] is null')}) as page`
      : `select page.* from unnest($1::uuid[]) as tenant(id)
          cross join lateral (${page('tenant_id = tenant.id')}) as page
          order by page.position desc limit $9`;
  const { rows } = await pool.query<AuditRow>(text, [
    tenantIds,
    query.resource_type ?? null,
    query.resource_id ?? null,
    query.actor ?? null,
    query.event_type ?? null,
    from,
    to,
    query.cursor?.toString() ?? null,
    query.limit + 1,
    ...(positions === null ? [] : [positions.first, positions.last]),
  ]);
  return rows;
}

/**
 * The positions a time range's rows lie between, but for the late ones (occurred more than LATE before
 * their occurred_high, or without one): occurred_high, the latest occurred_at up to a row's position,
 * grows with position and is never before the row's occurred_at (migration 0240), so a row before the
 * first whose occurred_high reaches `from` occurred before it, and a row from the first whose
 * occurred_high reaches `to` + LATE on occurred at or after `to`, or is late. A row of the range
 * appended after this read still lies between the two, unless it is late. Known to the planner, the
 * positions let it walk the tenant's rows between them instead of reading every tenant's rows of the
 * range by occurred_at.
 */
async function timeRangePositions(
  pool: pg.Pool,
  table: string,
  from: number | null,
  to: number | null,
): Promise<{ first: string; last: string }> {
  const { rows } = await pool.query<{ first: string; last: string }>(
    `select
       case when $1::float8 is null then -1
         else coalesce(
           (select position from ${table} where occurred_high >= to_timestamp($1::float8 / 1000)
             order by occurred_high, position limit 1),
           (select max(position) + 1 from ${table}),
           0) end::text as first,
       case when $2::float8 is null then ${LAST_POSITION}
         else coalesce(
           (select position - 1 from ${table} where occurred_high >= to_timestamp($2::float8 / 1000) + ${LATE}
             order by occurred_high, position limit 1),
           ${LAST_POSITION}) end::text as last`,
    [from, to],
  );
  const bounds = rows[0];
  if (!bounds) throw new Error('the time range query returned no row');
  return bounds;
}

export function presentAuditEntry(row: AuditRow): Record<string, unknown> {
  return {
    position: row.position,
    event_id: row.event_id,
    event_type: row.event_type,
    resource_type: row.resource_type,
    resource_id: row.resource_id,
    tenant_id: row.tenant_id,
    actor: row.actor,
    occurred_at: row.occurred_at.toISOString(),
    correlation_id: row.correlation_id,
    causation_id: row.causation_id,
    stream: row.stream,
    stream_revision: row.stream_revision,
    // The projection redacts credential header and query parameter values; entries projected before
    // it did are redacted here.
    data: redactedCredentials(row.data),
  };
}

export const auditKey = (row: AuditRow): bigint => BigInt(row.position);
