import type { OriginConfig, TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { compileLocalJwks, RemoteJwksRegistry } from '../auth/jwks.js';
import type { GatewayMetrics } from '../observability/gateway-metrics.js';
import { compileRouteStages, NO_STAGES, type RoutePolicy } from '../pipeline/stage.js';
import type { UpstreamSet } from '../upstream/types.js';
import type {
  CompiledApiKey,
  CompiledOrigin,
  CompiledRoute,
  CompiledTenant,
  CompiledTenantAuth,
} from './compiled-tenant.js';
import { normalizePath } from './normalize-path.js';
import { compilePattern, RouteMatcher } from './route-matcher.js';
import type { TenantConfigSink } from './tenant-config-sink.js';

export interface ConfigStoreWarning {
  tenantId: string;
  message: string;
}

export interface GatewayConfigStoreOptions {
  /** Lower-case base domains: tenant `acme` answers on `acme.<base>` for each. */
  baseDomains: readonly string[];
  createUpstreamSet: (origin: OriginConfig, tenantId: string) => UpstreamSet;
  remoteJwks?: RemoteJwksRegistry;
  /** Problems in a snapshot that do not stop it from applying (bad route pattern, host clash). */
  onWarning?: (warning: ConfigStoreWarning) => void;
  /** Errors closing a replaced UpstreamSet. */
  onCloseError?: (error: unknown) => void;
}

/** What the request pipeline compiles onto every route (set by startGateway). */
export interface RoutePipeline {
  readonly policies: readonly RoutePolicy[];
  readonly metrics?: GatewayMetrics | undefined;
}

/**
 * The gateway's compiled configuration: implements the TenantConfigSink the config plane feeds, and
 * answers host → tenant for the request path. apply() compiles a new CompiledTenant (with every
 * route's pipeline stages and metric series) and swaps it in one assignment; stale and duplicate
 * versions change nothing.
 */
export class GatewayConfigStore implements TenantConfigSink {
  readonly #options: GatewayConfigStoreOptions;
  readonly #remoteJwks: RemoteJwksRegistry;
  readonly #tenants = new Map<string, CompiledTenant>();
  readonly #hosts = new Map<string, CompiledTenant>();
  /** Version of every tenant ever applied, including removed ones, so redelivered old snapshots stay dead. */
  readonly #versions = new Map<string, bigint>();
  readonly #appliedVersions = new Map<string, bigint>();
  #pipeline: RoutePipeline = { policies: [] };

  constructor(options: GatewayConfigStoreOptions) {
    this.#options = { ...options, baseDomains: options.baseDomains.map((d) => d.toLowerCase()) };
    this.#remoteJwks = options.remoteJwks ?? new RemoteJwksRegistry();
  }

  apply(snapshot: TenantSnapshot): boolean {
    const tenantId = snapshot.tenant_id;
    const version = BigInt(snapshot.version);
    const known = this.#versions.get(tenantId);
    if (known !== undefined && version <= known) return false;

    const previous = this.#tenants.get(tenantId);
    this.#swapIn(this.#compile(snapshot, version, previous), previous);
    this.#versions.set(tenantId, version);
    return true;
  }

  /**
   * The request pipeline's route policies (auth, rate limit, cache, …) and metrics, compiled onto every
   * route from now on. Set once by startGateway before it serves; tenants applied before (the config
   * plane may start first) are compiled again with it.
   */
  setPipeline(pipeline: RoutePipeline): void {
    this.#pipeline = pipeline;
    for (const previous of [...this.#tenants.values()]) {
      this.#swapIn(this.#compile(previous.snapshot, previous.version, previous), previous);
    }
  }

  #swapIn(compiled: CompiledTenant, previous: CompiledTenant | undefined): void {
    this.#tenants.set(compiled.id, compiled);
    this.#appliedVersions.set(compiled.id, compiled.version);
    if (previous) this.#unindexHosts(previous);
    this.#indexHosts(compiled);
    for (const policy of this.#pipeline.policies) policy.tenantApplied?.(compiled);
    if (previous) this.#retire(previous, compiled);
  }

  remove(tenantId: string): boolean {
    const previous = this.#tenants.get(tenantId);
    if (!previous) return false;
    this.#tenants.delete(tenantId);
    this.#appliedVersions.delete(tenantId);
    this.#unindexHosts(previous);
    this.#retire(previous, undefined);
    return true;
  }

  appliedVersions(): ReadonlyMap<string, bigint> {
    return this.#appliedVersions;
  }

  get(tenantId: string): CompiledTenant | undefined {
    return this.#tenants.get(tenantId);
  }

  get size(): number {
    return this.#tenants.size;
  }

  /** Host header (any case, optional port, optional trailing dot) → tenant. */
  resolveHost(hostHeader: string | undefined): CompiledTenant | undefined {
    if (hostHeader === undefined || hostHeader === '' || hostHeader.charCodeAt(0) === 91) return undefined; // "[" IPv6 literal
    let end = hostHeader.indexOf(':');
    if (end < 0) end = hostHeader.length;
    if (hostHeader.charCodeAt(end - 1) === 46) end--; // trailing "."
    const host = end === hostHeader.length ? hostHeader : hostHeader.slice(0, end);
    return this.#hosts.get(host) ?? this.#hosts.get(host.toLowerCase());
  }

  /** Closes every UpstreamSet (shutdown). */
  async close(): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const tenant of this.#tenants.values()) {
      for (const origin of tenant.origins.values()) closing.push(origin.upstreams.close());
    }
    this.#tenants.clear();
    this.#hosts.clear();
    this.#appliedVersions.clear();
    await Promise.allSettled(closing);
  }

  #compile(snapshot: TenantSnapshot, version: bigint, previous: CompiledTenant | undefined): CompiledTenant {
    const tenantId = snapshot.tenant_id;
    const origins = new Map<string, CompiledOrigin>();
    for (const origin of snapshot.origins) {
      const fingerprint = JSON.stringify(origin);
      const reusable = previous?.origins.get(origin.id);
      origins.set(origin.id, {
        config: origin,
        fingerprint,
        timeoutMs: origin.timeout_seconds * 1000,
        upstreams:
          reusable?.fingerprint === fingerprint
            ? reusable.upstreams
            : this.#options.createUpstreamSet(origin, tenantId),
      });
    }

    const routes: CompiledRoute[] = [];
    for (const route of snapshot.routes) {
      try {
        compilePattern(route.id, route.path_pattern);
      } catch (error) {
        this.#warn(tenantId, `route skipped: ${(error as Error).message}`);
        continue;
      }
      const origin = origins.get(route.origin_id);
      if (!origin) this.#warn(tenantId, `route ${route.id} names unknown origin ${route.origin_id}`);
      const { policies, metrics } = this.#pipeline;
      routes.push({
        config: route,
        tenantId,
        origin,
        authMode: route.auth_mode,
        requiredScopes: route.required_scopes,
        stripPrefix: compileStripPrefix(route.strip_prefix),
        stages:
          policies.length === 0
            ? NO_STAGES
            : compileRouteStages(policies, { tenant: snapshot.tenant, route }),
        metrics: metrics?.forRoute(tenantId, route.id),
      });
    }

    const apiKeys = new Map<string, CompiledApiKey>();
    for (const key of snapshot.api_keys) {
      apiKeys.set(key.key_hash, {
        id: key.id,
        name: key.name,
        scopes: key.scopes,
        expiresAtMs: key.expires_at === null ? null : Date.parse(key.expires_at),
      });
    }

    const { settings } = snapshot.tenant;
    const auth: CompiledTenantAuth = {
      oidc: settings.oidc
        ? {
            issuer: settings.oidc.issuer,
            audience: settings.oidc.audience,
            keys: this.#remoteJwks.get(settings.oidc.jwks_url),
          }
        : null,
      serviceKeys: compileServiceKeys(settings.service_jwks, (message) => this.#warn(tenantId, message)),
    };

    const subdomain = snapshot.tenant.subdomain.toLowerCase();
    const hostNames = new Set(this.#options.baseDomains.map((base) => `${subdomain}.${base}`));
    for (const domain of settings.custom_domains) hostNames.add(domain.toLowerCase().replace(/\.$/, ''));

    return {
      id: tenantId,
      version,
      snapshot,
      subdomain,
      clerkOrgId: snapshot.tenant.clerk_org_id,
      hostNames: [...hostNames],
      routes,
      router: new RouteMatcher(routes),
      apiKeys,
      origins,
      auth,
      eventTimeMs: Date.parse(snapshot.event_time),
    };
  }

  #indexHosts(tenant: CompiledTenant): void {
    for (const host of tenant.hostNames) {
      const owner = this.#hosts.get(host);
      if (owner && owner.id !== tenant.id) {
        this.#warn(tenant.id, `host ${host} already belongs to tenant ${owner.id}; not taken over`);
        continue;
      }
      this.#hosts.set(host, tenant);
    }
  }

  #unindexHosts(tenant: CompiledTenant): void {
    for (const host of tenant.hostNames) {
      if (this.#hosts.get(host)?.id === tenant.id) this.#hosts.delete(host);
    }
  }

  /** Closes the UpstreamSets the replacement no longer uses and lets the policies drop their state. */
  #retire(previous: CompiledTenant, replacement: CompiledTenant | undefined): void {
    for (const policy of this.#pipeline.policies) policy.tenantRetired?.(previous);
    for (const [id, origin] of previous.origins) {
      if (replacement?.origins.get(id)?.upstreams === origin.upstreams) continue;
      origin.upstreams.close().catch((error: unknown) => this.#options.onCloseError?.(error));
    }
  }

  #warn(tenantId: string, message: string): void {
    this.#options.onWarning?.({ tenantId, message });
  }
}

function compileStripPrefix(prefix: string | null): string | null {
  if (prefix === null || prefix === '' || prefix === '/') return null;
  const normalized = normalizePath(prefix.startsWith('/') ? prefix : `/${prefix}`, 'keep');
  if (!normalized.ok) return null;
  return normalized.path.endsWith('/') ? normalized.path.slice(0, -1) : normalized.path;
}

function compileServiceKeys(
  jwks: ReadonlyArray<Record<string, unknown>>,
  warn: (message: string) => void,
): CompiledTenantAuth['serviceKeys'] {
  try {
    return compileLocalJwks(jwks);
  } catch (error) {
    warn(`settings.service_jwks ignored: ${(error as Error).message}`);
    return null;
  }
}
