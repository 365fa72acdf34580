import type {
  AuthMode,
  OriginConfig,
  RouteConfig,
  TenantSnapshot,
} from '@vantageedge/shared/domain/gateway-config';
import type { RouteMatcher } from '@vantageedge/shared/routing/route-matcher';
import type { JWTVerifyGetKey } from 'jose';
import type { Identity } from '../auth/identity.js';
import type { TrustedKeySet } from '../auth/jwks.js';
import type { VerificationTags } from '../auth/verification-tags.js';
import type { RouteMetrics } from '../observability/gateway-metrics.js';
import type { RouteStages } from '../pipeline/stage.js';
import type { TenantUpstreamRequests } from '../upstream/tenant-upstream-requests.js';
import type { UpstreamSet } from '../upstream/types.js';

/**
 * A tenant's snapshot compiled for the request path: everything a request needs is a Map lookup or
 * a precompiled matcher. Immutable once built; a new snapshot builds a new CompiledTenant and the store
 * swaps it in, so requests in flight keep the one they started with.
 */
export interface CompiledOrigin {
  readonly config: OriginConfig;
  readonly upstreams: UpstreamSet;
  readonly timeoutMs: number;
  /** Serialized config: an unchanged origin keeps its UpstreamSet (pools, health, circuits) across snapshots. */
  readonly fingerprint: string;
}

export interface CompiledRoute {
  readonly config: RouteConfig;
  readonly tenantId: string;
  /** Undefined when the snapshot names an origin it does not contain: the route answers 503. */
  readonly origin: CompiledOrigin | undefined;
  readonly authMode: AuthMode;
  readonly requiredScopes: readonly string[];
  /** Normalised strip_prefix without a trailing slash, or null. */
  readonly stripPrefix: string | null;
  /** preserve_host: the origin's Host is the client's host (preservedHost), not its target's. */
  readonly preserveHost: boolean;
  /** The pipeline's features compiled for this route (auth, rate limit, cache, …), in order. */
  readonly stages: RouteStages;
  /** This route's metric series (undefined when the gateway keeps no metrics). */
  readonly metrics: RouteMetrics | undefined;
}

export interface CompiledApiKey {
  readonly id: string;
  readonly name: string;
  /** Who a request presenting the key is (its scopes included): made once, with the snapshot. */
  readonly identity: Identity;
  /** Epoch milliseconds, or null for keys that never expire. */
  readonly expiresAtMs: number | null;
}

export interface CompiledTenant {
  readonly id: string;
  readonly version: bigint;
  readonly snapshot: TenantSnapshot;
  readonly subdomain: string;
  /** Global position from which the tenant holds its subdomain (how a clash is settled: holderOf). */
  readonly subdomainPosition: bigint;
  readonly clerkOrgId: string | null;
  /** Clerk user ids of the tenant's users (its user list). */
  readonly userIds: ReadonlySet<string>;
  /** Verified custom domains that may serve (canonical, not under a base domain), with their claim position. */
  readonly customDomains: ReadonlyMap<string, bigint>;
  /** Every lower-case host name this tenant claims: `<subdomain>.<base>` for each base, then custom domains. */
  readonly hostNames: readonly string[];
  readonly routes: readonly CompiledRoute[];
  readonly router: RouteMatcher<CompiledRoute>;
  /** Active keys by HMAC-SHA-256 hash (lowercase hex). */
  readonly apiKeys: ReadonlyMap<string, CompiledApiKey>;
  readonly origins: ReadonlyMap<string, CompiledOrigin>;
  readonly auth: CompiledTenantAuth;
  /** The tenant's requests in flight to its origins: the same object in every version of the tenant. */
  readonly upstreamRequests: TenantUpstreamRequests;
  /**
   * The series of the tenant's requests no route took (route `none`): the same object in every version
   * of the tenant, stopped when the tenant leaves the config, so that a request answered before and
   * ended after that counts nowhere (undefined when the gateway keeps no metrics).
   */
  readonly unroutedMetrics: RouteMetrics | undefined;
  /** Epoch ms of the newest event folded into the snapshot (propagation delay is measured from it). */
  readonly eventTimeMs: number;
}

/** Key material for the tenant's token-based auth modes, resolved when the snapshot is applied. */
export interface CompiledTenantAuth {
  /** Generic OAuth2/OIDC access tokens (tenant.settings.oidc). */
  readonly oidc: {
    readonly issuer: string;
    readonly audience: string;
    readonly jwksUrl: string;
    readonly keys: TrustedKeySet;
  } | null;
  /**
   * The `azp` values its routes take on a Clerk session token (settings.authorized_parties); null: the
   * replica's CLERK_AUTHORIZED_PARTIES.
   */
  readonly authorizedParties: ReadonlySet<string> | null;
  /** Service accounts by the `kid` of each of their keys (a key belongs to exactly one service). */
  readonly serviceAccounts: ReadonlyMap<string, CompiledServiceAccount>;
  /** What the tokens verified under these settings are tagged with in the verified-token cache. */
  readonly verifiedBy: VerificationTags;
}

/** A calling service as its tokens are checked: signed by this key, for this `sub`, within these scopes. */
export interface CompiledServiceAccount {
  readonly id: string;
  readonly key: JWTVerifyGetKey;
  /** The registered key as the snapshot lists it, in a few bytes: a WebSocket its token opened is held to it. */
  readonly keyDigest: string;
  readonly scopes: ReadonlySet<string>;
}
