/** The admin API's resources as the console reads them (types only: the schemas stay on the server). */
export type {
  ApiKeyResource as ApiKey,
  CertificateResource as Certificate,
  CustomDomainResource as CustomDomain,
  Listed,
  OriginResource as Origin,
  RouteResource as Route,
  TenantResource as Tenant,
} from '@vantageedge/control-plane/schemas/resources';

export interface ApiKeyWithQuota {
  id: string;
  quota_usage: Array<{
    period: 'day' | 'month';
    limit: number;
    used: number;
    remaining: number;
    resets_at: string;
  }> | null;
}

export interface IssuedApiKey {
  id: string;
  name: string;
  key: string;
  key_prefix: string;
}

export interface AuditEntry {
  position: string;
  event_id: string;
  event_type: string;
  resource_type: string;
  resource_id: string;
  tenant_id: string | null;
  actor: string;
  occurred_at: string;
  correlation_id: string;
  data: unknown;
}

export interface ReplicaRollout {
  replica_id: string;
  applied_version: string | null;
  last_seen: string;
  up_to_date: boolean;
}

export interface RolloutStatus {
  tenant_id: string;
  target_version: string;
  deleted: boolean;
  projected_position: string;
  replicas: ReplicaRollout[];
  live_everywhere: boolean;
  /** The position of the tenant event the snapshots could not fold: no later change reaches a replica. */
  quarantined_since: string | null;
  /** Why target_version was not published (too large): replicas keep serving the previous one. */
  publish_error: string | null;
}

type ByStatusClass = Record<'1xx' | '2xx' | '3xx' | '4xx' | '5xx', number>;

/** GET /api/v1/usage */
export interface UsageReport {
  tenant_id: string;
  api_key_id: string | null;
  granularity: 'hour' | 'day';
  from: string;
  to: string;
  requests: number;
  by_status_class: ByStatusClass;
  data: Array<{ start: string; requests: number; by_status_class: ByStatusClass }>;
  by_route: Array<{ id: string | null; requests: number; by_status_class: ByStatusClass }>;
  by_api_key: Array<{ id: string | null; requests: number; by_status_class: ByStatusClass }>;
  by_user: Array<{ id: string | null; requests: number; by_status_class: ByStatusClass }>;
}

/** One change of the tenant's config (GET …/config/history). */
export interface ConfigHistoryEntry {
  position: string;
  occurred_at: string;
  actor: string;
  event_type: string;
  resource_type: string;
  resource_id: string;
  causation_id: string | null;
  summary: string;
}

export interface ConfigChange {
  resource: string;
  id: string | null;
  name: string;
  change: 'added' | 'removed' | 'changed' | 'restored';
  fields: Array<{ field: string; from: unknown; to: unknown }>;
}

/** GET …/config/diff */
export interface ConfigDiff {
  from: { position: string; version: string };
  to: { position: string; version: string };
  changes: ConfigChange[];
}

/** POST …/config/rollback (also with dry_run). */
export interface ConfigChangeResult {
  version: string;
  position: string;
  changes: ConfigChange[];
  to_position?: string;
}
