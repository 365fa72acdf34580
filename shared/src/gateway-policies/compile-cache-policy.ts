import { hash } from 'node:crypto';
import {
  type CachePolicy,
  isCompleteResponseStatus,
  type RouteConfig,
  type TenantSettings,
} from '../domain/gateway-config.js';
import type { IpRules } from '../domain/route-policies.js';
import { cookieNameAsPhpReadsIt } from '../http/cgi-spellings.js';
import { NamedParameters, namedParameterKeys } from '../http/query-parameter-spellings.js';
import { type CompiledCors, compileRouteCors } from './cors-rules.js';

/**
 * What of the tenant (its part of the snapshot) its routes' cache policies read: its share of the
 * cache, and the tenant-wide settings that decide who its routes admit.
 */
export interface CacheTenant {
  readonly clerk_org_id: string | null;
  readonly settings: Pick<TenantSettings, 'cache' | 'ip_rules' | 'oidc'>;
}

/** A route's cache policy, compiled when the snapshot is applied. */
export interface CompiledCachePolicy {
  readonly tenantId: string;
  /** The tenant's own bound on its bytes in the shared cache store (undefined: the gateway default). */
  readonly tenantMaxBytes: number | undefined;
  readonly routeId: string;
  /** The route's label in the cache metrics (the gateway's metrics may fold it into `other`). */
  readonly metricsRoute: string;
  /** standard: RFC 9111 freshness from the origin's headers; override: ttlMs forced (capped by max-age). */
  readonly mode: CachePolicy['mode'];
  readonly heuristicFreshness: boolean;
  readonly honorRequestCacheControl: boolean;
  /** standard mode: how long past its freshness an entry with a validator is kept for revalidation. */
  readonly keepStaleMs: number;
  /** Lower-case response headers whose values tag a stored response (purge by tag). */
  readonly tagHeaders: readonly string[];
  readonly keyPattern: CachePolicy['cache_key_pattern'];
  /** Lower-cased request headers that are part of the key (path+query+headers; Origin on CORS routes). */
  readonly varyHeaders: readonly string[];
  /** The route's CORS policy (null without one): its key holds the Origin as the policy reads it (originAsKeyed). */
  readonly cors: CompiledCors | null;
  readonly bypassHeaders: readonly string[];
  readonly bypassCookies: readonly string[];
  /**
   * The policy's bypass query parameters, found by every spelling origins read as their names
   * (parameterKey: `Preview`, `preview[]`, PHP's `pre.view` for `pre_view`); null when it names none.
   */
  readonly bypassQueryParams: NamedParameters<string> | null;
  readonly cacheableStatuses: ReadonlySet<number>;
  readonly ttlMs: number;
  readonly maxBodyBytes: number;
  /** Authenticated route whose responses are not declared shareable: the key includes the caller. */
  readonly perCaller: boolean;
  /**
   * Who the route admits (routeAudience), part of every key: an answer stored for fewer callers is never
   * served once the route admits more (or others).
   */
  readonly audience: string;
  /**
   * What the key holds after the chosen origin, in order (pattern, vary header names, per caller), part of
   * every key: its parts are told apart by their place, so a route whose shape changed (a caller where a
   * query was, one vary header for another) never meets its former entries.
   */
  readonly keyShape: string;
  /**
   * Public route: the key is shared by every caller, so a response to a request that carried
   * Authorization or a Cookie is stored only when the origin allows it (public, s-maxage,
   * must-revalidate; for a Cookie also a Vary naming it). Authenticated routes key per caller, or were
   * declared shareable by the operator (`shared`).
   */
  readonly credentialsNeedOriginConsent: boolean;
  /**
   * The route's `response_headers`, as a digest ('' without any): they are applied before an answer is
   * stored (but for the writes of a request's own values), so a route whose transform changed never
   * meets the entries stored with the former one. Part of every key of such a route.
   */
  readonly responseHeaders: string;
  readonly cacheSetCookie: boolean;
  readonly staleWhileRevalidateMs: number;
  readonly staleIfErrorMs: number;
}

const lower = (values: readonly string[]) => values.map((value) => value.toLowerCase());

/** The header or cookie names a client picks the traffic split's origin with: overrides' and sticky key's. */
function originChoosingNames(route: RouteConfig, kind: 'header' | 'cookie'): string[] {
  const split = route.traffic_split ?? null;
  if (split === null) return [];
  const names: string[] = [];
  for (const chooser of [...split.overrides, ...(split.sticky ? [split.sticky] : [])]) {
    const name = chooser[kind];
    if (name !== undefined) names.push(name);
  }
  return names;
}

/**
 * Who the route admits: its authentication (the mode, the scopes required, whose users a session token
 * may be, and for user tokens the tenant's Clerk organization and OIDC provider) and the allow list of
 * the IP rules it applies (its own, else the tenant-wide ones). A route's answers are filled by the
 * callers it admitted then; made public or open to more addresses (its origin checking callers itself
 * from then on), with a scope no longer required, or admitting another organization's or identity
 * provider's users, its stored answers would reach callers the origin never answered, until they expired.
 */
