import type { IncomingHttpHeaders } from 'node:http';
import { isCompleteResponseStatus } from '@vantageedge/shared/domain/gateway-config';
import type { CompiledCachePolicy } from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import { contentCodings, requestAcceptedCodings } from '@vantageedge/shared/http/accept-encoding';
import { statedMaxAge } from '@vantageedge/shared/http/cache-directives';
import { isEventStream } from '@vantageedge/shared/http/event-streams';
import { headerList, singleHeader } from '@vantageedge/shared/http/header-values';
import { originSeesGatewayValue } from '../proxy/forwarded-headers.js';
import { HOP_BY_HOP_HEADERS } from '../proxy/hop-by-hop.js';
import { type StorageDecision, standardFreshness } from './standard-freshness.js';

// Compiled once at module load (hot path: no per-request regex compilation).
const NOT_STORABLE = /(^|[\s,])(no-store|private|no-cache)([\s,=]|$)/;
/**
 * Directives that let a shared cache store a response to a request with Authorization (RFC 9111 §3.5),
 * and here with a Cookie or a credential header of the origin's own too: they personalise an answer as much.
 */
const SHARED_WITH_CREDENTIALS = /(^|[\s,])(public|s-maxage|must-revalidate)([\s,=]|$)/;

/** A response as the proxy received it from the origin, with the body collected. */
export interface UpstreamResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** null when the body was larger than policy.maxBodyBytes (the proxy stopped collecting). */
  readonly body: Buffer | null;
}

/** Hop-by-hop and per-response framing/cache headers: never stored, always recomputed. */
const NOT_STORED = new Set([...HOP_BY_HOP_HEADERS, 'age', 'x-cache', 'set-cookie', 'content-length']);

/**
 * Headers that belong to one request/response exchange, whoever set them (the gateway, or an origin
 * echoing them): replaying them on a HIT would answer with the filling request's request id, trace
 * context, identity, rate-limit or quota state or timings. The current request's own values are set fresh
 * by the pipeline (X-Request-Id, RateLimit*, X-Quota-*, X-Cache, Age); replayed, a stored X-Quota-* (an
 * origin reporting a quota of its own) would overwrite what is left of the caller's.
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
const PER_REQUEST_PREFIXES = ['x-vantageedge-', 'x-ratelimit-', 'x-quota-'];

/** True for a (lower-case) header name that belongs to one exchange and must not be replayed from a cache. */
export function isPerRequestHeader(name: string): boolean {
  if (PER_REQUEST.has(name)) return true;
  for (const prefix of PER_REQUEST_PREFIXES) if (name.startsWith(prefix)) return true;
  return false;
}

/** What of the request that filled an entry decides whether its response may be stored. */
export interface FillingRequest {
  /** The request carried Authorization (as the origin received it). */
  readonly authorized: boolean;
  /** The request carried a Cookie (as the origin received it): a session may have personalised the answer. */
  readonly withCookie: boolean;
  /**
   * The client's credential headers other than Authorization and Cookie the request carried (X-Auth-Token,
   * Api-Key, …: clientCredentialHeaders), by the names origins read them as; none when absent.
   */
  readonly credentialHeaders?: readonly string[];
  /**
   * The request carried a credential query parameter (`access_token`, `api_key`, …) on a route whose key
   * leaves the query out (cache_key_pattern `path`): the origin may have answered that caller.
   */
  readonly credentialQuery?: boolean;
  /** The request's headers as the origin received them: an encoded response must be in a coding they accept. */
  readonly headers?: IncomingHttpHeaders;
}

const ANONYMOUS_REQUEST: FillingRequest = { authorized: false, withCookie: false };

/**
 * The most fields a stored response may vary on (real ones vary on a few). Every lookup of its URL, a
 * HIT too, reads each of them from the request: an origin varying on 2,000 names made each request
 * for that URL cost ≈300 µs of the replica's event loop.
 */
export const MAX_STORED_VARY_FIELDS = 32;

/**
 * The request header fields a response varies on (its Vary, lower-case, sorted, without hop-by-hop
 * fields the origin never receives), or '*' when it varies on something else than headers. A response
 * with a Content-Encoding varies on Accept-Encoding whether its Vary says so or not: an origin that
 * compresses on request and forgets the Vary would otherwise have one client's coding (gzip, br, zstd)
 * served to every client, including those that cannot decode it. Likewise one whose
 * Access-Control-Allow-Origin names a site (not `*`) varies on Origin: an origin reflecting the request's
 * Origin without saying so would otherwise have the site of whichever client filled the entry (any
 * client can send any Origin) named to every other site's browsers, which then refuse the answer.
 */
