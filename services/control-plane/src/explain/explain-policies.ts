import {
  MAX_ORIGIN_CONNECT_TIMEOUT_MS,
  type RouteConfig,
  type TenantSnapshot,
} from '@vantageedge/shared/domain/gateway-config';
import type { PoliciesExplanation } from '@vantageedge/shared/domain/request-explanation';
import {
  keptOnlyFromTrustedProxy,
  type LocationVariable,
  splitOverrideLeftOut,
} from '@vantageedge/shared/domain/route-policies';
import { AddressMatcher } from '@vantageedge/shared/gateway-policies/address-matcher';
import {
  compileRouteCors,
  originAllowed,
  preflightRefusal,
} from '@vantageedge/shared/gateway-policies/cors-rules';
import { compilePathRewrite } from '@vantageedge/shared/gateway-policies/path-rewrite';
import { compileRedirectLocation } from '@vantageedge/shared/gateway-policies/redirect-location';
import { asOriginsReadIt } from '@vantageedge/shared/http/cgi-spellings';
import { cookieHeader, cookieValue, sentHeader, singleHeader } from '@vantageedge/shared/http/header-values';
import { hostHeaderName } from '@vantageedge/shared/routing/host-lookup';
import { requestHeadersWritten } from './transformed-request.js';

/**
 * The route policies a gateway would apply to one request, computed with the gateway's own rules
 * (address matcher, CORS rules, path rewrite): IP rules, CORS, transforms, timeouts and retries,
 * traffic split, and the answers a route gives itself (fixed_response, redirect).
 */

/** What stops a request before authentication or the origin (ip_rules, a CORS preflight). */
export interface PolicyStop {
  stage: 'ip_rules' | 'cors';
  status: number;
  code: string | null;
  message: string;
}

