import { randomUUID, X509Certificate } from 'node:crypto';
import {
  type RouteConfig,
  type SnapshotCertificate,
  type TenantSnapshot,
  tenantSnapshot,
} from '@vantageedge/shared/domain/gateway-config';
import type { NO_ROUTE_POLICIES } from '@vantageedge/shared/domain/route-policies';
import {
  certificateKeyContext,
  type KeyRing,
  sealPrivateKey,
} from '@vantageedge/shared/tls/private-key-envelope';

/** Route policies as the admin API takes them (validated and defaulted by the real schema). */
export type TestRoutePolicies = Partial<Record<keyof typeof NO_ROUTE_POLICIES, unknown>>;

/** Input shapes for test snapshots: defaults filled in by the real zod schema. */
export interface TestRoute extends TestRoutePolicies {
  id?: string;
  origin_id: string | null;
  path_pattern: string;
  auth_mode?: RouteConfig['auth_mode'];
  methods?: string[];
  priority?: number;
  required_scopes?: string[];
  require_tenant_org?: boolean;
  allow_any_authenticated_user?: boolean;
  strip_prefix?: string | null;
  websocket_token?: RouteConfig['websocket_token'];
  /** Raw policies, defaults filled in by the shared schema. */
  rate_limit?: Record<string, unknown> | null;
  cache_policy?: Record<string, unknown> | null;
}

export interface TestOrigin {
  id?: string;
  /** Target URLs (weight 1), or URLs with their weights. */
  targets: Array<string | { url: string; weight: number }>;
  timeout_seconds?: number;
  /** Default: the schema's (/health). */
  health_check_path?: string;
  circuit_breaker?: Record<string, unknown>;
  load_balancing?: Record<string, unknown>;
  /** Default: active checks off (passive ones on). */
  health_check?: Record<string, unknown>;
  /** How its https targets are verified (default: the schema's, verified against the replica's store). */
  tls?: Record<string, unknown>;
}

export interface TestSnapshotInput {
  tenantId?: string;
  version?: number | bigint;
  subdomain: string;
  /** The position from which the tenant holds its subdomain (default: none, read as the snapshot version). */
  subdomainPosition?: number | bigint;
  clerkOrgId?: string | null;
  /** Clerk user ids of the tenant's users. */
  clerkUserIds?: string[];
  /** Verified custom domains with the position that verified them (default: the snapshot version). */
  customDomains?: Array<string | { domain: string; verified_position: number | bigint }>;
  origins: Array<TestOrigin & { id: string }>;
  routes: TestRoute[];
  apiKeys?: Array<{
    id?: string;
    key_hash: string;
    scopes?: string[];
    expires_at?: string | null;
    quota?: Record<string, number> | null;
  }>;
  settings?: Record<string, unknown>;
  certificates?: SnapshotCertificate[];
}

/** Builds a valid TenantSnapshot (parsed by the shared schema, so defaults are the real ones). */
export function buildSnapshot(input: TestSnapshotInput): TenantSnapshot {
  const tenantId = input.tenantId ?? randomUUID();
  return tenantSnapshot.parse({
    schema_version: 1,
    tenant_id: tenantId,
    version: String(input.version ?? 1),
    event_time: new Date().toISOString(),
    tenant: {
      id: tenantId,
      name: input.subdomain,
      subdomain: input.subdomain,
      ...(input.subdomainPosition === undefined
        ? {}
        : { subdomain_position: String(input.subdomainPosition) }),
      clerk_org_id: input.clerkOrgId ?? null,
      settings: input.settings ?? {},
    },
    users: (input.clerkUserIds ?? []).map((clerkUserId) => ({
      id: randomUUID(),
      clerk_user_id: clerkUserId,
    })),
    custom_domains: (input.customDomains ?? []).map((entry) =>
      typeof entry === 'string'
        ? { domain: entry, verified_position: String(input.version ?? 1) }
        : { domain: entry.domain, verified_position: String(entry.verified_position) },
    ),
    origins: input.origins.map(
      (origin): Record<string, unknown> => ({
        id: origin.id,
        name: `origin-${origin.id.slice(0, 8)}`,
        targets: origin.targets.map((target) => (typeof target === 'string' ? { url: target } : target)),
        ...(origin.timeout_seconds === undefined ? {} : { timeout_seconds: origin.timeout_seconds }),
        ...(origin.health_check_path === undefined ? {} : { health_check_path: origin.health_check_path }),
        ...(origin.circuit_breaker === undefined ? {} : { circuit_breaker: origin.circuit_breaker }),
        ...(origin.load_balancing === undefined ? {} : { load_balancing: origin.load_balancing }),
        health_check: origin.health_check ?? { active: { enabled: false } },
        ...(origin.tls === undefined ? {} : { tls: origin.tls }),
      }),
    ),
    routes: input.routes.map((route) => ({
      id: route.id ?? randomUUID(),
      auth_mode: 'public',
      ...route,
    })),
    api_keys: (input.apiKeys ?? []).map((key) => ({
      id: key.id ?? randomUUID(),
      name: 'test key',
      scopes: key.scopes ?? [],
      expires_at: key.expires_at ?? null,
      key_hash: key.key_hash,
      quota: key.quota ?? null,
    })),
    certificates: input.certificates ?? [],
  });
}

/** A tenant whose one route, `/*`, goes to one origin with one target (`target`, a URL). */
export function tenantRoutingAllTo(subdomain: string, target: string): TenantSnapshot {
  const originId = randomUUID();
  return buildSnapshot({
    subdomain,
    origins: [{ id: originId, targets: [target] }],
    routes: [{ origin_id: originId, path_pattern: '/*' }],
  });
}

/** A tenant whose routes /t<i>/* each go, stripped of /t<i>, to one of `targets` (one origin each). */
export function tenantWithTargets(subdomain: string, targets: readonly string[]): TenantSnapshot {
  const origins = targets.map((target) => ({ id: randomUUID(), targets: [target] }));
  return buildSnapshot({
    subdomain,
    origins,
    routes: origins.map((origin, index) => ({
      origin_id: origin.id,
      path_pattern: `/t${index}/*`,
      strip_prefix: `/t${index}`,
    })),
  });
}

/** A tenant certificate as the snapshot carries it: its key sealed under `ring` for that tenant. */
export function snapshotCertificateOf(
  ring: KeyRing,
  tenantId: string,
  certificate: { chainPem: string; privateKeyPem: string },
  domains: string[],
  id: string = randomUUID(),
): SnapshotCertificate {
  const leaf = new X509Certificate(certificate.chainPem);
  return {
    id,
    domains,
    certificate_pem: certificate.chainPem,
    private_key: sealPrivateKey(ring, certificate.privateKeyPem, certificateKeyContext(tenantId, id)),
    fingerprint_sha256: leaf.fingerprint256,
    not_after: new Date(Date.parse(leaf.validTo)).toISOString(),
  };
}
