import type { ReadModelTable } from '@vantageedge/projections/read-models/schema';
import {
  redactedCredentials,
  redactedHeaderTransform,
  redactedQueryTransform,
  urlWithoutCredentials,
} from '@vantageedge/shared/domain/credential-headers';
import { originTls, withoutLegacySettings } from '@vantageedge/shared/domain/gateway-config';
import { NO_ROUTE_POLICIES } from '@vantageedge/shared/domain/route-policies';

/**
 * The admin API's resources as served from the read models: which table, and how a row becomes the
 * resource JSON both sides of the API agree on (snake_case, ISO timestamps, never a key hash).
 */

/** Columns every read-model row has. */
export interface RowBase {
  id: string;
  created_at: Date;
  updated_at: Date;
  /** Stream revision (bigint as text): the ETag. */
  revision: string;
  created_position: string;
}

export interface ResourceDefinition {
  /** Singular, for messages: "route not found". */
  name: string;
  /** Path segment under /api/v1. */
  path: string;
  table: Exclude<ReadModelTable, 'audit_log'>;
  /** Its rows have tags (a `tags` column): its list takes `?tags=`. */
  tagged?: boolean;
  present(row: RowBase & Record<string, unknown>): Record<string, unknown>;
}

const iso = (value: unknown): string | null => (value instanceof Date ? value.toISOString() : null);

const timestamps = (row: RowBase) => ({ created_at: iso(row.created_at), updated_at: iso(row.updated_at) });

export const tenantResource: ResourceDefinition = {
  name: 'tenant',
  path: 'tenants',
  table: 'tenants',
  present: (row) => ({
    id: row.id,
    name: row['name'],
    subdomain: row['subdomain'],
    clerk_org_id: row['clerk_org_id'],
    // Settings recorded before ip_rules existed have none; the jwks_url shows no credentials an earlier
    // release recorded in it.
    settings: redactedCredentials({
      ip_rules: null,
      authorized_parties: null,
      ...(withoutLegacySettings(row['settings']) as object),
    }),
    ...timestamps(row),
  }),
};

export const userResource: ResourceDefinition = {
  name: 'user',
  path: 'users',
  table: 'users',
  present: (row) => ({
    id: row.id,
    tenant_id: row['tenant_id'],
    clerk_user_id: row['clerk_user_id'],
    email: row['email'],
    role: row['role'],
    ...timestamps(row),
  }),
};

export const originResource: ResourceDefinition = {
  name: 'origin',
  path: 'origins',
  table: 'origins',
  tagged: true,
  present: (row) => ({
    id: row.id,
    tenant_id: row['tenant_id'],
    name: row['name'],
    // Without credentials an earlier release recorded in the URLs (no gateway ever sent them).
    url: typeof row['url'] === 'string' ? urlWithoutCredentials(row['url']) : row['url'],
    targets: redactedCredentials(row['targets']),
    health_check_path: row['health_check_path'],
    timeout_seconds: row['timeout_seconds'],
    load_balancing: row['load_balancing'],
    health_check: row['health_check'],
    circuit_breaker: row['circuit_breaker'],
    // Null in rows of origins recorded before TLS settings (partial before some of them): the defaults.
    tls: originTls.parse(row['tls'] ?? {}),
    tags: row['tags'],
    ...timestamps(row),
  }),
};

export const routeResource: ResourceDefinition = {
  name: 'route',
  path: 'routes',
  table: 'routes',
  tagged: true,
  present: (row) => ({
    id: row.id,
    tenant_id: row['tenant_id'],
    origin_id: row['origin_id'],
    path_pattern: row['path_pattern'],
    methods: row['methods'],
    priority: row['priority'],
    auth_mode: row['auth_mode'],
    required_scopes: row['required_scopes'],
    require_tenant_org: row['require_tenant_org'],
    allow_any_authenticated_user: row['allow_any_authenticated_user'],
    websocket_token: row['websocket_token'],
    strip_prefix: row['strip_prefix'],
    rate_limit: row['rate_limit'],
    cache_policy: row['cache_policy'],
    ...NO_ROUTE_POLICIES,
    ...(row['policies'] as object),
    // Write-only: rows projected before the read model redacted them still hold the values.
    request_headers: redactedHeaderTransform(
      (row['policies'] as { request_headers?: unknown })?.request_headers ?? null,
    ),
    query: redactedQueryTransform((row['policies'] as { query?: unknown })?.query ?? null),
    tags: row['tags'],
    ...timestamps(row),
  }),
};

export const apiKeyResource: ResourceDefinition = {
  name: 'api key',
  path: 'api-keys',
  table: 'api_keys',
  tagged: true,
  // Deliberately field by field: key_hash (and revoke_reason, only in the audit log) stay out.
  present: (row) => ({
    id: row.id,
    tenant_id: row['tenant_id'],
    name: row['name'],
    key_prefix: row['key_prefix'],
    scopes: row['scopes'],
    expires_at: iso(row['expires_at']),
    revoked_at: iso(row['revoked_at']),
    replaced_by: row['replaced_by'],
    quota: row['quota'] ?? null,
    tags: row['tags'],
    ...timestamps(row),
  }),
};

export const certificateResource: ResourceDefinition = {
  name: 'certificate',
  path: 'certificates',
  table: 'certificates',
  // The read model has no private key; what it has is public.
  present: (row) => ({
    id: row.id,
    tenant_id: row['tenant_id'],
    domains: row['domains'],
    certificate_pem: row['certificate_pem'],
    fingerprint_sha256: row['fingerprint_sha256'],
    subject: row['subject'],
    issuer: row['issuer'],
    serial_number: row['serial_number'],
    dns_names: row['dns_names'],
    key_type: row['key_type'],
    not_before: iso(row['not_before']),
    not_after: iso(row['not_after']),
    ...timestamps(row),
  }),
};

/** Resources that belong to a tenant (everything but the tenant itself). */
export const TENANT_CHILD_RESOURCES = [
  userResource,
  originResource,
  routeResource,
  apiKeyResource,
  certificateResource,
] as const;
