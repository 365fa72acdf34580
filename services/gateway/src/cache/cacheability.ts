import type { IncomingHttpHeaders } from 'node:http';
import { cookieHeader, headerList, headerTokens } from '../http/header-values.js';
import type { CacheRequest } from './cache-key.js';
import type { CompiledCachePolicy } from './compile-cache-policy.js';

// Compiled once at module load (hot path: no per-request regex compilation).
const NO_CACHE_REQUEST = /no-cache|no-store/i;
const PRAGMA_NO_CACHE = /no-cache/i;
const NOT_STORABLE = /(^|[\s,])(no-store|private|no-cache)([\s,=]|$)/;
const S_MAXAGE = /s-maxage\s*=\s*(\d+)/;
const MAX_AGE = /(?:^|[\s,])max-age\s*=\s*(\d+)/;

/** Why a request is not served from (or stored to) the cache; null when it may be. */
export function requestBypassReason(policy: CompiledCachePolicy, request: CacheRequest): string | null {
  if (request.method !== 'GET' && request.method !== 'HEAD') return 'method';
  const { headers } = request;
  const cacheControl = headerList(headers['cache-control']);
  if (cacheControl && NO_CACHE_REQUEST.test(cacheControl)) return 'request_no_cache';
  const pragma = headerList(headers.pragma);
  if (pragma && PRAGMA_NO_CACHE.test(pragma)) return 'request_no_cache';
  for (const name of policy.bypassHeaders) if (headers[name] !== undefined) return 'bypass_header';
  const cookie = policy.bypassCookies.length > 0 ? cookieHeader(headers.cookie) : undefined;
  if (cookie) {
    const names = new Set(cookie.split(';').map((pair) => pair.split('=', 1)[0]!.trim()));
    for (const name of policy.bypassCookies) if (names.has(name)) return 'bypass_cookie';
  }
  if (policy.bypassQueryParams.length > 0 && request.query !== '') {
    const params = new URLSearchParams(request.query);
    for (const name of policy.bypassQueryParams) if (params.has(name)) return 'bypass_query';
  }
  return null;
}

/** A response as the proxy received it from the origin, with the body collected. */
export interface UpstreamResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** null when the body was larger than policy.maxBodyBytes (the proxy stopped collecting). */
  readonly body: Buffer | null;
}

/** Hop-by-hop and per-response framing/cache headers: never stored, always recomputed. */
const NOT_STORED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'age',
  'x-cache',
  'set-cookie',
  'content-length',
]);

/**
 * Headers that belong to one request/response exchange, whoever set them (the gateway, or an origin
 * echoing them): replaying them on a HIT would answer with the filling request's request id, trace
 * context, identity, rate-limit state or timings. The current request's own values are set fresh by the
 * pipeline (X-Request-Id, RateLimit*, X-Cache, Age).
 */
const PER_REQUEST = new Set([
  'x-request-id',
  'x-correlation-id',
  'traceparent',
  'tracestate',
  'baggage',
  'server-timing',
  'ratelimit',
  'ratelimit-policy',
  'retry-after',
]);
const PER_REQUEST_PREFIXES = ['x-vantageedge-', 'x-ratelimit-'];

/** True for a (lower-case) header name that belongs to one exchange and must not be replayed from a cache. */
export function isPerRequestHeader(name: string): boolean {
  if (PER_REQUEST.has(name)) return true;
  for (const prefix of PER_REQUEST_PREFIXES) if (name.startsWith(prefix)) return true;
  return false;
}

/**
 * How long the response may be served fresh, or a reason it must not be stored. Origin Cache-Control
 * is honoured: no-store, private and no-cache prevent storing; s-maxage (else max-age) caps the TTL,
 * which never exceeds the policy's.
 */
export function freshnessFor(
  policy: CompiledCachePolicy,
  method: string,
  response: UpstreamResponse,
): { freshMs: number } | { notStored: string } {
  if (method !== 'GET') return { notStored: 'method' };
  if (!policy.cacheableStatuses.has(response.status)) return { notStored: 'status' };
  if (response.body === null || response.body.length > policy.maxBodyBytes)
    return { notStored: 'body_too_large' };
  if (response.headers['set-cookie'] !== undefined && !policy.cacheSetCookie)
    return { notStored: 'set_cookie' };
  if (headerTokens(response.headers.vary).includes('*')) return { notStored: 'vary_star' };
  let freshMs = policy.ttlMs;
  // An origin may send Cache-Control on several lines; together they are one directive list.
  const cacheControl = headerList(response.headers['cache-control']);
  if (cacheControl) {
    const directives = cacheControl.toLowerCase();
    if (NOT_STORABLE.test(directives)) return { notStored: 'origin_cache_control' };
    const shared = S_MAXAGE.exec(directives);
    const maxAge = shared ?? MAX_AGE.exec(directives);
    if (maxAge) freshMs = Math.min(freshMs, Number(maxAge[1]) * 1000);
  }
  if (freshMs <= 0) return { notStored: 'origin_max_age_0' };
  return { freshMs };
}

/**
 * The origin headers kept with a cached entry: only those safe to replay to another request. Hop-by-hop
 * ones (including those the Connection header names), per-response ones (Age, X-Cache, Content-Length)
 * and per-request ones (isPerRequestHeader) are dropped.
 */
export function storedHeaders(
  headers: IncomingHttpHeaders,
  keepSetCookie: boolean,
): Array<[string, string | string[]]> {
  const kept: Array<[string, string | string[]]> = [];
  const connection = headerTokens(headers.connection);
  const named = connection.length > 0 ? new Set(connection) : undefined;
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if (NOT_STORED.has(name) && !(keepSetCookie && name === 'set-cookie')) continue;
    if (isPerRequestHeader(name) || named?.has(name)) continue;
    kept.push([name, value]);
  }
  return kept;
}
