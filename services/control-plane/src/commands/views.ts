import {
  redactedCredentials,
  redactedHeaderTransform,
  redactedQueryTransform,
  urlWithoutCredentials,
} from '@vantageedge/shared/domain/credential-headers';
import type {
  CertificateState,
  OriginState,
  RouteState,
  TenantState,
  UserState,
} from '@vantageedge/shared/domain/events';
import {
  originTls,
  type TenantSettings,
  withoutLegacySettings,
} from '@vantageedge/shared/domain/gateway-config';
import { NO_ROUTE_POLICIES } from '@vantageedge/shared/domain/route-policies';
import type { ApiKeyData } from '../domain/api-key.js';
import type { Lifecycle } from '../domain/decision.js';
import type {
  ApiKeyResource,
  CertificateResource,
  OriginResource,
  RouteResource,
  TenantResource,
  UserResource,
} from '../schemas/resources.js';

/** Write-side state → the API's resource JSON (the same shapes the read models serve). */

type Known<Data> = Extract<Lifecycle<Data>, { data: Data }>;

export function tenantView({ data, created_at, updated_at }: Known<TenantState>): TenantResource {
  return {
    id: data.tenant_id,
    name: data.name,
    subdomain: data.subdomain,
    clerk_org_id: data.clerk_org_id,
    // Events recorded before the retired settings fields were dropped may still carry them; settings
    // recorded before ip_rules or authorized_parties existed have none; a jwks_url shows no credentials
    // an earlier release recorded in it.
    settings: redactedCredentials({
      ip_rules: null,
      authorized_parties: null,
      ...(withoutLegacySettings(data.settings) as Partial<TenantSettings>),
    } as TenantSettings),
    created_at,
    updated_at,
  };
}

export function userView({ data, created_at, updated_at }: Known<UserState>): UserResource {
  return {
    id: data.user_id,
    tenant_id: data.tenant_id,
    clerk_user_id: data.clerk_user_id,
    email: data.email,
    role: data.role,
    created_at,
    updated_at,
  };
}

export function originView({ data, created_at, updated_at }: Known<OriginState>): OriginResource {
  const { origin_id, tenant_id, ...config } = data;
  return {
    id: origin_id,
    tenant_id,
    name: config.name,
    // Without credentials an earlier release recorded in the URLs (no gateway ever sent them).
    url: urlWithoutCredentials(config.targets[0]?.url ?? ''),
    targets: redactedCredentials(config.targets),
    health_check_path: config.health_check_path,
    timeout_seconds: config.timeout_seconds,
    load_balancing: config.load_balancing,
    health_check: config.health_check,
    circuit_breaker: config.circuit_breaker,
    // Origins recorded before TLS settings (or before some of them): the defaults for what they lack.
    tls: originTls.parse(config.tls ?? {}),
    // Resources recorded before tags have none.
    tags: config.tags ?? [],
    created_at,
    updated_at,
  };
}

export function routeView({ data, created_at, updated_at }: Known<RouteState>): RouteResource {
  const { route_id, tenant_id, ...config } = data;
  return {
    id: route_id,
    tenant_id,
    // Routes recorded before the route policies existed have none.
    ...NO_ROUTE_POLICIES,
    ...config,
    // Routes recorded before the flag existed never opted in.
    allow_any_authenticated_user: config.allow_any_authenticated_user ?? false,
    websocket_token: config.websocket_token ?? 'header',
    // Write-only (README "Route policies"): not even the writer's own answer carries the values.
    request_headers: redactedHeaderTransform(config.request_headers ?? null),
    query: redactedQueryTransform(config.query ?? null),
    // Routes recorded before tags have none.
    tags: config.tags ?? [],
    created_at,
    updated_at,
  };
}

/** A rotated key's effective expiry is the earlier of its own and the end of the grace period. */
export function apiKeyView({ data, created_at, updated_at }: Known<ApiKeyData>): ApiKeyResource {
  const expiries = [data.expires_at, data.rotation_expires_at].filter(
    (value): value is string => value !== null,
  );
  const expires_at =
    expiries.length === 0 ? null : expiries.reduce((a, b) => (Date.parse(a) <= Date.parse(b) ? a : b));
  return {
    id: data.api_key_id,
    tenant_id: data.tenant_id,
    name: data.name,
    key_prefix: data.key_prefix,
    scopes: data.scopes,
    expires_at,
    revoked_at: data.revoked_at,
    replaced_by: data.replaced_by,
    quota: data.quota ?? null,
    tags: data.tags ?? [],
    created_at,
    updated_at,
  };
}

export function certificateView({
  data,
  created_at,
  updated_at,
}: Known<CertificateState>): CertificateResource {
  return {
    id: data.certificate_id,
    tenant_id: data.tenant_id,
    domains: data.domains,
    certificate_pem: data.certificate_pem,
    fingerprint_sha256: data.fingerprint_sha256,
    subject: data.subject,
    issuer: data.issuer,
    serial_number: data.serial_number,
    dns_names: data.dns_names,
    key_type: data.key_type,
    not_before: data.not_before,
    not_after: data.not_after,
    created_at,
    updated_at,
  };
}