function routeAudience(route: RouteConfig, tenant: CacheTenant | undefined): string {
  const addresses = ipRulesDigest(route.ip_rules ?? tenant?.settings.ip_rules ?? null);
  if (route.auth_mode === 'public')
    return addresses === null ? 'public' : JSON.stringify(['public', addresses]);
  const oidc = tenant?.settings.oidc ?? null;
  return JSON.stringify([
    route.auth_mode,
    [...new Set(route.required_scopes)].sort(),
    route.require_tenant_org,
    route.allow_any_authenticated_user,
    addresses,
    ...(acceptsUserTokens(route)
      ? [tenant?.clerk_org_id ?? null, oidc === null ? null : [oidc.issuer, oidc.audience]]
      : []),
  ]);
}

function acceptsUserTokens(route: RouteConfig): boolean {
  return route.auth_mode === 'jwt_required' || route.auth_mode === 'jwt_or_apikey';
}

/** By rule set: a tenant's routes share one object, and up to 400 ranges are serialised once. */
const ipRulesDigests = new WeakMap<IpRules, string | null>();

/**
 * A digest of the IP rules that choose whom a route answers (an allow list, with the ranges denied
 * within it), or null when they let in every address but some: a deny list alone blocks abusers from a
 * route whose answers are for everyone, and may change often without cooling the cache.
 */
function ipRulesDigest(rules: IpRules | null): string | null {
  if (rules === null) return null;
  let digest = ipRulesDigests.get(rules);
  if (digest === undefined) {
    digest =
      rules.allow.length === 0
        ? null
        : hash('sha256', JSON.stringify([rules.allow, rules.deny]), 'base64url').slice(0, 22);
    ipRulesDigests.set(rules, digest);
  }
  return digest;
}

/** `headers:<digest>` of the route's response header transform, '' when it has none. */
function responseHeadersDigest(route: RouteConfig): string {
  const transform = route.response_headers ?? null;
  if (transform === null) return '';
  return `headers:${hash('sha256', JSON.stringify(transform), 'base64url').slice(0, 22)}`;
}

/** null when the route has no cache policy or it is disabled. */
export function compileCachePolicy(
  tenantId: string,
  route: RouteConfig,
  tenant?: CacheTenant,
): CompiledCachePolicy | null {
  const policy = route.cache_policy;
  if (!policy?.enabled) return null;
  const compiled = {
    tenantId,
    tenantMaxBytes: tenant?.settings.cache?.max_bytes,
    routeId: route.id,
    metricsRoute: route.id,
    mode: policy.mode,
    heuristicFreshness: policy.heuristic_freshness,
    honorRequestCacheControl: policy.honor_request_cache_control,
    keepStaleMs: policy.mode === 'standard' ? policy.keep_stale_seconds * 1000 : 0,
    tagHeaders: lower(policy.tag_headers),
    keyPattern: policy.cache_key_pattern,
    // A CORS route's answers vary on Origin (the gateway says Vary: Origin): so does its key, by how
    // the policy reads the Origin (originAsKeyed).
    varyHeaders: [
      ...new Set([
        ...(policy.cache_key_pattern === 'path+query+headers' ? lower(policy.vary_headers) : []),
        ...((route.cors ?? null) !== null ? ['origin'] : []),
      ]),
    ].sort(),
    cors: compileRouteCors(route),
    // A traffic split's override, and its sticky key (a value the client can try until it lands on the
    // origin it wants), let the client pick the origin after the cache stage, outside the key: such a
    // request is neither served another origin's entry nor fills the one everyone gets.
    bypassHeaders: lower([...policy.bypass.headers, ...originChoosingNames(route, 'header')]),
    // Each name also as PHP origins read it: a rule for `session.id` holds for a client sending `session_id`.
    bypassCookies: [
      ...new Set(
        [...policy.bypass.cookies, ...originChoosingNames(route, 'cookie')].flatMap((name) => [
          name,
          cookieNameAsPhpReadsIt(name),
        ]),
      ),
    ],
    bypassQueryParams:
      policy.bypass.query_params.length === 0
        ? null
        : new NamedParameters(
            new Map(
              policy.bypass.query_params.flatMap((name) =>
                namedParameterKeys(name).map((key) => [key, name]),
              ),
            ),
          ),
    // A snapshot written before the control plane refused partial/conditional statuses may list them.
    cacheableStatuses: new Set(policy.cacheable_statuses.filter(isCompleteResponseStatus)),
    ttlMs: policy.ttl_seconds * 1000,
    maxBodyBytes: policy.max_body_bytes,
    perCaller: route.auth_mode !== 'public' && !policy.shared,
    audience: routeAudience(route, tenant),
    credentialsNeedOriginConsent: route.auth_mode === 'public',
    responseHeaders: responseHeadersDigest(route),
    cacheSetCookie: policy.cache_set_cookie,
    staleWhileRevalidateMs: policy.stale_while_revalidate_seconds * 1000,
    staleIfErrorMs: policy.stale_if_error_seconds * 1000,
  };
  const { keyPattern, varyHeaders, perCaller } = compiled;
  return { ...compiled, keyShape: `${keyPattern} ${varyHeaders.join(',')} ${perCaller ? 'caller' : ''}` };
}
