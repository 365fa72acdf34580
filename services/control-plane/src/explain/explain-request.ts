import type { IncomingHttpHeaders } from 'node:http';
import { redactedCredentials } from '@vantageedge/shared/domain/credential-headers';
import type { RouteConfig, TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { canonicalCustomDomain, isUnderBaseDomain } from '@vantageedge/shared/domain/hostname';
import type {
  ExplainDecision,
  ExplainStage,
  RequestExplanation,
  RouteVerdict,
} from '@vantageedge/shared/domain/request-explanation';
import { gatewayHeaderConditionNeverMet } from '@vantageedge/shared/domain/route-policies';
import { pathDigest, variantDigest } from '@vantageedge/shared/gateway-policies/cache-key';
import {
  type CompiledCachePolicy,
  compileCachePolicy,
} from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import { compileRateLimits, limitKey } from '@vantageedge/shared/gateway-policies/compile-rate-limits';
import { withoutMethodOverride } from '@vantageedge/shared/gateway-policies/method-override-parameter';
import { REWRITTEN_PATH_TOO_LONG } from '@vantageedge/shared/gateway-policies/path-rewrite';
import { REDIRECT_LOCATION_TOO_LONG } from '@vantageedge/shared/gateway-policies/redirect-location';
import { requestBypassReason } from '@vantageedge/shared/gateway-policies/request-bypass';
import { requestFreshness } from '@vantageedge/shared/gateway-policies/request-freshness';
import { weightedSplitOrigins } from '@vantageedge/shared/gateway-policies/split-origins';
import { sentHeader, singleHeader } from '@vantageedge/shared/http/header-values';
import { endToEndRequestHeaders } from '@vantageedge/shared/http/hop-by-hop-headers';
import { methodRefusal } from '@vantageedge/shared/http/request-method';
import { canonicalAddress } from '@vantageedge/shared/net/ip-address';
import { lookupHost, preservedHost } from '@vantageedge/shared/routing/host-lookup';
import {
  compileConditions,
  headersNeverMet,
  type MatchFacts,
} from '@vantageedge/shared/routing/match-conditions';
import { normalizePath, queryBytesEncoded, queryRefusal } from '@vantageedge/shared/routing/normalize-path';
import {
  AmbiguousPath,
  AmbiguousQuery,
  ambiguousQueryMessage,
  compilePattern,
  type MatchRequest,
  RouteMatcher,
} from '@vantageedge/shared/routing/route-matcher';
import { compileStripPrefix, strippedPath } from '@vantageedge/shared/routing/strip-prefix';
import { quotaExceededMessage } from '@vantageedge/shared/usage/quota-windows';
import { type AuthContext, type ExplainedAuth, explainAuth } from './explain-auth.js';
import {
  ambiguousIpRefusal,
  announcedPreflightMethod,
  explainPolicies,
  unroutedIpRefusal,
} from './explain-policies.js';
import { explainQuota, type QuotaCounters } from './explain-quota.js';
import { headersAfterRequestTransform, queryAfterTransform } from './transformed-request.js';

/**
 * What a gateway would do with one request, computed with the gateway's own code on the tenant's
 * snapshot: its host lookup, path normalisation, compiled route matcher, rate-limit and cache-policy
 * compilers, quota windows, cache key and bypass rules, strip-prefix rule. The steps are the gateway's,
 * in its order (host → method → path → route → auth → rate limit → quota → cache → origin); the answer
 * reports every step, and the first one that would answer the request itself.
 */

export interface ExplainInput {
  method: string;
  host: string;
  /** Without the query string. */
  path: string;
  /** Without the leading '?'; '' when none. */
  query: string;
  /** Lower-case names. */
  headers: Record<string, string | string[]>;
  /** The client address the gateway would see (for limits keyed on it); default a placeholder. */
  clientIp?: string;
  /** The scheme the client uses (part of the cache key); default https. */
  scheme?: 'http' | 'https';
}

export interface ExplainContext extends Omit<AuthContext, 'hostNames'> {
  /** PLATFORM_BASE_DOMAINS, lower-case. */
  baseDomains: readonly string[];
  /** GATEWAY_ENCODED_SLASHES. */
  encodedSlashes: 'reject' | 'keep';
  /** The gateways' quota counters, read (never spent) for what is left; without them not read. */
  quotaCounters?: QuotaCounters | undefined;
}

/** The answer without the tenant and position it was explained for (the router adds those). */
export type Explanation = Omit<RequestExplanation, 'tenant_id' | 'position' | 'version'>;

const stop = (stage: ExplainStage, status: number, code: string, message: string): ExplainDecision => ({
  stage,
  status,
  code,
  message,
});

/** The tenant's host names as a gateway serves them: its subdomain on every base, its verified domains. */
export function tenantHostNames(snapshot: TenantSnapshot, baseDomains: readonly string[]): string[] {
  const subdomain = snapshot.tenant.subdomain.toLowerCase();
  const names = new Set(baseDomains.map((base) => `${subdomain}.${base}`));
  for (const { domain } of snapshot.custom_domains) {
    const canonical = canonicalCustomDomain(domain);
    if (canonical.ok && canonical.hostname === domain && !isUnderBaseDomain(domain, baseDomains))
      names.add(domain);
  }
  return [...names];
}

function explainHost(
  snapshot: TenantSnapshot,
  hostHeader: string,
  context: ExplainContext,
): Explanation['host'] {
  const lookup = lookupHost(hostHeader, context.baseDomains);
  if (lookup.kind === 'none') {
    const reason = {
      missing: 'no host given',
      malformed: 'not a host name with an optional port: the gateways refuse it (400 invalid_host)',
      ip_literal: 'an IP address literal is no tenant host',
      base_domain:
        'a platform base domain itself, the parent of one nested under another, or more than one label under one, is no tenant host',
    }[lookup.reason];
    return { resolves: false, kind: null, host: lookup.host, reason };
  }
  if (lookup.kind === 'subdomain') {
    const own = lookup.label === snapshot.tenant.subdomain.toLowerCase();
    return {
      resolves: own,
      kind: 'subdomain',
      host: lookup.host,
      reason: own
        ? `the subdomain host of this tenant (${snapshot.tenant.subdomain})`
        : `the subdomain "${lookup.label}" is not this tenant's (its subdomain is "${snapshot.tenant.subdomain}")`,
    };
  }
  const own = tenantHostNames(snapshot, context.baseDomains).includes(lookup.host);
  return {
    resolves: own,
    kind: 'custom_domain',
    host: lookup.host,
    reason: own
      ? 'a verified custom domain of this tenant'
      : 'not a verified custom domain of this tenant at this version',
  };
}

function methodsText(methods: readonly string[]): string {
  return methods.length === 0 ? 'any method' : methods.join(', ');
}

interface Matchable {
  readonly config: RouteConfig;
}

interface ExplainedRoutes {
  verdicts: RouteVerdict[];
  chosen: RouteConfig | null;
  decision: ExplainDecision | null;
  /** The routes an ambiguous path or query reaches (none when it is not ambiguous). */
  ambiguous: RouteConfig[];
}

/**
 * The request as a route's `match` conditions read it on a gateway: its headers with the Host it is
 * sent to, its raw query with the leading '?', its scheme.
 */
function matchFacts(input: ExplainInput): MatchFacts {
  return {
    req: { headers: { ...input.headers, host: input.host } as IncomingHttpHeaders },
    query: input.query === '' ? '' : `?${input.query}`,
    scheme: input.scheme ?? 'https',
  };
}

interface CompiledRoutes {
  matcher: RouteMatcher<Matchable>;
  skipped: readonly RouteVerdict[];
}

/**
 * Each snapshot's route matcher, built once and shared by every explain of it, as a gateway keeps one
 * per version: building it costs about a tenant's whole routes (1,000 deep patterns: ≈ 150 ms of the
 * thread), which each explain (a preflight's twice) paid again.
 */
const compiledRoutes = new WeakMap<TenantSnapshot, CompiledRoutes>();

function compiledRoutesOf(snapshot: TenantSnapshot): CompiledRoutes {
  const known = compiledRoutes.get(snapshot);
  if (known !== undefined) return known;
  const valid: Matchable[] = [];
  const skipped: RouteVerdict[] = [];
  for (const route of snapshot.routes) {
    try {
      compilePattern(route.id, route.path_pattern);
      valid.push({ config: route });
    } catch (error) {
      skipped.push({
        ...verdictBase(route),
        rank: null,
        method_matches: false,
        path_matches: false,
        selected: false,
        reason: `skipped by the gateways: ${(error as Error).message}`,
      });
    }
  }
  const compiled = { matcher: new RouteMatcher(valid, snapshot.tenant.settings.ip_rules), skipped };
  compiledRoutes.set(snapshot, compiled);
  return compiled;
}

function explainRoutes(
  snapshot: TenantSnapshot,
  method: string,
  path: string,
  request: MatchRequest,
): ExplainedRoutes {
  const { matcher, skipped } = compiledRoutesOf(snapshot);
  const resolved = matcher.resolve(method, path, request);
  const firstMatch = matcher.match(method, path, request);
  const ambiguous = resolved instanceof AmbiguousPath ? new Set(resolved.routes) : new Set<Matchable>();
  const chosen = resolved instanceof AmbiguousPath ? undefined : resolved;
  const verdicts = matcher.evaluate(method, path).map(({ route, rank, methodMatches, pathMatches }) => {
    const selected = route === chosen;
    return {
      ...verdictBase(route.config),
      rank,
      method_matches: methodMatches,
      path_matches: pathMatches,
      selected,
      reason: routeReason(
        route,
        {
          selected,
          methodMatches,
          pathMatches,
          conditionsHold: conditionsHold(route.config, request),
          method,
          path,
        },
        firstMatch,
        chosen,
        ambiguous,
        resolved instanceof AmbiguousQuery ? resolved.parameter : undefined,
      ),
    };
  });
  let decision: ExplainDecision | null = null;
  if (resolved === undefined)
    decision = stop('route', 404, 'route_not_found', 'no route matches this method and path');
  else if (resolved instanceof AmbiguousQuery)
    decision = stop('route', 403, 'ambiguous_query', ambiguousQueryMessage(resolved.parameter));
  else if (resolved instanceof AmbiguousPath) {
    decision = stop(
      'route',
      403,
      'ambiguous_path',
      'an origin could read this path as the path of a differently protected route; use its exact spelling',
    );
  }
  return {
    verdicts: [...verdicts, ...skipped],
    chosen: chosen?.config ?? null,
    decision,
    ambiguous: [...ambiguous].map((route) => route.config),
  };
}

/**
 * A browser's preflight is matched by the method it announces to a route with CORS, which answers it,
 * as the gateways do: first with the routes' header conditions skipped (a preflight carries none of the
 * actual request's headers), then with the preflight's own headers. Undefined when it is no preflight,
 * or no route with CORS takes it (then it is matched as any request).
 */
function explainPreflightRoutes(
  snapshot: TenantSnapshot,
  input: ExplainInput,
  path: string,
  facts: MatchFacts,
): ExplainedRoutes | undefined {
  const announced = announcedPreflightMethod(input);
  if (announced === undefined) return undefined;
  for (const preflight of [true, false]) {
    const routes = explainRoutes(snapshot, announced, path, { facts, preflight });
    if ((routes.chosen?.cors ?? null) !== null) return routes;
  }
  return undefined;
}

function verdictBase(route: RouteConfig) {
  return { id: route.id, path_pattern: route.path_pattern, methods: route.methods, priority: route.priority };
}

/** Whether the route's `match` conditions (hosts, headers, query) hold for the request. */
function conditionsHold(route: RouteConfig, request: MatchRequest): boolean {
  const conditions = compileConditions(route.match);
  return (
    conditions === null || (request.facts !== undefined && conditions.test(request.facts, request.preflight))
  );
}

function routeReason(
  route: Matchable,
  verdict: {
    selected: boolean;
    methodMatches: boolean;
    pathMatches: boolean;
    conditionsHold: boolean;
    method: string;
    path: string;
  },
  firstMatch: Matchable | undefined,
  chosen: Matchable | undefined,
  ambiguous: ReadonlySet<Matchable>,
  /** The repeated query parameter that made the request ambiguous, if that is what did. */
  ambiguousParameter: string | undefined,
): string {
  const { config } = route;
  if (verdict.selected) {
    return route === firstMatch
      ? 'the first route in match order whose method and path match'
      : `another reading of the path (letter case, trailing slash, ;parameters) reaches this route, which protects more than ${firstMatch?.config.path_pattern ?? 'the route matched as written'}: it handles the request`;
  }
  if (ambiguous.has(route) && ambiguousParameter !== undefined) {
    return `the request, read with any value of ${JSON.stringify(ambiguousParameter)} (sent more than once with different values, or in a pair after a ';') or with only its first or only its last value as an origin may read it, reaches this route and another one protected differently: the query is ambiguous`;
  }
  if (ambiguous.has(route)) {
    return 'matched by one reading of the path, but its protection cannot be ordered with another matched route: the path is ambiguous';
  }
  const reasons: string[] = [];
  if (!verdict.methodMatches)
    reasons.push(`method ${verdict.method} is not accepted (${methodsText(config.methods)})`);
  if (!verdict.pathMatches) reasons.push(`path ${verdict.path} does not match ${config.path_pattern}`);
  if (!verdict.conditionsHold) {
    const neverMet = headersNeverMet(config.match)[0];
    reasons.push(
      neverMet === undefined
        ? 'its match conditions (hosts, headers, query) do not hold'
        : gatewayHeaderConditionNeverMet(neverMet),
    );
  }
  if (reasons.length > 0) return reasons.join('; ');
  if (route === firstMatch && chosen !== undefined) {
    return `matches, but another reading of the path reaches ${chosen.config.path_pattern}, which protects more`;
  }
  return `matches too, but ${firstMatch?.config.path_pattern ?? 'another route'} comes first in match order (priority, then specificity, conditions, methods, then order)`;
}

function explainLimits(
  snapshot: TenantSnapshot,
  route: RouteConfig,
  { explanation: auth, principal }: ExplainedAuth,
  clientIp: string,
): NonNullable<Explanation['rate_limits']> {
  const compiled = compileRateLimits(snapshot.tenant, route);
  // The caller as the gateway's rate-limit stage gives it: `scope: user` counts the principal.
  const caller = { userId: principal, apiKeyId: auth.identity.api_key_id, clientIp };
  return {
    policy_header: compiled.policyHeader,
    limits: compiled.descriptors.map((descriptor) => {
      const policy = descriptor.level === 'tenant' ? snapshot.tenant.settings.rate_limit! : route.rate_limit!;
      const { spec } = descriptor;
      return {
        name: descriptor.name,
        level: descriptor.level,
        scope: descriptor.scope,
        algorithm: spec.algorithm,
        capacity: spec.capacity,
        refill_per_second: spec.algorithm === 'token_bucket' ? spec.ratePerMs * 1000 : null,
        window_seconds: spec.algorithm === 'sliding_window' ? spec.windowMs / 1000 : null,
        accuracy: descriptor.accuracy,
        on_store_failure: policy.on_store_failure,
        key: limitKey(descriptor, caller),
      };
    }),
  };
}

function explainCache(
  snapshot: TenantSnapshot,
  route: RouteConfig,
  input: ExplainInput,
  path: string,
  principal: string | undefined,
  hasBody: boolean,
): NonNullable<Explanation['cache']> {
  const policy = compileCachePolicy(snapshot.tenant_id, route, snapshot.tenant);
  if (policy === null) {
    return {
      enabled: false,
      decision: 'not_cached',
      reason:
        route.cache_policy === null
          ? 'the route has no cache policy'
          : "the route's cache policy is disabled",
    };
  }
  // The gateway's cache key: the scheme and the host as the origin is told it, spelled as given (a
  // client through no trusted proxy: originFacingHost), and the headers the origin gets (none the client
  // named in Connection).
  const request = {
    method: input.method,
    scheme: input.scheme ?? 'https',
    host: input.host,
    path,
    query: input.query,
    headers: endToEndRequestHeaders(input.headers),
    hasBody,
  };
  // The caller as the gateway's cache stage gives it: per-caller entries are the principal's.
  const caller = { userId: principal };
  // The gateway keys a split route's entry on the origin its split chose, before the cache looks up. A
  // request an override or the sticky key sends bypasses (compileCachePolicy): the weights choose.
  const split = weightedSplitOrigins(route, (id) => snapshot.origins.find((origin) => origin.id === id));
  const variants = split?.map(({ origin }) => ({
    origin_id: origin.id,
    variant_digest: variantDigest(policy, { ...request, origin: origin.id }, caller),
  }));
  // Null for an anonymous caller on a per-caller route, whichever origin.
  const unsplit = variantDigest(policy, request, caller);
  const variant =
    variants === undefined ? unsplit : variants.length === 1 ? variants[0]!.variant_digest : null;
  const key = {
    pattern: policy.keyPattern,
    vary_headers: [...policy.varyHeaders],
    per_caller: policy.perCaller,
    path_digest: pathDigest(path),
    variant_digest: variant,
    ...(variants === undefined ? {} : { split_variants: variants }),
  };
  const ttl_seconds = policy.ttlMs / 1000;
  const bypass = requestBypassReason(policy, request);
  if (bypass !== null) return { enabled: true, decision: 'bypass', reason: bypass, ttl_seconds, key };
  if (unsplit === null) {
    return { enabled: true, decision: 'bypass', reason: 'anonymous_on_per_caller_route', ttl_seconds, key };
  }
  return { enabled: true, decision: 'lookup', reason: lookupCondition(policy, request), ttl_seconds, key };
}

/**
 * Standard mode: what the client's Cache-Control (or Pragma: no-cache) asks of a stored entry, as the
 * gateway's cache reads it. `request_no_cache`: never served as it is, the origin is asked again (unless
 * the entry is immutable); `request_cache_control`: served only when fresh enough for the client's
 * max-age, min-fresh or max-stale (only-if-cached: 504 without one). Null when the client asks nothing.
 */
function lookupCondition(
  policy: CompiledCachePolicy,
  request: { headers: IncomingHttpHeaders },
): string | null {
  const wanted = requestFreshness(policy, request.headers);
  if (wanted === null) return null;
  return wanted.noCache ? 'request_no_cache' : 'request_cache_control';
}

/** Whether the headers announce a request body, as the gateway's request framing reads them. */
function declaresBody(headers: ExplainInput['headers']): boolean {
  if (sentHeader(headers, 'transfer-encoding') !== undefined) return true;
  const contentLength = sentHeader(headers, 'content-length');
  return contentLength !== undefined && singleHeader(contentLength) !== '0';
}

function explainUpstream(
  snapshot: TenantSnapshot,
  route: RouteConfig,
  { host, path, query }: { host: string; path: string; query: string },
  rewritten: string | undefined,
) {
  const origin = snapshot.origins.find((candidate) => candidate.id === route.origin_id);
  const strip = compileStripPrefix(route.strip_prefix);
  return {
    origin_id: route.origin_id,
    origin_name: origin?.name ?? null,
    targets: origin ? origin.targets.map(({ url, weight }) => ({ url, weight })) : null,
    load_balancing: origin?.load_balancing ?? null,
    timeout_seconds: origin?.timeout_seconds ?? null,
    tls: origin
      ? {
          verify: origin.tls.verify,
          server_name: origin.tls.server_name,
          verify_depth: origin.tls.verify_depth,
          own_ca_certificates: origin.tls.ca_certificates !== null,
          client_certificate_id: origin.tls.client_certificate_id,
        }
      : null,
    strip_prefix: strip,
    // Routes recorded before preserve_host existed send the target's host.
    host_header: route.preserve_host ? (preservedHost(host) ?? null) : null,
    forwarded_path: (rewritten ?? strippedPath(path, strip)) + (query === '' ? '' : `?${query}`),
  };
}

/** `${consumer_id}` as the gateway fills it in: the user, service or API key; empty when anonymous. */
function consumerId(identity: ExplainedAuth['explanation']['identity']): string {
  const id = identity.user_id ?? identity.service_id ?? identity.api_key_id ?? '';
  return id.replace(/[^\t\x20-\x7e]/g, '');
}

/**
 * The client address as a gateway holds it (ClientAddressResolver): an IPv4 client in any IPv6
 * spelling (`::ffff:a00:1`) is the dotted IPv4 address, which IP rules and per-client limits judge.
 */
function gatewayClientIp(clientIp: string | undefined): string | undefined {
  return clientIp === undefined ? undefined : (canonicalAddress(clientIp)?.address ?? clientIp);
}

export async function explainRequest(
  snapshot: TenantSnapshot,
  input: ExplainInput,
  context: ExplainContext,
): Promise<Explanation> {
  const host = explainHost(snapshot, input.host, context);
  const explanation: Explanation = {
    request: { method: input.method, host: input.host, path: input.path, query: input.query },
    host,
    path: { normalized: null, reason: null },
    route: null,
    routes: [],
    auth: null,
    rate_limits: null,
    quota: null,
    cache: null,
    upstream: null,
    policies: null,
    decision: stop('host', 404, 'tenant_not_found', 'no tenant is served on this host'),
  };
  // The first step that answers the request decides it; the later steps are still reported.
  let decided = !host.resolves;
  const decide = (decision: ExplainDecision) => {
    if (decided) return;
    explanation.decision = decision;
    decided = true;
  };

  const refusedMethod = methodRefusal(input.method);
  if (refusedMethod !== undefined) decide(stop('method', 400, 'invalid_method', refusedMethod));

  const normalized = normalizePath(input.path, context.encodedSlashes);
  if (!normalized.ok) {
    explanation.path.reason = normalized.reason;
    decide(stop('path', 400, 'invalid_path', `the request path is not acceptable (${normalized.reason})`));
    return explanation;
  }
  const path = normalized.path;
  explanation.path.normalized = path;
  const queryRefused = input.query === '' ? undefined : queryRefusal(`?${input.query}`);
  if (queryRefused !== undefined) {
    explanation.path.reason = 'invalid_query';
    decide(stop('path', 400, 'invalid_query', queryRefused));
    return explanation;
  }
  // Every later step reads the query as the gateways do: without a method override.
  input = { ...input, query: withoutMethodOverride(queryBytesEncoded(`?${input.query}`)).slice(1) };

  const facts = matchFacts(input);
  const preflightRoutes = explainPreflightRoutes(snapshot, input, path, facts);
  const routes = preflightRoutes ?? explainRoutes(snapshot, input.method, path, { facts, preflight: false });
  explanation.routes = routes.verdicts;
  explanation.route = routes.verdicts.find((verdict) => verdict.selected) ?? null;
  if (routes.decision?.code === 'route_not_found')
    decide(unroutedIpRefusal(snapshot, gatewayClientIp(input.clientIp)) ?? routes.decision);
  else if (routes.ambiguous.length > 0)
    decide(
      ambiguousIpRefusal(snapshot, routes.ambiguous, gatewayClientIp(input.clientIp)) ?? routes.decision!,
    );
  else if (routes.decision) decide(routes.decision);
  const route = routes.chosen;
  if (route === null) return explanation;

  const explained = await explainAuth(route, input.headers, {
    ...context,
    hostNames: tenantHostNames(snapshot, context.baseDomains),
  });
  const auth = explained.explanation;
  const clientIp = gatewayClientIp(input.clientIp) ?? '<client ip>';
  // What the traffic split and the cache read: the gateway transforms the request before them.
  const templateValues = {
    client_ip: clientIp,
    request_id: '<request id>',
    tenant_id: snapshot.tenant_id,
    route_id: route.id,
    consumer_id: consumerId(auth.identity),
  };
  const forwardedHeaders = headersAfterRequestTransform(route.request_headers, input.headers, templateValues);
  const policies = explainPolicies(snapshot, route, {
    method: input.method,
    host: input.host,
    path,
    query: input.query,
    headers: input.headers,
    forwardedHeaders,
    clientIp: gatewayClientIp(input.clientIp),
    corsPreflight: preflightRoutes !== undefined,
  });
  explanation.policies = policies.policies;
  if (policies.stop !== null) decide(policies.stop);

  explanation.auth = auth;
  if (!auth.outcome.ok) decide(stop('auth', auth.outcome.status, auth.outcome.code, auth.outcome.message));
  explanation.rate_limits = explainLimits(snapshot, route, explained, clientIp);
  const quota = await explainQuota(snapshot, route, auth, context.now, context.quotaCounters);
  explanation.quota = quota.quota;
  // The query the origin receives, which the cache also keys on.
  const forwardedQuery = queryAfterTransform(route.query, input.query, templateValues);
  explanation.cache = explainCache(
    snapshot,
    route,
    { ...input, headers: forwardedHeaders, query: forwardedQuery },
    path,
    explained.principal,
    declaresBody(input.headers),
  );
  const { fixed_response: fixed, redirect } = policies.policies;
  if (fixed !== null) {
    decide(
      stop('fixed_response', fixed.status, 'fixed_response', 'the route answers itself (fixed_response)'),
    );
  } else if (redirect !== null) {
    decide(
      policies.locationTooLong
        ? stop('redirect', 414, 'uri_too_long', REDIRECT_LOCATION_TOO_LONG)
        : stop('redirect', redirect.status, 'redirect', `the route redirects to ${redirect.location}`),
    );
  } else if (policies.rewriteTooLong) {
    decide(stop('rewrite_path', 414, 'uri_too_long', REWRITTEN_PATH_TOO_LONG));
  }
  // After the rate limit (unknown here: its counters are not read), before the cache and the origin.
  if (quota.exceeded !== null) {
    const { window, used } = quota.exceeded;
    decide(stop('quota', 429, 'quota_exceeded', quotaExceededMessage(window, used)));
  }
  explanation.upstream = explainUpstream(
    snapshot,
    route,
    { host: input.host, path, query: queryShownForwarded(route, input.query, templateValues) },
    policies.policies.rewrite_path?.path,
  );
  if (explanation.upstream.targets === null && (route.traffic_split ?? null) === null) {
    decide(stop('origin', 503, 'origin_unavailable', 'the route has no origin configured'));
  }
  const limited = explanation.rate_limits.limits.length > 0;
  const cached = explanation.cache.decision === 'lookup';
  decide({
    stage: 'origin',
    status: null,
    code: null,
    message: [
      'forwarded to the origin',
      limited ? 'unless a rate limit is used up (429 rate_limited)' : null,
      quota.quota.windows.length > 0 ? 'unless a quota is used up (429 quota_exceeded)' : null,
      cached ? 'unless a fresh cached response answers (X-Cache: HIT)' : null,
    ]
      .filter((part) => part !== null)
      .join(', '),
  });
  return explanation;
}

/**
 * The query the origin receives as the answer shows it: the values of credential parameters the route's
 * transform writes are write-only (README "Route policies"), so they read `<redacted>` here as in
 * `policies.query`; what the client sent is shown as sent.
 */
function queryShownForwarded(
  route: RouteConfig,
  query: string,
  templateValues: Parameters<typeof queryAfterTransform>[2],
): string {
  const shown = (route.query ?? null) === null ? null : redactedCredentials({ query: route.query }).query;
  return queryAfterTransform(shown, query, templateValues);
}
