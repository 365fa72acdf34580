import { qualified, READ_MODELS_SCHEMA, RESOURCE_TYPES } from '@vantageedge/projections/read-models/schema';
import { redactedCredentials } from '@vantageedge/shared/domain/credential-headers';
import type pg from 'pg';
import { z } from 'zod';
import { cursorParam, limitParam } from './pagination.js';

export const auditLogQuery = z.strictObject({
  tenant_id: z.uuid('must be a uuid').optional(),
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
 * tenant's newer rows (migration 0220).
 */
export async function listAuditEntries(
  pool: pg.Pool,
  query: AuditLogQuery,
  tenantIds: readonly string[] | null,
): Promise<AuditRow[]> {
  const filters = `($2::text is null or resource_type = $2)
        and ($3::text is null or resource_id = $3)
        and ($4::text is null or actor = $4)
        and ($5::text is null or event_type = $5)
        and ($6::float8 is null or occurred_at >= to_timestamp($6::float8 / 1000))
        and ($7::float8 is null or occurred_at < to_timestamp($7::float8 / 1000))
        and ($8::bigint is null or position < $8)`;
  const table = qualified(READ_MODELS_SCHEMA, 'audit_log');
  const text =
    tenantIds === null
      ? `select * from ${table} where $1::uuid[] is null and ${filters} order by position desc limit $9`
      : `select page.* from unnest($1::uuid[]) as tenant(id)
          cross join lateral (
            select * from ${table} where tenant_id = tenant.id and ${filters} order by position desc limit $9
          ) as page
          order by page.position desc limit $9`;
  const { rows } = await pool.query<AuditRow>(text, [
    tenantIds,
    query.resource_type ?? null,
    query.resource_id ?? null,
    query.actor ?? null,
    query.event_type ?? null,
    // As epoch milliseconds: PostgreSQL refuses offsets ISO-8601 allows (e.g. +18:32).
    query.from === undefined ? null : Date.parse(query.from),
    query.to === undefined ? null : Date.parse(query.to),
    query.cursor?.toString() ?? null,
    query.limit + 1,
  ]);
  return rows;
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