export interface PolicyRequest {
  method: string;
  host: string;
  path: string;
  query: string;
  headers: Record<string, string | string[]>;
  /** The headers as the route's request transform leaves them: what its traffic split reads. */
  forwardedHeaders: Record<string, string | string[]>;
  clientIp: string | undefined;
  /** A preflight matched to a route with CORS by the method it announces: the gateway answers it. */
  corsPreflight: boolean;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * A browser's preflight: OPTIONS with Origin and Access-Control-Request-Method, read as the gateway's
 * route match reads them (an empty method is none, and so is a method sent on several lines).
 */
export function announcedPreflightMethod(
  request: Pick<PolicyRequest, 'method' | 'headers'>,
): string | undefined {
  if (request.method !== 'OPTIONS' || sentHeader(request.headers, 'origin') === undefined) return undefined;
  return singleHeader(sentHeader(request.headers, 'access-control-request-method'))?.toUpperCase();
}

const IP_DENIED: PolicyStop = {
  stage: 'ip_rules',
  status: 403,
  code: 'ip_denied',
  message: 'requests from this address are not allowed on this route',
};

/**
 * A request no route takes is judged by the tenant-wide IP rules, as the gateways judge it: 403
 * `ip_denied` for an address they refuse (a 404 would tell it which paths have routes); else null.
 */
export function unroutedIpRefusal(snapshot: TenantSnapshot, clientIp: string | undefined): PolicyStop | null {
  const rules = snapshot.tenant.settings.ip_rules ?? null;
  if (rules === null || clientIp === undefined) return null;
  const allow = new AddressMatcher(rules.allow);
  const refused = new AddressMatcher(rules.deny).has(clientIp) || (allow.size > 0 && !allow.has(clientIp));
  return refused ? { ...IP_DENIED } : null;
}

/**
 * An ambiguous path or query is judged by the IP rules of the routes it reaches, as the gateways judge
 * it: 403 `ip_denied` for an address each of them refuses (the ambiguity's answer would tell it that
 * routes are there, and which query parameter they read); else null.
 */
export function ambiguousIpRefusal(
  snapshot: TenantSnapshot,
  routes: readonly RouteConfig[],
  clientIp: string | undefined,
): PolicyStop | null {
  if (clientIp === undefined || routes.length === 0) return null;
  const refused = routes.every((route) => explainIpRules(snapshot, route, clientIp)?.verdict === 'denied');
  return refused ? { ...IP_DENIED } : null;
}

function explainIpRules(
  snapshot: TenantSnapshot,
  route: RouteConfig,
  clientIp: string | undefined,
): PoliciesExplanation['ip_rules'] {
  const own = route.ip_rules ?? null;
  const rules = own ?? snapshot.tenant.settings.ip_rules ?? null;
  if (rules === null) return null;
  const deny = new AddressMatcher(rules.deny);
  const allow = new AddressMatcher(rules.allow);
  if (deny.size === 0 && allow.size === 0) return null;
  const base = {
    source: own === null ? ('tenant' as const) : ('route' as const),
    allow: rules.allow,
    deny: rules.deny,
  };
  if (clientIp === undefined) {
    return {
      ...base,
      client_ip: null,
      verdict: 'depends_on_client_address',
      reason: 'depends on the client address (give client_ip to judge it)',
    };
  }
  if (deny.has(clientIp)) {
    return { ...base, client_ip: clientIp, verdict: 'denied', reason: `${clientIp} is in the deny list` };
  }
  if (allow.size > 0 && !allow.has(clientIp)) {
    return {
      ...base,
      client_ip: clientIp,
      verdict: 'denied',
      reason: `${clientIp} is not in the allow list`,
    };
  }
  return {
    ...base,
    client_ip: clientIp,
    verdict: 'allowed',
    reason: allow.size > 0 ? `${clientIp} is in the allow list` : `${clientIp} is not in the deny list`,
  };
}

function explainCors(route: RouteConfig, request: PolicyRequest): PoliciesExplanation['cors'] {
  const cors = compileRouteCors(route);
  if (cors === null || route.cors === null || route.cors === undefined) return null;
  const origin = single(sentHeader(request.headers, 'origin')) ?? null;
  const announced = request.corsPreflight ? announcedPreflightMethod(request) : undefined;
  const base = {
    origin,
    allow_methods: [...cors.methods],
    allow_headers: [...cors.headers],
    allow_credentials: cors.credentials,
  };
  if (announced !== undefined) {
    const refusal = preflightRefusal(
      cors,
      origin ?? undefined,
      announced,
      sentHeader(request.headers, 'access-control-request-headers'),
    );
    return {
      ...base,
      preflight: true,
      origin_allowed: origin === null ? false : originAllowed(cors, origin),
      answered_by_gateway: true,
      status: refusal === undefined ? 204 : 403,
      reason:
        refusal === undefined
          ? `a preflight for ${announced}: the gateway answers 204 with the Access-Control-Allow-* headers, before authentication`
          : `a preflight for ${announced}: the gateway refuses it (403 cors_not_allowed): ${refusal}`,
    };
  }
  const allowed = origin === null ? null : originAllowed(cors, origin);
  return {
    ...base,
    preflight: false,
    origin_allowed: allowed,
    answered_by_gateway: false,
    status: null,
    reason:
      origin === null
        ? 'no Origin header: not a cross-origin request; answers carry Vary: Origin'
        : allowed
          ? 'an allowed origin: the answer carries Access-Control-Allow-Origin'
          : 'an origin that is not allowed: the answer carries no Access-Control-Allow-Origin',
  };
}

function explainTimeouts(
  route: RouteConfig,
  originTimeoutSeconds: number | null,
): PoliciesExplanation['timeouts'] {
  const originMs = originTimeoutSeconds === null ? null : originTimeoutSeconds * 1000;
  const own = route.timeouts ?? null;
  return {
    connect_ms:
      own?.connect_ms ?? (originMs === null ? null : Math.min(originMs, MAX_ORIGIN_CONNECT_TIMEOUT_MS)),
    response_headers_ms: own?.response_headers_ms ?? originMs,
    idle_ms: own?.idle_ms ?? originMs,
    source: own === null ? 'origin' : 'route',
  };
}

/**
 * A split key's value in `headers`, as the gateway's split reads it (the first line; a cookie's first),
 * for a request of a client through no trusted proxy: a header only a trusted proxy's request passes on
 * (True-Client-IP, …) is none, unless the route's transform wrote it (`written`: its line then reaches
 * the origin from every client). Host is the request's `host`, as gateways read an HTTP/2 :authority.
 */
function splitKeyReader(
  headers: Record<string, string | string[]>,
  written: ReadonlySet<string>,
  host: string,
) {
  const cookies = cookieHeader(sentHeader(headers, 'cookie'));
  const headerValue = (header: string) => {
    const lower = header.toLowerCase();
    if (lower === 'host') return host === '' ? undefined : host;
    if (!keptOnlyFromTrustedProxy(lower)) return single(sentHeader(headers, lower));
    const name = asOriginsReadIt(lower);
    return written.has(name) ? single(sentHeader(headers, name)) : undefined;
  };
  return (key: { header?: string | undefined; cookie?: string | undefined }) =>
    key.header !== undefined
      ? headerValue(key.header)
      : cookies === undefined || key.cookie === undefined
        ? undefined
        : cookieValue(cookies, key.cookie);
}

const NO_NAMES: ReadonlySet<string> = new Set();

function explainTrafficSplit(
  snapshot: TenantSnapshot,
  route: RouteConfig,
  request: Pick<PolicyRequest, 'host' | 'headers' | 'forwardedHeaders'>,
): PoliciesExplanation['traffic_split'] {
  const split = route.traffic_split ?? null;
  if (split === null) return null;
  const total = split.origins.reduce((sum, entry) => sum + entry.weight, 0);
  const written = requestHeadersWritten(route.request_headers);
  const keyValue = splitKeyReader(request.forwardedHeaders, written, request.host);
  const override = split.overrides.find(
    (entry) => !splitOverrideLeftOut(entry) && keyValue(entry) === entry.value,
  );
  // As the gateways: an empty sticky value is none.
  const stickyValue = split.sticky === null ? undefined : keyValue(split.sticky) || undefined;
  return {
    origins: split.origins.map((entry) => ({
      origin_id: entry.origin_id,
      origin_name: snapshot.origins.find((origin) => origin.id === entry.origin_id)?.name ?? null,
      weight: entry.weight,
      percent: total === 0 ? 0 : Math.round((entry.weight / total) * 10_000) / 100,
    })),
    sticky: split.sticky,
    overrides: split.overrides,
    chosen_by:
      override !== undefined
        ? overrideChoice(
            override,
            splitKeyReader(request.headers, NO_NAMES, request.host)(override) === override.value,
          )
        : split.sticky === null
          ? 'weights: round robin by weight on each gateway replica'
          : stickyValue === undefined
            ? split.sticky.header !== undefined &&
              keptOnlyFromTrustedProxy(split.sticky.header) &&
              !written.has(asOriginsReadIt(split.sticky.header.toLowerCase()))
              ? `weights: ${split.sticky.header} is read only on a trusted proxy’s request, so the weights’ round robin chooses`
              : `weights: no ${split.sticky.header ?? split.sticky.cookie} in the request, so the weights’ round robin chooses`
            : `weights, sticky on ${split.sticky.header ?? split.sticky.cookie}: every request with this value goes to the same origin`,
  };
}

/**
 * How an override chose the origin. Its value is named only when the client sent it: one the route's
 * transform writes may be a write-only credential's (`x-canary-token`), or hidden from readers.
 */
function overrideChoice(
  override: { header?: string | undefined; cookie?: string | undefined; value: string; origin_id: string },
  sentByClient: boolean,
): string {
  const name = override.header ?? override.cookie;
  return sentByClient
    ? `an override: ${name} = ${override.value} → origin ${override.origin_id}`
    : `an override: ${name} as the route's request_headers write it → origin ${override.origin_id}`;
}

/**
 * A redirect's Location variable for the request, read as the gateways read it: the query with its
 * `?`, the host name without port or trailing dot.
 */
function readLocationVariable(name: LocationVariable, request: PolicyRequest): string {
  switch (name) {
    case 'path':
      return request.path;
    case 'query':
      return request.query === '' ? '' : `?${request.query}`;
    case 'host':
      return hostHeaderName(request.host) ?? '';
  }
}

/**
 * The path the origin receives after rewrite_path (null when the route has none), and whether the
 * gateways refuse to build it: longer than 32 KiB, they answer 414 uri_too_long, and the path is shown as
 * it came.
 */
function rewrittenPath(
  route: RouteConfig,
  path: string,
): { shown: PoliciesExplanation['rewrite_path']; tooLong: boolean } {
  const rule = route.rewrite_path ?? null;
  if (rule === null) return { shown: null, tooLong: false };
  const rewritten = compilePathRewrite(rule, route.path_pattern)(path);
  return {
    shown: { rule, path: rewritten ?? path, rewritten: typeof rewritten === 'string' },
    tooLong: rewritten === null,
  };
}

export function explainPolicies(
  snapshot: TenantSnapshot,
  route: RouteConfig,
  request: PolicyRequest,
): {
  policies: PoliciesExplanation;
  stop: PolicyStop | null;
  locationTooLong: boolean;
  rewriteTooLong: boolean;
} {
  const origin = snapshot.origins.find((candidate) => candidate.id === route.origin_id);
  const fixed = route.fixed_response ?? null;
  const redirect = route.redirect ?? null;
  // As the gateways: a Location past 32 KiB is never built (they answer 414 uri_too_long), and the
  // explanation shows the template as stored.
  const location =
    redirect === null ? undefined : compileRedirectLocation(redirect, readLocationVariable)(request);
  const rewrite = rewrittenPath(route, request.path);
  const policies: PoliciesExplanation = {
    ip_rules: explainIpRules(snapshot, route, request.clientIp),
    cors: explainCors(route, request),
    request_headers: route.request_headers ?? null,
    response_headers: route.response_headers ?? null,
    query: route.query ?? null,
    rewrite_path: rewrite.shown,
    timeouts: explainTimeouts(route, origin?.timeout_seconds ?? null),
    retries: route.retries ?? null,
    traffic_split: explainTrafficSplit(snapshot, route, request),
    fixed_response:
      fixed === null
        ? null
        : { status: fixed.status, content_type: fixed.content_type, headers: fixed.headers },
    redirect: redirect === null ? null : { status: redirect.status, location: location ?? redirect.location },
  };
  let stop: PolicyStop | null = null;
  if (policies.ip_rules?.verdict === 'denied') {
    stop = { ...IP_DENIED };
  } else if (policies.cors?.preflight) {
    stop = {
      stage: 'cors',
      status: policies.cors.status ?? 403,
      code: policies.cors.status === 204 ? null : 'cors_not_allowed',
      message: policies.cors.reason,
    };
  }
  return {
    policies,
    stop,
    locationTooLong: redirect !== null && location === undefined,
    rewriteTooLong: rewrite.tooLong,
  };
}
