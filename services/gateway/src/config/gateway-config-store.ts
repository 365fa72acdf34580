import type {
  OriginConfig,
  QuotaPolicy,
  RouteConfig,
  SnapshotCertificate,
  TenantSnapshot,
} from '@vantageedge/shared/domain/gateway-config';
import { canonicalCustomDomain, isUnderBaseDomain } from '@vantageedge/shared/domain/hostname';
import { gatewayHeaderConditionNeverMet } from '@vantageedge/shared/domain/route-policies';
import {
  type EventLoopSlices,
  runInSlices,
  runToEnd,
  type SlicedResult,
  type SlicedWork,
} from '@vantageedge/shared/process/event-loop-slices';
import { lookupHost } from '@vantageedge/shared/routing/host-lookup';
import { headersNeverMet } from '@vantageedge/shared/routing/match-conditions';
import { compilePattern, RouteMatcher } from '@vantageedge/shared/routing/route-matcher';
import { compileStripPrefix } from '@vantageedge/shared/routing/strip-prefix';
import { apiKeyIdentity } from '../auth/identity.js';
import { compileServiceAccounts, RemoteJwksRegistry } from '../auth/jwks.js';
import { verificationTags } from '../auth/verification-tags.js';
import type { GatewayMetrics } from '../observability/gateway-metrics.js';
import { compilePolicyStages, type RoutePolicy, type RouteStage, routeStagesOf } from '../pipeline/stage.js';
import { TenantUpstreamRequests } from '../upstream/tenant-upstream-requests.js';
import type { UpstreamSet } from '../upstream/types.js';
import type {
  CompiledApiKey,
  CompiledOrigin,
  CompiledRoute,
  CompiledTenant,
  CompiledTenantAuth,
} from './compiled-tenant.js';
import { useRouteConnectTimeouts } from './origin-connect-timeouts.js';
import type { TenantConfigSink } from './tenant-config-sink.js';

export interface ConfigStoreWarning {
  tenantId: string;
  message: string;
}

/** A host a snapshot names that this replica does not route to its tenant. */
export interface HostRefusal {
  tenantId: string;
  host: string;
  /**
   * claimed_by_other_tenant: another tenant holds the host (an earlier claim, or one made after this
   * tenant's snapshot: see holderOf);
   * under_base_domain: a custom domain equal to or under a platform base domain (subdomain hosts);
   * invalid: not a canonical host name.
   */
  reason: 'claimed_by_other_tenant' | 'under_base_domain' | 'invalid';
  /** The tenant the host resolves to instead, when there is one. */
  ownerTenantId?: string | undefined;
}

export interface GatewayConfigStoreOptions {
  /** Lower-case base domains: tenant `acme` answers on `acme.<base>` for each. */
  baseDomains: readonly string[];
  /**
   * `clientCertificate`: the certificate of the tenant's own snapshot the origin names as its
   * tls.client_certificate_id (undefined when it names none, or one the snapshot does not hold).
   */
  createUpstreamSet: (
    origin: OriginConfig,
    tenantId: string,
    clientCertificate: SnapshotCertificate | undefined,
  ) => UpstreamSet;
  /** Requests one tenant may have in flight to its origins (GATEWAY_MAX_UPSTREAM_REQUESTS_PER_TENANT); default 0 = no limit. */
  maxUpstreamRequestsPerTenant?: number;
  remoteJwks?: RemoteJwksRegistry;
  /** Problems in a snapshot that do not stop it from applying (bad route pattern, host clash). */
  onWarning?: (warning: ConfigStoreWarning) => void;
  /** A host not routed to the tenant whose snapshot names it (also reported through onWarning). */
  onHostRefused?: (refusal: HostRefusal) => void;
  /** Errors closing a replaced UpstreamSet. */
  onCloseError?: (error: unknown) => void;
}

/**
 * Told after a snapshot was applied or a tenant removed, with the tenants whose configuration that
 * changed: the one applied or removed, and any that lost a host to another tenant's claim.
 */
