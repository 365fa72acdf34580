import { qualified, READ_MODELS_SCHEMA } from '@vantageedge/projections/read-models/schema';
import type pg from 'pg';

/**
 * A tenant's config history: every event that changed what its gateways serve, and every rollback,
 * newest first, from the audit log. Each entry's position is a version to look at (GET …/config?
 * at_position=), compare (…/config/diff) or roll back to.
 */

export const CONFIG_EVENT_TYPES = [
  'TenantCreated',
  'TenantUpdated',
  'CustomDomainVerified',
  'CustomDomainDeleted',
  'UserCreated',
  'UserDeleted',
  'OriginCreated',
  'OriginUpdated',
  'OriginDeleted',
  'RouteCreated',
  'RouteUpdated',
  'RouteDeleted',
  'ApiKeyIssued',
  'ApiKeyRotated',
  'ApiKeyRevoked',
  'ApiKeyQuotaChanged',
  'CertificateUploaded',
  'CertificateKeyResealed',
  'CertificateDeleted',
  'ConfigRolledBack',
] as const;

export interface ConfigHistoryEntry {
  position: string;
  occurred_at: string;
  actor: string;
  event_type: string;
  resource_type: string;
  resource_id: string;
  correlation_id: string;
  /** For the changes of a rollback: the ConfigRolledBack event (its id) that caused them. */
  causation_id: string | null;
  /** One line: what changed. */
  summary: string;
}

/**
 * The fields of an event's data its summary reads (summarize). A page reads only these: a route's event
 * carries its whole route (some 32 KiB at the limits), and 201 of them read whole were megabytes for
 * PostgreSQL to send and the replica's event loop to parse, for one line each.
 */
const SUMMARY_FIELDS = [
  'name',
  'methods',
  'path_pattern',
  'changed_fields',
  'quota',
  'domain',
  'clerk_user_id',
  'domains',
  'to_position',
  'changes',
] as const;

interface HistoryRow {
  position: string;
  occurred_at: Date;
  actor: string;
  event_type: string;
  resource_type: string;
  resource_id: string;
  correlation_id: string;
  causation_id: string | null;
  data: Record<string, unknown>;
}

/**
 * Newest first, positions below `before`; limit + 1 rows (the extra one says there is more). A page reads
 * its own rows only, however many other rows (cache purges, …) the tenant has, through the partial index
 * audit_log_config_history (migrations 0210, 0260): its event types must hold CONFIG_EVENT_TYPES, and its key
 * is `-position` so that no other index gives this order (the planner, taking tenant and event type for
 * independent, would walk the primary key backwards past every other row instead). The order is the
 * column's, not the selected text's (`order by position` sorted "9" before "40").
 */
export function configHistoryQuery(
  tenantId: string,
  { before, limit }: { before: bigint | undefined; limit: number },
): { text: string; values: unknown[] } {
  return {
    text: `select position::text, occurred_at, actor, event_type, resource_type, resource_id, correlation_id,
            causation_id,
            coalesce((select jsonb_object_agg(key, value) from jsonb_each(data) where key = any($5::text[])),
              '{}'::jsonb) as data
       from ${qualified(READ_MODELS_SCHEMA, 'audit_log')}
      where tenant_id = $1 and event_type = any($2::text[])
        and ($3::bigint is null or -audit_log.position > -$3::bigint)
      order by -audit_log.position limit $4`,
    values: [tenantId, CONFIG_EVENT_TYPES, before?.toString() ?? null, limit + 1, SUMMARY_FIELDS],
  };
}

export async function readConfigHistory(
  pool: pg.Pool,
  tenantId: string,
  page: { before: bigint | undefined; limit: number },
): Promise<Array<ConfigHistoryEntry & { key: bigint }>> {
  const { rows } = await pool.query<HistoryRow>(configHistoryQuery(tenantId, page));
  return rows.map((row) => ({
    key: BigInt(row.position),
    position: row.position,
    occurred_at: row.occurred_at.toISOString(),
    actor: row.actor,
    event_type: row.event_type,
    resource_type: row.resource_type,
    resource_id: row.resource_id,
    correlation_id: row.correlation_id,
    causation_id: row.causation_id,
    summary: summarize(row.event_type, row.data),
  }));
}

const text = (value: unknown): string => (typeof value === 'string' ? value : '');

function routeLabel(data: Record<string, unknown>): string {
  const methods = Array.isArray(data['methods']) ? (data['methods'] as string[]) : [];
  return `${methods.length === 0 ? 'ANY' : methods.join(',')} ${text(data['path_pattern'])}`;
}

function changed(data: Record<string, unknown>): string {
  const fields = Array.isArray(data['changed_fields']) ? (data['changed_fields'] as string[]) : [];
  return fields.length === 0 ? '' : ` (${fields.join(', ')})`;
}

function domainsLabel(domains: unknown): string {
  return Array.isArray(domains) ? domains.map(text).join(', ') : '';
}

function quotaLabel(quota: unknown): string {
  if (quota === null || typeof quota !== 'object') return 'removed';
  const { requests_per_day: day, requests_per_month: month } = quota as Record<string, unknown>;
  const parts = [day !== undefined && `${String(day)}/day`, month !== undefined && `${String(month)}/month`];
  return `set to ${parts.filter(Boolean).join(', ')}`;
}

export function summarize(eventType: string, data: Record<string, unknown>): string {
  switch (eventType) {
    case 'TenantCreated':
      return `tenant ${text(data['name'])} created`;
    case 'TenantUpdated':
      return `tenant changed${changed(data)}`;
    case 'OriginCreated':
      return `origin ${text(data['name'])} added`;
    case 'OriginUpdated':
      return `origin ${text(data['name'])} changed${changed(data)}`;
    case 'OriginDeleted':
      return 'origin removed';
    case 'RouteCreated':
      return `route ${routeLabel(data)} created`;
    case 'RouteUpdated':
      return `route ${routeLabel(data)} changed${changed(data)}`;
    case 'RouteDeleted':
      return 'route deleted';
    case 'ApiKeyIssued':
      return `API key ${text(data['name'])} issued`;
    case 'ApiKeyRotated':
      return 'API key rotated';
    case 'ApiKeyRevoked':
      return 'API key revoked';
    case 'ApiKeyQuotaChanged':
      return `API key quota ${quotaLabel(data['quota'])}`;
    case 'CertificateUploaded':
      return `certificate for ${domainsLabel(data['domains'])} uploaded`;
    case 'CertificateKeyResealed':
      return 'certificate private key resealed';
    case 'CertificateDeleted':
      return 'certificate removed';
    case 'CustomDomainVerified':
      return `custom domain ${text(data['domain'])} verified`;
    case 'CustomDomainDeleted':
      return `custom domain ${text(data['domain'])} removed`;
    case 'UserCreated':
      return `user ${text(data['clerk_user_id'])} added`;
    case 'UserDeleted':
      return 'user removed';
    case 'ConfigRolledBack':
      return `rolled back to position ${text(data['to_position'])} (${String(data['changes'])} changes)`;
    default:
      return eventType;
  }
}
