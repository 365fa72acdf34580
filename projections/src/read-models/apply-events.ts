import {
  isCredentialTransformField,
  redactedCredentials,
  redactedTransform,
} from '@vantageedge/shared/domain/credential-headers';
import { type ControlPlaneEvent, isControlPlaneEvent } from '@vantageedge/shared/domain/events';
import { withoutLegacySettings } from '@vantageedge/shared/domain/gateway-config';
import { ROUTE_POLICY_FIELDS } from '@vantageedge/shared/domain/route-policies';
import type { RecordedEvent } from '@vantageedge/shared/event-store/port';
import type pg from 'pg';
import { toAuditEntry } from './audit-entry.js';
import { qualified, type ReadModelTable } from './schema.js';

/**
 * Folds control-plane events into the read-model tables of `schema` (the live `read_models`, or a
 * rebuild schema during a replay), inside the caller's transaction.
 *
 * Round trips dominate the cost, so a batch is first reduced in memory: `*Created/*Updated` events
 * carry the complete state, so per resource only the newest state matters, and the few partial
 * changes (rotation, revocation, tenant deletion) are applied onto it. Then each table gets at most
 * one delete, one multi-row upsert, and one statement per partial change whose row was not in the
 * batch. The result is the same as applying the events one by one.
 */
export async function applyEvents(
  client: pg.PoolClient,
  schema: string,
  events: readonly RecordedEvent[],
): Promise<void> {
  const changes = new BatchChanges();
  const audited: RecordedEvent[] = [];
  for (const event of events) {
    if (!isControlPlaneEvent(event)) continue;
    changes.add(event);
    audited.push(event);
  }
  await changes.flush(client, schema);
  if (audited.length > 0) await insertAuditEntries(client, schema, audited);
}

type Row = Record<string, unknown>;
type FoldedTable = Exclude<ReadModelTable, 'audit_log'>;

/** A change to a row not folded in this batch, applied with SQL onto the stored row. */
interface StoredRowPatch {
  sql: (schema: string) => string;
  values: unknown[];
}

interface RowChange {
  /** The row was removed in this batch (before `row`, if it came back). */
  removed: boolean;
  /** The complete new row, when the batch carried a state event for it. */
  row: Row | null;
  /** Partial changes for a row the batch has no state for, in event order. */
  patches: StoredRowPatch[];
}

const COLUMNS: Record<FoldedTable, ReadonlyArray<readonly [string, string]>> = {
  tenants: [
    ['id', 'uuid'],
    ['name', 'text'],
    ['subdomain', 'text'],
    ['clerk_org_id', 'text'],
    ['settings', 'jsonb'],
    ['created_at', 'timestamptz'],
    ['updated_at', 'timestamptz'],
    ['deleted_at', 'timestamptz'],
    ['revision', 'bigint'],
    ['position', 'bigint'],
    ['created_position', 'bigint'],
  ],
  users: [
    ['id', 'uuid'],
    ['tenant_id', 'uuid'],
    ['clerk_user_id', 'text'],
    ['email', 'text'],
    ['role', 'text'],
    ['created_at', 'timestamptz'],
    ['updated_at', 'timestamptz'],
    ['revision', 'bigint'],
    ['position', 'bigint'],
    ['created_position', 'bigint'],
  ],
  origins: [
    ['id', 'uuid'],
    ['tenant_id', 'uuid'],
    ['name', 'text'],
    ['url', 'text'],
    ['targets', 'jsonb'],
    ['health_check_path', 'text'],
    ['timeout_seconds', 'integer'],
    ['load_balancing', 'jsonb'],
    ['health_check', 'jsonb'],
    ['circuit_breaker', 'jsonb'],
    ['tls', 'jsonb'],
    ['tags', 'jsonb'],
    ['created_at', 'timestamptz'],
    ['updated_at', 'timestamptz'],
    ['revision', 'bigint'],
    ['position', 'bigint'],
    ['created_position', 'bigint'],
  ],
  routes: [
    ['id', 'uuid'],
    ['tenant_id', 'uuid'],
    ['origin_id', 'uuid'],
    ['path_pattern', 'text'],
    ['methods', 'jsonb'],
    ['priority', 'integer'],
    ['auth_mode', 'text'],
    ['required_scopes', 'jsonb'],
    ['require_tenant_org', 'boolean'],
    ['allow_any_authenticated_user', 'boolean'],
    ['websocket_token', 'text'],
    ['strip_prefix', 'text'],
    ['rate_limit', 'jsonb'],
    ['cache_policy', 'jsonb'],
    ['policies', 'jsonb'],
    ['tags', 'jsonb'],
    ['created_at', 'timestamptz'],
    ['updated_at', 'timestamptz'],
    ['revision', 'bigint'],
    ['position', 'bigint'],
    ['created_position', 'bigint'],
  ],
  api_keys: [
    ['id', 'uuid'],
    ['tenant_id', 'uuid'],
    ['name', 'text'],
    ['key_hash', 'text'],
    ['key_prefix', 'text'],
    ['scopes', 'jsonb'],
    ['expires_at', 'timestamptz'],
    ['revoked_at', 'timestamptz'],
    ['revoke_reason', 'text'],
    ['replaced_by', 'uuid'],
    ['quota', 'jsonb'],
    ['tags', 'jsonb'],
    ['created_at', 'timestamptz'],
    ['updated_at', 'timestamptz'],
    ['revision', 'bigint'],
    ['position', 'bigint'],
    ['created_position', 'bigint'],
  ],
  custom_domains: [
    ['id', 'uuid'],
    ['tenant_id', 'uuid'],
    ['domain', 'text'],
    ['status', 'text'],
    ['verification_token', 'text'],
    ['verified_at', 'timestamptz'],
    ['verification_method', 'text'],
    ['created_at', 'timestamptz'],
    ['updated_at', 'timestamptz'],
    ['revision', 'bigint'],
    ['position', 'bigint'],
    ['created_position', 'bigint'],
  ],
  // The private key is never in a read model, not even sealed.
  certificates: [
    ['id', 'uuid'],
    ['tenant_id', 'uuid'],
    ['domains', 'jsonb'],
    ['certificate_pem', 'text'],
    ['fingerprint_sha256', 'text'],
    ['subject', 'text'],
    ['issuer', 'text'],
    ['serial_number', 'text'],
    ['dns_names', 'jsonb'],
    ['key_type', 'text'],
    ['not_before', 'timestamptz'],
    ['not_after', 'timestamptz'],
    ['created_at', 'timestamptz'],
    ['updated_at', 'timestamptz'],
    ['revision', 'bigint'],
    ['position', 'bigint'],
    ['created_position', 'bigint'],
  ],
};