export type TenantsChangedListener = (tenantIds: ReadonlySet<string>) => void;

/** What the request pipeline compiles onto every route (set by startGateway). */
export interface RoutePipeline {
  readonly policies: readonly RoutePolicy[];
  readonly metrics?: GatewayMetrics | undefined;
}

/**
 * What a tenant version's routes were compiled from besides each route itself and the origins it names:
 * a route of the next version whose config is the same object (the snapshot decoder hands unchanged
 * routes over as they were) keeps its compiled route while all of these are unchanged, and each
 * policy's stage while the pipeline and that policy's inputs are (a tenant-wide setting one policy
 * reads compiles that policy's stages again, not every stage of every route).
 */
interface RouteInputs {
  readonly pipeline: RoutePipeline;
  /** What each of the pipeline's policies compiled from (RoutePolicy.compiledFrom), in their order. */
  readonly policyInputs: readonly string[];
  /** By config; a route whose compilation warned is not kept (compiled again, it warns again). */
  readonly routes: ReadonlyMap<RouteConfig, KeptRoute>;
}

interface KeptRoute {
  readonly compiled: CompiledRoute;
  /** Each policy's stage (null: none), in the pipeline's order. */
  readonly stages: readonly (RouteStage | null)[];
}

/**
 * What a tenant without API keys, users, custom domains or service accounts holds of them: one shared
 * empty collection (every replica holds every tenant, and an empty Map or Set is ≈ 200 B of heap).
 */
const NONE: ReadonlyMap<never, never> = new Map<never, never>();
const NO_USERS: ReadonlySet<string> = new Set();

/** The origins a route's compilation reads: its own and those of its traffic split. */
function originIdsOf(route: RouteConfig): string[] {
  const split = route.traffic_split;
  const ids = split ? [...split.origins, ...split.overrides].map((entry) => entry.origin_id) : [];
  return route.origin_id === null ? ids : [route.origin_id, ...ids];
}

/**
 * Whether `previous`'s route matcher serves the next version as it is: the matcher reads only the
 * compiled routes and the tenant's IP rules, and a version that keeps every route (a new API key, a
 * rename) would otherwise compile every pattern again on every replica.
 */
function keepsRouter(
  previous: CompiledTenant,
  routes: readonly CompiledRoute[],
  ipRules: TenantSnapshot['tenant']['settings']['ip_rules'],
): boolean {
  return (
    previous.routes.length === routes.length &&
    routes.every((route, index) => route === previous.routes[index]) &&
    JSON.stringify(previous.snapshot.tenant.settings.ip_rules) === JSON.stringify(ipRules)
  );
}

/** One tenant's claim on a host, from the position of the event that gave it the host. */
interface HostClaim {
  readonly tenant: CompiledTenant;
  readonly position: bigint;
}

/**
 * The claim that holds a host: the earliest (ties: the smaller tenant id) of those not superseded,
 * whatever order snapshots were applied in. A claim is superseded when its tenant's snapshot is older
 * than another tenant's claim: the control plane gives a host to one tenant at a time (its
 * reservation), so that tenant let go of the host before the other got it, and only its release (a
 * later snapshot, or its tombstone: another key of the topic) has not reached this replica yet. The
 * latest claim is never superseded, so a host with claims always has a holder. Two snapshots that
 * each are newer than the other's claim (both claim the host at once) keep the earlier claim.
 */
function holderOf(claims: readonly HostClaim[]): HostClaim | undefined {
  // The two latest claims, so each claim is compared with the latest claim of another tenant.
  let latest: HostClaim | undefined;
  let runnerUp: HostClaim | undefined;
  for (const claim of claims) {
    if (latest === undefined || claim.position > latest.position) {
      runnerUp = latest;
      latest = claim;
    } else if (runnerUp === undefined || claim.position > runnerUp.position) {
      runnerUp = claim;
    }
  }
  let winner: HostClaim | undefined;
  for (const claim of claims) {
    const latestOther = claim === latest ? runnerUp : latest;
    if (latestOther !== undefined && latestOther.position > claim.tenant.version) continue;
    if (
      winner === undefined ||
      claim.position < winner.position ||
      (claim.position === winner.position && claim.tenant.id < winner.tenant.id)
    ) {
      winner = claim;
    }
  }
  return winner;
}