export function responseVary(headers: IncomingHttpHeaders): readonly string[] | '*' {
  const vary = headerList(headers.vary);
  const names = new Set<string>();
  for (const token of vary?.split(',') ?? []) {
    const name = token.trim().toLowerCase();
    if (name === '*') return '*';
    if (name !== '' && !HOP_BY_HOP_HEADERS.has(name)) names.add(name);
  }
  if (isEncoded(headers)) names.add('accept-encoding');
  if (namesSite(headers)) names.add('origin');
  return [...names].sort();
}

/** The response's Access-Control-Allow-Origin is there and is not `*` (the same for every site). */
function namesSite(headers: IncomingHttpHeaders): boolean {
  const allowed = headerList(headers['access-control-allow-origin'])?.trim();
  return allowed !== undefined && allowed !== '*';
}

/**
 * Why an encoded response may not be stored. Its variant is selected by which of the codings the key
 * knows a client accepts (varySelector: br, compress, deflate, gzip, zstd), so a coding of the origin's
 * own would reach clients of that variant that cannot decode it, and so would one the filling request
 * did not accept (its origin read the request otherwise than the key does, `gzip;q=0` as gzip).
 */
function codingRefusal(
  headers: IncomingHttpHeaders,
  request: FillingRequest,
): 'other_content_encoding' | 'content_encoding_not_accepted' | undefined {
  const list = headerList(headers['content-encoding']);
  if (list === undefined) return undefined;
  const applied = contentCodings(list);
  if (applied === null) return 'other_content_encoding';
  const accepted = request.headers === undefined ? undefined : requestAcceptedCodings(request.headers);
  if (accepted !== undefined && (applied & ~accepted) !== 0) return 'content_encoding_not_accepted';
  return undefined;
}

/** The body is in a content coding (anything but `identity`), which the client had to accept. */
function isEncoded(headers: IncomingHttpHeaders): boolean {
  const coding = headerList(headers['content-encoding'])?.trim().toLowerCase();
  return coding !== undefined && coding !== '' && coding !== 'identity';
}

/**
 * How long the response may be served fresh, or a reason it must not be stored (the storage rules of
 * a shared cache, RFC 9111 §3): `Vary: *` is never stored, nor a Vary naming a header the gateway
 * writes or drops toward the origin (originSeesGatewayValue); a response to a request with Authorization,
 * a Cookie or another credential header is stored only where the policy keys the cache per caller or
 * declares it shared, or when the origin allows it (public, s-maxage, must-revalidate; for a Cookie or
 * another credential header also a Vary naming it).
 * Freshness: standardFreshness in `standard` mode; in `override` mode the policy's TTL, capped by
 * s-maxage (else max-age; an invalid one: stale), and no-store, private and no-cache prevent storing.
 */
export function freshnessFor(
  policy: CompiledCachePolicy,
  method: string,
  response: UpstreamResponse,
  request: FillingRequest = ANONYMOUS_REQUEST,
): StorageDecision {
  if (method !== 'GET') return { notStored: 'method' };
  if (!isStorableStatus(policy, response.status)) return { notStored: 'status' };
  if (response.body === null || response.body.length > policy.maxBodyBytes)
    return { notStored: 'body_too_large' };
  return storageDecision(policy, method, response.status, response.headers, request);
}

/** The policy lists it, and it is a complete response (a snapshot may predate the control plane's rule). */
function isStorableStatus(policy: CompiledCachePolicy, status: number): boolean {
  return policy.cacheableStatuses.has(status) && isCompleteResponseStatus(status);
}

/**
 * freshnessFor without the body: what status and headers alone decide, so a fill can give up before
 * buffering a body it would not store. A Content-Length above the policy's max_body_bytes counts.
 */