/** Kept from the first version of a row: an update never moves its creation. */
const CREATION_COLUMNS = new Set(['id', 'created_at', 'created_position']);

/** A tenant's resources: a deleted tenant's are marked, so lists of every tenant's walk past none of them. */
const TENANT_RESOURCE_TABLES = ['users', 'origins', 'routes', 'api_keys', 'certificates'] as const;

class BatchChanges {
  private readonly tables = new Map<FoldedTable, Map<string, RowChange>>();
  private readonly deletedTenants = new Set<string>();

  add(event: ControlPlaneEvent): void {
    const at = event.metadata.occurred_at;
    const version = {
      updated_at: at,
      revision: event.revision.toString(),
      position: event.position.toString(),
    };
    const creation = { created_at: at, created_position: event.position.toString() };
    switch (event.type) {
      case 'TenantCreated':
      case 'TenantUpdated': {
        const { tenant_id, name, subdomain, clerk_org_id, settings } = event.data;
        this.put('tenants', tenant_id, {
          id: tenant_id,
          name,
          subdomain,
          clerk_org_id,
          // Retired fields (unverified custom_domains, unbound service_jwks) are not shown; the jwks_url
          // without credentials (the event log and the snapshots keep the gateways' copy).
          settings: redactedCredentials(withoutLegacySettings(settings)),
          deleted_at: null,
          ...creation,
          ...version,
        });
        return;
      }
      case 'TenantDeleted':
        this.deletedTenants.add(event.data.tenant_id);
        this.patch(
          'tenants',
          event.data.tenant_id,
          (row) => Object.assign(row, { deleted_at: at, ...version }),
          {
            sql: (schema) =>
              `update ${qualified(schema, 'tenants')} set deleted_at = $2, updated_at = $2, revision = $3, position = $4 where id = $1`,
            values: [event.data.tenant_id, at, version.revision, version.position],
          },
        );
        return;
      case 'UserCreated':
      case 'UserRoleChanged': {
        const { user_id, tenant_id, clerk_user_id, email, role } = event.data;
        this.put('users', user_id, {
          id: user_id,
          tenant_id,
          clerk_user_id,
          email,
          role,
          ...creation,
          ...version,
        });
        return;
      }
      case 'UserDeleted':
        this.remove('users', event.data.user_id);
        return;
      case 'OriginCreated':
      case 'OriginUpdated': {
        const d = event.data;
        this.put('origins', d.origin_id, {
          id: d.origin_id,
          tenant_id: d.tenant_id,
          name: d.name,
          // Without the credentials earlier releases recorded in target URLs, as every read shows them.
          url: redactedCredentials(d.targets[0]?.url ?? '', 'url'),
          targets: redactedCredentials(d.targets),
          health_check_path: d.health_check_path,
          timeout_seconds: d.timeout_seconds,
          load_balancing: d.load_balancing,
          health_check: d.health_check,
          circuit_breaker: d.circuit_breaker,
          // Absent in origins recorded before TLS settings (read as the defaults).
          tls: d.tls ?? null,
          // Absent in resources recorded before tags: none.
          tags: d.tags ?? [],
          ...creation,
          ...version,
        });
        return;
      }
      case 'OriginDeleted':
        this.remove('origins', event.data.origin_id);
        return;
      case 'RouteCreated':
      case 'RouteUpdated': {
        const d = event.data;
        this.put('routes', d.route_id, {
          id: d.route_id,
          tenant_id: d.tenant_id,
          origin_id: d.origin_id,
          path_pattern: d.path_pattern,
          methods: d.methods,
          priority: d.priority,
          auth_mode: d.auth_mode,
          required_scopes: d.required_scopes,
          require_tenant_org: d.require_tenant_org,
          // Routes recorded before the flag existed never opted in.
          allow_any_authenticated_user: d.allow_any_authenticated_user ?? false,
          websocket_token: d.websocket_token ?? 'header',
          strip_prefix: d.strip_prefix,
          rate_limit: d.rate_limit,
          cache_policy: d.cache_policy,
          // The route policies (CORS, IP rules, transforms, …) as one document; absent before they existed.
          policies: routePoliciesOf(d),
          // Absent in resources recorded before tags: none.
          tags: d.tags ?? [],
          ...creation,
          ...version,
        });
        return;
      }
      case 'RouteDeleted':
        this.remove('routes', event.data.route_id);
        return;
      case 'ApiKeyIssued': {
        const d = event.data;
        this.put('api_keys', d.api_key_id, {
          id: d.api_key_id,
          tenant_id: d.tenant_id,
          name: d.name,
          key_hash: d.key_hash,
          key_prefix: d.key_prefix,
          scopes: d.scopes,
          expires_at: storableInstant(d.expires_at),
          revoked_at: null,
          revoke_reason: null,
          replaced_by: null,
          quota: d.quota ?? null,
          // Absent in keys issued before keys had tags: none.
          tags: d.tags ?? [],
          ...creation,
          ...version,
        });
        return;
      }
      case 'ApiKeyRotated': {
        // The old key keeps working until the grace deadline, never longer than it would have anyway.
        const { api_key_id, replaced_by, old_key_expires_at: deadline } = event.data;
        this.patch(
          'api_keys',
          api_key_id,
          (row) =>
            Object.assign(row, {
              replaced_by,
              expires_at: earliest(row['expires_at'], deadline),
              ...version,
            }),
          {
            sql: (schema) =>
              `update ${qualified(schema, 'api_keys')} set replaced_by = $2,
                 expires_at = least(coalesce(expires_at, $3::timestamptz), $3::timestamptz),
                 updated_at = $4, revision = $5, position = $6 where id = $1`,
            values: [api_key_id, replaced_by, deadline, at, version.revision, version.position],
          },
        );
        return;
      }
      case 'ApiKeyRevoked': {
        const { api_key_id, reason } = event.data;
        this.patch(
          'api_keys',
          api_key_id,
          (row) => Object.assign(row, { revoked_at: at, revoke_reason: reason, ...version }),
          {
            sql: (schema) =>
              `update ${qualified(schema, 'api_keys')} set revoked_at = $2, revoke_reason = $3, updated_at = $2,
               revision = $4, position = $5 where id = $1`,
            values: [api_key_id, at, reason, version.revision, version.position],
          },
        );
        return;
      }
      case 'ApiKeyQuotaChanged': {
        const { api_key_id, quota } = event.data;
        this.patch('api_keys', api_key_id, (row) => Object.assign(row, { quota, ...version }), {
          sql: (schema) =>
            `update ${qualified(schema, 'api_keys')} set quota = $2::jsonb, updated_at = $3,
               revision = $4, position = $5 where id = $1`,
          // No quota is SQL NULL, as the upsert of a batch row writes it (JSON's null would differ).
          values: [
            api_key_id,
            quota === null ? null : JSON.stringify(quota),
            at,
            version.revision,
            version.position,
          ],
        });
        return;
      }
      case 'ApiKeyTagsChanged': {
        const { api_key_id, tags } = event.data;
        this.patch('api_keys', api_key_id, (row) => Object.assign(row, { tags, ...version }), {
          sql: (schema) =>
            `update ${qualified(schema, 'api_keys')} set tags = $2::jsonb, updated_at = $3,
               revision = $4, position = $5 where id = $1`,
          values: [api_key_id, JSON.stringify(tags), at, version.revision, version.position],
        });
        return;
      }
      case 'CachePurgeRequested':
      case 'ConfigRolledBack':
      case 'TenantDroppedFromGateways':
      case 'TenantDropRolledBack':
        // Changes no read model; it only appears in the audit log.
        return;
      case 'CertificateUploaded': {
        const d = event.data;
        this.put('certificates', d.certificate_id, {
          id: d.certificate_id,
          tenant_id: d.tenant_id,
          domains: d.domains,
          certificate_pem: d.certificate_pem,
          fingerprint_sha256: d.fingerprint_sha256,
          subject: d.subject,
          issuer: d.issuer,
          serial_number: d.serial_number,
          dns_names: d.dns_names,
          key_type: d.key_type,
          not_before: d.not_before,
          not_after: d.not_after,
          ...creation,
          ...version,
        });
        return;
      }
      case 'CertificateKeyResealed':
        this.patch('certificates', event.data.certificate_id, (row) => Object.assign(row, version), {
          sql: (schema) =>
            `update ${qualified(schema, 'certificates')} set updated_at = $2, revision = $3, position = $4 where id = $1`,
          values: [event.data.certificate_id, at, version.revision, version.position],
        });
        return;
      case 'CertificateDeleted':
        this.remove('certificates', event.data.certificate_id);
        return;
      case 'CustomDomainCreated': {
        const d = event.data;
        this.put('custom_domains', d.custom_domain_id, {
          id: d.custom_domain_id,
          tenant_id: d.tenant_id,
          domain: d.domain,
          status: 'pending',
          verification_token: d.verification_token,
          verified_at: null,
          verification_method: null,
          ...creation,
          ...version,
        });
        return;
      }
      case 'CustomDomainVerified': {
        const { custom_domain_id, method } = event.data;
        this.patch(
          'custom_domains',
          custom_domain_id,
          (row) =>
            Object.assign(row, {
              status: 'verified',
              verified_at: at,
              verification_method: method,
              ...version,
            }),
          {
            sql: (schema) =>
              `update ${qualified(schema, 'custom_domains')} set status = 'verified', verified_at = $2,
                 verification_method = $3, updated_at = $2, revision = $4, position = $5 where id = $1`,
            values: [custom_domain_id, at, method, version.revision, version.position],
          },
        );
        return;
      }
      case 'CustomDomainDeleted':
        this.remove('custom_domains', event.data.custom_domain_id);
        return;
    }
  }