/**
 * Who holds each host of one kind (subdomain labels, or custom domains). Every claimant is kept, so
 * when the holder leaves (a domain moved to another tenant, a tenant deleted) the next claim takes
 * over without waiting for its tenant's next snapshot.
 */
class HostIndex {
  readonly #claims = new Map<string, HostClaim[]>();
  readonly #owners = new Map<string, CompiledTenant>();

  owner(host: string): CompiledTenant | undefined {
    return this.#owners.get(host);
  }

  claimsOf(host: string): readonly HostClaim[] {
    return this.#claims.get(host) ?? [];
  }

  /**
   * Replaces `tenantId`'s claims; returns the hosts whose claimants changed. Tenants that held one of
   * them and no longer do are added to `displaced`.
   */
  replace(
    tenantId: string,
    before: Iterable<string>,
    after: ReadonlyMap<string, HostClaim>,
    displaced: Set<string>,
  ): Set<string> {
    const touched = new Set<string>();
    for (const host of before) {
      const remaining = (this.#claims.get(host) ?? []).filter((claim) => claim.tenant.id !== tenantId);
      if (remaining.length === 0) this.#claims.delete(host);
      else this.#claims.set(host, remaining);
      touched.add(host);
    }
    for (const [host, claim] of after) {
      const others = (this.#claims.get(host) ?? []).filter((c) => c.tenant.id !== tenantId);
      this.#claims.set(host, [...others, claim]);
      touched.add(host);
    }
    for (const host of touched) {
      const holder = this.#owners.get(host)?.id;
      const winner = holderOf(this.#claims.get(host) ?? []);
      if (winner) this.#owners.set(host, winner.tenant);
      else this.#owners.delete(host);
      if (holder !== undefined && holder !== winner?.tenant.id) displaced.add(holder);
    }
    return touched;
  }

  clear(): void {
    this.#claims.clear();
    this.#owners.clear();
  }
}

/**
 * The gateway's compiled configuration: implements the TenantConfigSink the config plane feeds, and
 * answers host → tenant for the request path. apply() compiles a new CompiledTenant (with every
 * route's pipeline stages and metric series) and swaps it in one assignment; stale and duplicate
 * versions change nothing.
 *
 * Hosts: `<label>.<base domain>` is only ever a subdomain host (never a custom domain); any other host
 * is a custom domain. A custom domain equal to or under a base domain is ignored; two tenants claiming
 * one host are decided by their claims' event positions and their snapshots' versions (holderOf), never
 * by the order snapshots arrive.
 */
export class GatewayConfigStore implements TenantConfigSink {
  readonly #options: GatewayConfigStoreOptions;
  readonly #remoteJwks: RemoteJwksRegistry;
  readonly #tenants = new Map<string, CompiledTenant>();
  readonly #subdomains = new HostIndex();
  readonly #customDomains = new HostIndex();
  /** Version of every tenant ever applied, including removed ones, so redelivered old snapshots stay dead. */
  readonly #versions = new Map<string, bigint>();
  readonly #appliedVersions = new Map<string, bigint>();
  readonly #routeInputs = new WeakMap<CompiledTenant, RouteInputs>();
  /** Each version's route ids, made at their first question (holdsRoute), not per request. */
  readonly #routeIds = new WeakMap<CompiledTenant, ReadonlySet<string>>();
  /** Each tenant's version being applied in slices (applyInSlices); replaced or deleted to stop it. */
  readonly #applying = new Map<string, { readonly version: bigint }>();
  readonly #listeners = new Set<TenantsChangedListener>();
  #pipeline: RoutePipeline = { policies: [] };

  constructor(options: GatewayConfigStoreOptions) {
    this.#options = { ...options, baseDomains: options.baseDomains.map((d) => d.toLowerCase()) };
    this.#remoteJwks = options.remoteJwks ?? new RemoteJwksRegistry();
  }

  apply(snapshot: TenantSnapshot): boolean {
    const version = BigInt(snapshot.version);
    if (this.#isStale(snapshot.tenant_id, version)) return false;
    const previous = this.#tenants.get(snapshot.tenant_id);
    this.#commit(this.#compile(snapshot, version, previous), previous);
    return true;
  }

  /**
   * `apply`, compiled in slices of the event loop: other tenants' requests are served between two
   * routes of a large tenant. The tenant serves its previous version until the new one is complete,
   * then swaps it in at once, as `apply` does. The apply is given up (false, nothing changed) when a
   * newer version of the tenant is applied meanwhile, the tenant is removed, or the store closed; and
   * compiled again when the tenant's version it compiles against or the pipeline changed meanwhile.
   */
  async applyInSlices(snapshot: TenantSnapshot, slices: EventLoopSlices): Promise<boolean> {
    const tenantId = snapshot.tenant_id;
    const version = BigInt(snapshot.version);
    if (this.#isStale(tenantId, version)) return false;
    const underway = this.#applying.get(tenantId);
    if (underway !== undefined && underway.version >= version) return false;
    const attempt = { version };
    this.#applying.set(tenantId, attempt);
    const wanted = () => this.#applying.get(tenantId) === attempt && !this.#isStale(tenantId, version);
    try {
      while (wanted()) {
        const previous = this.#tenants.get(tenantId);
        const pipeline = this.#pipeline;
        const compiledFor = () => this.#tenants.get(tenantId) === previous && this.#pipeline === pipeline;
        const opened: UpstreamSet[] = [];
        let compiled: SlicedResult<CompiledTenant>;
        try {
          compiled = await runInSlices(
            this.#compiling(snapshot, version, previous, opened),
            slices,
            () => wanted() && compiledFor(),
          );
        } catch (error) {
          this.#closeUpstreams(opened);
          throw error;
        }
        if (compiled.done) {
          this.#commit(compiled.value, previous);
          return true;
        }
        this.#closeUpstreams(opened);
      }
      return false;
    } finally {
      if (this.#applying.get(tenantId) === attempt) this.#applying.delete(tenantId);
    }
  }

  #isStale(tenantId: string, version: bigint): boolean {
    const known = this.#versions.get(tenantId);
    return known !== undefined && version <= known;
  }

  #commit(compiled: CompiledTenant, previous: CompiledTenant | undefined): void {
    const displaced = this.#swapIn(compiled, previous);
    this.#versions.set(compiled.id, compiled.version);
    this.#tell(displaced.add(compiled.id));
  }

  /** Calls `listener` after every change of a tenant's configuration; returns how to stop. */
  watchTenants(listener: TenantsChangedListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #tell(tenantIds: ReadonlySet<string>): void {
    for (const listener of this.#listeners) listener(tenantIds);
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

  /** Returns the tenants that lost a host to it. */
  #swapIn(compiled: CompiledTenant, previous: CompiledTenant | undefined): Set<string> {
    this.#tenants.set(compiled.id, compiled);
    this.#appliedVersions.set(compiled.id, compiled.version);
    const displaced = this.#indexHosts(compiled.id, previous, compiled);
    for (const policy of this.#pipeline.policies) policy.tenantApplied?.(compiled);
    useRouteConnectTimeouts(compiled);
    if (previous) this.#retire(previous, compiled);
    return displaced;
  }

  remove(tenantId: string): boolean {
    this.#applying.delete(tenantId);
    const previous = this.#tenants.get(tenantId);
    if (!previous) return false;
    this.#tenants.delete(tenantId);
    this.#appliedVersions.delete(tenantId);
    const displaced = this.#indexHosts(tenantId, previous, undefined);
    this.#retire(previous, undefined);
    this.#tell(displaced.add(tenantId));
    return true;
  }

  appliedVersions(): ReadonlyMap<string, bigint> {
    return this.#appliedVersions;
  }

  get(tenantId: string): CompiledTenant | undefined {
    return this.#tenants.get(tenantId);
  }

  /** Whether the tenant is in the config, or a version of it is being applied (its origins may be probed). */
  holds(tenantId: string): boolean {
    return this.#tenants.has(tenantId) || this.#applying.has(tenantId);
  }

  /**
   * Whether the tenant's version in the config has a route of this id. A version being applied is not
   * asked: its routes take no request before it is swapped in.
   */
  holdsRoute(tenantId: string, routeId: string): boolean {
    const tenant = this.#tenants.get(tenantId);
    if (tenant === undefined) return false;
    let routeIds = this.#routeIds.get(tenant);
    if (routeIds === undefined) {
      routeIds = new Set(tenant.routes.map((route) => route.config.id));
      this.#routeIds.set(tenant, routeIds);
    }
    return routeIds.has(routeId);
  }

  get size(): number {
    return this.#tenants.size;
  }

  /**
   * Host header (any case, optional port, optional trailing dot) → tenant. A host under a base domain
   * is looked up only as `<subdomain>.<base>`: no custom domain can shadow a subdomain host.
   */
  resolveHost(hostHeader: string | undefined): CompiledTenant | undefined {
    const lookup = lookupHost(hostHeader, this.#options.baseDomains);
    if (lookup.kind === 'subdomain') return this.#subdomains.owner(lookup.label);
    return lookup.kind === 'custom_domain' ? this.#customDomains.owner(lookup.host) : undefined;
  }

  /** Closes every UpstreamSet (shutdown). */
  async close(): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const tenant of this.#tenants.values()) {
      for (const origin of tenant.origins.values()) closing.push(origin.upstreams.close());
    }
    this.#applying.clear();
    this.#tenants.clear();
    this.#subdomains.clear();
    this.#customDomains.clear();
    this.#appliedVersions.clear();
    await Promise.allSettled(closing);
  }

  /**
   * A snapshot that cannot be compiled throws, and the upstream sets made for it (pools, active health
   * checks) are closed: the tenant keeps its previous version, and each refused version costs nothing.
   */
  #compile(snapshot: TenantSnapshot, version: bigint, previous: CompiledTenant | undefined): CompiledTenant {
    const opened: UpstreamSet[] = [];
    try {
      return runToEnd(this.#compiling(snapshot, version, previous, opened));
    } catch (error) {
      this.#closeUpstreams(opened);
      throw error;
    }
  }

  #closeUpstreams(opened: readonly UpstreamSet[]): void {
    for (const upstreams of opened) {
      upstreams.close().catch((closeError: unknown) => this.#options.onCloseError?.(closeError));
    }
  }

  /** Compiles a tenant version, a step after each origin and route; `opened`: the upstream sets it made. */
  *#compiling(
    snapshot: TenantSnapshot,
    version: bigint,
    previous: CompiledTenant | undefined,
    opened: UpstreamSet[],
  ): SlicedWork<CompiledTenant> {
    const tenantId = snapshot.tenant_id;
    const origins = new Map<string, CompiledOrigin>();
    for (const origin of snapshot.origins) {
      // Only this tenant's own certificates: another tenant's is never in its snapshot.
      const clientCertificate = snapshot.certificates.find(
        (certificate) => certificate.id === origin.tls.client_certificate_id,
      );
      const fingerprint = `${JSON.stringify(origin)} ${clientCertificate?.fingerprint_sha256 ?? ''}`;
      const reusable = previous?.origins.get(origin.id);
      // Kept whole, so that the routes using it can be kept too (see #compilingRoutes).
      if (reusable?.fingerprint === fingerprint) {
        origins.set(origin.id, reusable);
        continue;
      }
      const upstreams = this.#options.createUpstreamSet(origin, tenantId, clientCertificate);
      opened.push(upstreams);
      origins.set(origin.id, {
        config: origin,
        fingerprint,
        timeoutMs: origin.timeout_seconds * 1000,
        upstreams,
      });
      yield;
    }

    const apiKeyQuotas = new Map<string, QuotaPolicy>();
    for (const key of snapshot.api_keys) if (key.quota) apiKeyQuotas.set(key.id, key.quota);
    const { routes, inputs } = yield* this.#compilingRoutes(snapshot, origins, apiKeyQuotas, previous);

    const apiKeys = new Map<string, CompiledApiKey>();
    for (const key of snapshot.api_keys) {
      apiKeys.set(key.key_hash, {
        id: key.id,
        name: key.name,
        identity: apiKeyIdentity(key.id, key.scopes),
        expiresAtMs: key.expires_at === null ? null : Date.parse(key.expires_at),
      });
    }

    const { settings } = snapshot.tenant;
    const subdomain = snapshot.tenant.subdomain.toLowerCase();
    const customDomains = this.#servableCustomDomains(snapshot);
    const hostNames = new Set(this.#options.baseDomains.map((base) => `${subdomain}.${base}`));
    for (const domain of customDomains.keys()) hostNames.add(domain);
    const router =
      previous !== undefined && keepsRouter(previous, routes, settings.ip_rules)
        ? previous.router
        : yield* RouteMatcher.compiling(routes, settings.ip_rules);

    const compiledAccounts = compileServiceAccounts(settings.service_accounts, (message) =>
      this.#warn(tenantId, message),
    );
    const serviceAccounts = compiledAccounts.size > 0 ? compiledAccounts : NONE;
    const verifiedBy = verificationTags(tenantId, snapshot.tenant.clerk_org_id, settings, [...hostNames]);
    // Last: a key set acquired here is released when this version retires, so nothing may fail after.
    const auth: CompiledTenantAuth = {
      oidc: settings.oidc
        ? {
            issuer: settings.oidc.issuer,
            audience: settings.oidc.audience,
            jwksUrl: settings.oidc.jwks_url,
            keys: this.#remoteJwks.acquire(settings.oidc.jwks_url),
          }
        : null,
      authorizedParties: settings.authorized_parties === null ? null : new Set(settings.authorized_parties),
      serviceAccounts,
      verifiedBy,
    };

    const compiled: CompiledTenant = {
      id: tenantId,
      version,
      snapshot,
      subdomain,
      subdomainPosition: BigInt(snapshot.tenant.subdomain_position ?? snapshot.version),
      clerkOrgId: snapshot.tenant.clerk_org_id,
      userIds:
        snapshot.users.length > 0 ? new Set(snapshot.users.map((user) => user.clerk_user_id)) : NO_USERS,
      customDomains: customDomains.size > 0 ? customDomains : NONE,
      hostNames: [...hostNames],
      routes,
      router,
      apiKeys: apiKeys.size > 0 ? apiKeys : NONE,
      origins,
      auth,
      // Kept from version to version: requests a replaced version started still count.
      upstreamRequests:
        previous?.upstreamRequests ??
        new TenantUpstreamRequests(this.#options.maxUpstreamRequestsPerTenant ?? 0),
      unroutedMetrics: previous?.unroutedMetrics ?? this.#pipeline.metrics?.forUnrouted(tenantId),
      eventTimeMs: Date.parse(snapshot.event_time),
    };
    this.#routeInputs.set(compiled, inputs);
    return compiled;
  }

  /**
   * The snapshot's routes, compiled. A route unchanged since `previous` (the same config object) keeps
   * its compiled route when the pipeline, the policies' inputs and the origins it names are unchanged
   * too: a version that changed one route of 1,000 compiles one route. When only some policies' inputs
   * changed (a tenant-wide rate limit, say), such a route compiles only those policies' stages; when
   * an origin it names changed, only the stages of the policies that read origins (RoutePolicy.readsOrigins).
   */
  *#compilingRoutes(
    snapshot: TenantSnapshot,
    origins: ReadonlyMap<string, CompiledOrigin>,
    apiKeyQuotas: ReadonlyMap<string, QuotaPolicy>,
    previous: CompiledTenant | undefined,
  ): SlicedWork<{ routes: CompiledRoute[]; inputs: RouteInputs }> {
    const tenantId = snapshot.tenant_id;
    const { policies, metrics } = this.#pipeline;
    metrics?.routesCompiling(tenantId, new Set(snapshot.routes.map((route) => route.id)));
    const byConfig = new Map<RouteConfig, KeptRoute>();
    // What a policy without compiledFrom compiled from: all it could read of the tenant.
    let wholeTenant: string | undefined;
    const whole = (): string => {
      wholeTenant ??= JSON.stringify([snapshot.tenant, [...apiKeyQuotas]]);
      return wholeTenant;
    };
    const inputs: RouteInputs = {
      pipeline: this.#pipeline,
      policyInputs: policies.map((policy) => policy.compiledFrom?.(snapshot.tenant, apiKeyQuotas) ?? whole()),
      routes: byConfig,
    };
    const earlier = previous && this.#routeInputs.get(previous);
    const reusable = earlier?.pipeline === inputs.pipeline ? earlier.routes : undefined;
    const stageKept = inputs.policyInputs.map((input, index) => earlier?.policyInputs[index] === input);
    const routeKept = stageKept.every(Boolean);
    const routes: CompiledRoute[] = [];
    for (const route of snapshot.routes) {
      const kept = byConfig.has(route) ? undefined : reusable?.get(route);
      const originsKept =
        kept !== undefined && originIdsOf(route).every((id) => origins.get(id) === previous?.origins.get(id));
      if (kept !== undefined && originsKept && routeKept) {
        routes.push(kept.compiled);
        byConfig.set(route, kept);
        continue;
      }
      let warned = false;
      const warn = (message: string): void => {
        warned = true;
        this.#warn(tenantId, message);
      };
      try {
        compilePattern(route.id, route.path_pattern);
      } catch (error) {
        warn(`route skipped: ${(error as Error).message}`);
        continue;
      }
      for (const name of headersNeverMet(route.match))
        warn(`route ${route.id}: ${gatewayHeaderConditionNeverMet(name)}`);
      const origin = route.origin_id === null ? undefined : origins.get(route.origin_id);
      if (route.origin_id !== null && !origin) {
        warn(`route ${route.id} names unknown origin ${route.origin_id}`);
      }
      // A kept stage counts on the metrics of the route it was compiled for (the same route id).
      const routeMetrics = kept !== undefined ? kept.compiled.metrics : metrics?.forRoute(tenantId, route.id);
      const stages = compilePolicyStages(
        policies,
        {
          tenant: snapshot.tenant,
          route,
          origins,
          apiKeyQuotas,
          warn: (message) => warn(`route ${route.id}: ${message}`),
          routeMetrics,
        },
        kept &&
          ((index) =>
            stageKept[index] && (originsKept || policies[index]!.readsOrigins === false)
              ? kept.stages[index]
              : undefined),
      );
      const compiled: CompiledRoute = {
        config: route,
        tenantId,
        origin,
        authMode: route.auth_mode,
        requiredScopes: route.required_scopes,
        stripPrefix: compileStripPrefix(route.strip_prefix),
        preserveHost: route.preserve_host,
        stages: routeStagesOf(stages),
        metrics: routeMetrics,
      };
      routes.push(compiled);
      if (!warned && !byConfig.has(route)) byConfig.set(route, { compiled, stages });
      yield;
    }
    return { routes, inputs };
  }

  /** The snapshot's verified domains this replica may route: canonical and not under a base domain. */
  #servableCustomDomains(snapshot: TenantSnapshot): Map<string, bigint> {
    const servable = new Map<string, bigint>();
    for (const { domain, verified_position } of snapshot.custom_domains) {
      const canonical = canonicalCustomDomain(domain);
      if (!canonical.ok || canonical.hostname !== domain) {
        this.#refuse({ tenantId: snapshot.tenant_id, host: domain, reason: 'invalid' });
        continue;
      }
      if (isUnderBaseDomain(domain, this.#options.baseDomains)) {
        this.#refuse({ tenantId: snapshot.tenant_id, host: domain, reason: 'under_base_domain' });
        continue;
      }
      servable.set(domain, BigInt(verified_position));
    }
    return servable;
  }

  /**
   * Moves the tenant's claims from `previous` to `next` and reports every claim that lost its host;
   * returns the tenants that held one of the hosts and no longer do.
   */
  #indexHosts(
    tenantId: string,
    previous: CompiledTenant | undefined,
    next: CompiledTenant | undefined,
  ): Set<string> {
    const displaced = new Set<string>();
    const subdomainClaims = new Map<string, HostClaim>();
    if (next) subdomainClaims.set(next.subdomain, { tenant: next, position: next.subdomainPosition });
    const domainClaims = new Map<string, HostClaim>();
    for (const [domain, position] of next?.customDomains ?? []) {
      domainClaims.set(domain, { tenant: next!, position });
    }
    const touchedSubdomains = this.#subdomains.replace(
      tenantId,
      previous ? [previous.subdomain] : [],
      subdomainClaims,
      displaced,
    );
    const touchedDomains = this.#customDomains.replace(
      tenantId,
      previous?.customDomains.keys() ?? [],
      domainClaims,
      displaced,
    );
    const base = this.#options.baseDomains[0] ?? '';
    for (const label of touchedSubdomains) this.#reportLosers(this.#subdomains, label, `${label}.${base}`);
    for (const domain of touchedDomains) this.#reportLosers(this.#customDomains, domain, domain);
    return displaced;
  }

  #reportLosers(index: HostIndex, key: string, host: string): void {
    const owner = index.owner(key);
    if (!owner) return;
    for (const claim of index.claimsOf(key)) {
      if (claim.tenant.id === owner.id) continue;
      this.#refuse({
        tenantId: claim.tenant.id,
        host,
        reason: 'claimed_by_other_tenant',
        ownerTenantId: owner.id,
      });
    }
  }

  #refuse(refusal: HostRefusal): void {
    const why =
      refusal.reason === 'claimed_by_other_tenant'
        ? `held by tenant ${refusal.ownerTenantId} (an earlier claim, or one newer than this snapshot)`
        : refusal.reason === 'under_base_domain'
          ? 'a custom domain may not be (under) a platform base domain'
          : 'not a canonical host name';
    this.#warn(refusal.tenantId, `host ${refusal.host} not routed to this tenant: ${why}`);
    this.#options.onHostRefused?.(refusal);
  }

  /**
   * Closes the UpstreamSets the replacement no longer uses (handing each over to the replacement's set
   * for the same origin, if it has one), lets the policies drop their state and
   * removes the metric series of routes the replacement no longer has (all of them: tenant removed).
   */
  #retire(previous: CompiledTenant, replacement: CompiledTenant | undefined): void {
    if (previous.auth.oidc !== null) this.#remoteJwks.release(previous.auth.oidc.jwksUrl);
    for (const policy of this.#pipeline.policies) policy.tenantRetired?.(previous, replacement);
    this.#pipeline.metrics?.tenantRetired(
      previous.id,
      previous.routes.map((route) => route.metrics),
      replacement && new Set(replacement.routes.map((route) => route.config.id)),
    );
    for (const [id, origin] of previous.origins) {
      const successor = replacement?.origins.get(id)?.upstreams;
      if (successor === origin.upstreams) continue;
      // Requests that began under `previous` and have not picked a target yet pick one of the
      // successor's: the origin as it is now, rather than a 503 for the pools being closed.
      origin.upstreams.close(successor).catch((error: unknown) => this.#options.onCloseError?.(error));
    }
  }

  #warn(tenantId: string, message: string): void {
    this.#options.onWarning?.({ tenantId, message });
  }
}