export function storageDecision(
  policy: CompiledCachePolicy,
  method: string,
  status: number,
  headers: IncomingHttpHeaders,
  request: FillingRequest = ANONYMOUS_REQUEST,
): StorageDecision {
  if (method !== 'GET') return { notStored: 'method' };
  if (!isStorableStatus(policy, status)) return { notStored: 'status' };
  const length = declaredLength(headers);
  if (length !== undefined && length > policy.maxBodyBytes) return { notStored: 'body_too_large' };
  if (headers['set-cookie'] !== undefined && !policy.cacheSetCookie) return { notStored: 'set_cookie' };
  // An instruction to one browser (clear its cookies, storage, cache): replayed from the cache it would
  // clear every client that gets the entry.
  if (headers['clear-site-data'] !== undefined) return { notStored: 'clear_site_data' };
  // Events as they happen, usually endless: collected, the stream would hold the clients coalesced
  // behind it until their wait ran out, and an ended one replayed would hand old events out as new.
  if (isEventStream(headers['content-type'])) return { notStored: 'event_stream' };
  const vary = responseVary(headers);
  if (vary === '*') return { notStored: 'vary_star' };
  if (vary.length > MAX_STORED_VARY_FIELDS) return { notStored: 'vary_too_many_fields' };
  // The origin's answer depends on a value the gateway gave it (X-Forwarded-Proto, X-Real-IP, …), not
  // the client's: keyed on the client's value (absent for nearly everyone) it would be served to all.
  if (vary.some(originSeesGatewayValue)) return { notStored: 'vary_gateway_header' };
  const codings = codingRefusal(headers, request);
  if (codings !== undefined) return { notStored: codings };
  const cacheControl = headerList(headers['cache-control'])?.toLowerCase();
  const unshared = credentialsRefusal(policy, cacheControl, vary, request);
  if (unshared !== undefined) return { notStored: unshared };
  if (policy.mode === 'standard') return standardFreshness(policy, status, headers);
  let freshMs = policy.ttlMs;
  if (cacheControl) {
    if (NOT_STORABLE.test(cacheControl)) return { notStored: 'origin_cache_control' };
    // Invalid freshness information makes the response stale (RFC 9111 §4.2.1), in this mode too.
    const maxAge = statedMaxAge(cacheControl);
    if (maxAge !== undefined) freshMs = maxAge === 'invalid' ? 0 : Math.min(freshMs, maxAge * 1000);
  }
  if (freshMs <= 0) return { notStored: 'origin_max_age_0' };
  return {
    freshMs,
    ageMs: 0,
    staleWhileRevalidateMs: policy.staleWhileRevalidateMs,
    staleIfErrorMs: policy.staleIfErrorMs,
    mustRevalidate: false,
    immutable: false,
  };
}

/**
 * storageDecision for a stored response updated by the origin's 304 (RFC 9111 §4.3.4): `merged` is the
 * stored response with the 304's fields. A 304 to a request with Authorization or a Cookie answers
 * that caller, so on a public route the origin's consent to share it must be in the 304's own
 * Cache-Control (a 304 repeats the one its 200 would carry, RFC 9110 §15.4.5), not in the stored
 * response another request filled: else the caller's fields and lifetime would reach everyone.
 */
export function revalidatedStorageDecision(
  policy: CompiledCachePolicy,
  status: number,
  merged: IncomingHttpHeaders,
  notModified: IncomingHttpHeaders,
  request: FillingRequest,
): StorageDecision {
  const vary = responseVary(merged);
  const consent = headerList(notModified['cache-control'])?.toLowerCase();
  const unshared = vary === '*' ? undefined : credentialsRefusal(policy, consent, vary, request);
  if (unshared !== undefined) return { notStored: unshared };
  return storageDecision(policy, 'GET', status, merged, request);
}

/**
 * Why a response to this request may not be shared: it carried Authorization, a Cookie, another
 * credential header (X-Auth-Token, Api-Key, …) or a credential query parameter the key leaves out
 * (credentialQuery) on a route keyed for every caller, and the origin's
 * Cache-Control gave no consent (RFC 9111 §3.5), nor for a Cookie or another credential header a key on it.
 */
function credentialsRefusal(
  policy: CompiledCachePolicy,
  cacheControl: string | undefined,
  vary: readonly string[],
  request: FillingRequest,
): 'authorization' | 'cookie' | 'credential_header' | 'credential_query' | undefined {
  if (!policy.credentialsNeedOriginConsent || SHARED_WITH_CREDENTIALS.test(cacheControl ?? ''))
    return undefined;
  if (request.authorized) return 'authorization';
  if (request.credentialQuery === true) return 'credential_query';
  if (request.withCookie && !keyedOn(policy, vary, 'cookie')) return 'cookie';
  if (request.credentialHeaders?.some((name) => !keyedOn(policy, vary, name))) return 'credential_header';
  return undefined;
}

/** The entry is selected by the request's `name` header (the origin's Vary or the policy's vary_headers name it). */
function keyedOn(policy: CompiledCachePolicy, vary: readonly string[], name: string): boolean {
  return vary.includes(name) || policy.varyHeaders.includes(name);
}

/** The body length the origin declared (Content-Length), when it is one valid number. */
export function declaredLength(headers: IncomingHttpHeaders): number | undefined {
  const value = singleHeader(headers['content-length']);
  if (value === undefined || !/^\d{1,15}$/.test(value)) return undefined;
  return Number(value);
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
  const connection = headerList(headers.connection);
  const named = connection
    ? new Set(connection.split(',').map((token) => token.trim().toLowerCase()))
    : undefined;
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if (NOT_STORED.has(name) && !(keepSetCookie && name === 'set-cookie')) continue;
    if (isPerRequestHeader(name) || named?.has(name)) continue;
    kept.push([name, value]);
  }
  return kept;
}