  async flush(client: pg.PoolClient, schema: string): Promise<void> {
    for (const [table, changes] of this.tables) {
      const removed = [...changes].filter(([, change]) => change.removed).map(([id]) => id);
      if (removed.length > 0) {
        await client.query(`delete from ${qualified(schema, table)} where id = any($1::uuid[])`, [removed]);
      }
      const rows = [...changes.values()].flatMap((change) => (change.row ? [change.row] : []));
      if (rows.length > 0) await upsertRows(client, schema, table, rows);
      for (const change of changes.values()) {
        for (const patch of change.patches) await client.query(patch.sql(schema), patch.values);
      }
    }
    // After the upserts: rows the batch created before the deletion are marked too.
    if (this.deletedTenants.size > 0) {
      for (const table of TENANT_RESOURCE_TABLES) {
        await client.query(
          `update ${qualified(schema, table)} set tenant_deleted = true
            where tenant_id = any($1::uuid[]) and not tenant_deleted`,
          [[...this.deletedTenants]],
        );
      }
    }
  }

  private changeOf(table: FoldedTable, id: string): RowChange {
    let changes = this.tables.get(table);
    if (!changes) {
      changes = new Map();
      this.tables.set(table, changes);
    }
    let change = changes.get(id);
    if (!change) {
      change = { removed: false, row: null, patches: [] };
      changes.set(id, change);
    }
    return change;
  }

  private put(table: FoldedTable, id: string, row: Row): void {
    const change = this.changeOf(table, id);
    if (change.row) {
      for (const column of CREATION_COLUMNS) row[column] = change.row[column];
    }
    // A state event replaces whatever partial changes preceded it for a stored row.
    change.row = row;
    change.patches = [];
  }

  private patch(
    table: FoldedTable,
    id: string,
    onBatchRow: (row: Row) => void,
    onStoredRow: StoredRowPatch,
  ): void {
    const change = this.changeOf(table, id);
    if (change.row) onBatchRow(change.row);
    else if (!change.removed) change.patches.push(onStoredRow);
  }

  private remove(table: FoldedTable, id: string): void {
    const change = this.changeOf(table, id);
    change.removed = true;
    change.row = null;
    change.patches = [];
  }
}

/**
 * An instant as a timestamptz column takes it. Commands accept years 1970–9999 only, but events
 * recorded before may hold any year JavaScript can (0000, -000001, +010000), which PostgreSQL refuses:
 * that one row would fail its batch and stop the projection for every tenant. Those keep their meaning
 * at the edge of the column's range: long expired, or not before the year 9999 ends.
 */
export function storableInstant(value: string | null): string | null {
  if (value === null) return null;
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) return null;
  if (ms < EARLIEST_STORABLE_MS) return '0001-01-01T00:00:00.000Z';
  if (ms > LATEST_STORABLE_MS) return '9999-12-31T23:59:59.999Z';
  return value;
}
const EARLIEST_STORABLE_MS = Date.parse('0001-01-01T00:00:00.000Z');
const LATEST_STORABLE_MS = Date.parse('9999-12-31T23:59:59.999Z');

function earliest(current: unknown, deadline: string): string {
  if (typeof current !== 'string') return deadline;
  return Date.parse(current) <= Date.parse(deadline) ? current : deadline;
}

async function upsertRows(
  client: pg.PoolClient,
  schema: string,
  table: FoldedTable,
  rows: Row[],
): Promise<void> {
  const columns = COLUMNS[table];
  const names = columns.map(([name]) => name).join(', ');
  const recordType = columns.map(([name, type]) => `${name} ${type}`).join(', ');
  const updates = columns
    .filter(([name]) => !CREATION_COLUMNS.has(name))
    .map(([name]) => `${name} = excluded.${name}`)
    .join(', ');
  // A resource recorded after its tenant's deletion (earlier releases could record one) is marked as
  // the deletion marks its tenant's rows, whichever batch applies it; a mark is never taken back.
  const marked = (TENANT_RESOURCE_TABLES as readonly string[]).includes(table);
  await client.query(
    `insert into ${qualified(schema, table)} as stored (${names}${marked ? ', tenant_deleted' : ''})
       select ${names}${
         marked
           ? `, exists (select 1 from ${qualified(schema, 'tenants')} t
                         where t.id = r.tenant_id and t.deleted_at is not null)`
           : ''
       } from jsonb_to_recordset($1::jsonb) as r(${recordType})
     on conflict (id) do update set ${updates}${
       marked ? ', tenant_deleted = stored.tenant_deleted or excluded.tenant_deleted' : ''
     }`,
    [JSON.stringify(rows)],
  );
}

async function insertAuditEntries(
  client: pg.PoolClient,
  schema: string,
  events: readonly RecordedEvent[],
): Promise<void> {
  const entries = events.map((event) => {
    const entry = toAuditEntry(event);
    return {
      ...entry,
      position: entry.position.toString(),
      stream_revision: entry.stream_revision.toString(),
    };
  });
  const table = qualified(schema, 'audit_log');
  // occurred_high: the latest occurred_at up to the row's position, the rows being written in position
  // order (the audit log's time-range reads rely on it growing with position; migration 0240).
  await client.query(
    `insert into ${table}
        (position, event_id, event_type, stream, stream_revision, resource_type, resource_id, tenant_id, actor,
         correlation_id, causation_id, occurred_at, data, occurred_high)
      select position, event_id, event_type, stream, stream_revision, resource_type, resource_id, tenant_id, actor,
         correlation_id, causation_id, occurred_at, data,
         greatest(max(occurred_at) over (order by position), (select max(occurred_high) from ${table}))
        from jsonb_to_recordset($1::jsonb) as r(position bigint, event_id uuid, event_type text, stream text,
          stream_revision bigint, resource_type text, resource_id text, tenant_id uuid, actor text,
          correlation_id text, causation_id text, occurred_at timestamptz, data jsonb)`,
    [JSON.stringify(entries)],
  );
}

/**
 * The route policy fields an event carries (routes recorded before they existed carry none), the
 * values of credential request headers and query parameters redacted: the read model never holds them
 * (the event log and the snapshots do).
 */
function routePoliciesOf(data: object): Record<string, unknown> {
  const policies: Record<string, unknown> = {};
  for (const field of ROUTE_POLICY_FIELDS) {
    const value = (data as Record<string, unknown>)[field];
    if (value !== undefined)
      policies[field] = isCredentialTransformField(field) ? redactedTransform(field, value) : value;
  }
  return policies;
}
