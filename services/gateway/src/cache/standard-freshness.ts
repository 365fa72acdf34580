import type { IncomingHttpHeaders } from 'node:http';
import type { CompiledCachePolicy } from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import {
  cacheDirectives,
  deltaSeconds,
  MAX_DELTA_SECONDS,
  statedMaxAge,
} from '@vantageedge/shared/http/cache-directives';
import { headerList, singleHeader } from '@vantageedge/shared/http/header-values';
import { parseHttpDate } from '@vantageedge/shared/http/http-date';

/** What the storage rules decided for a response the cache may store. */
export interface Freshness {
  /** Freshness lifetime, counted from the response's birth (now minus its Age). */
  readonly freshMs: number;
  /** The response's age when it arrived (its Age header, RFC 9111 §4.2.3). */
  readonly ageMs: number;
  readonly staleWhileRevalidateMs: number;
  readonly staleIfErrorMs: number;
  /** must-revalidate / proxy-revalidate / no-cache: never served stale (no max-stale, no stale windows). */
  readonly mustRevalidate: boolean;
  /** RFC 8246: while fresh, a client's reload (no-cache, max-age=0) does not force a revalidation. */
  readonly immutable: boolean;
}

export type StorageDecision = Freshness | { readonly notStored: string };

/**
 * Statuses a cache may store without explicit freshness (RFC 9110 §15.1), partial content aside (206 is
 * never stored). Any other final status is stored with explicit freshness or `public` (RFC 9111 §3).
 */
const HEURISTICALLY_CACHEABLE: ReadonlySet<number> = new Set([
  200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501,
]);

/**
 * Whether a response may be stored by a shared cache (RFC 9111 §3) and its freshness (§4.2), in
 * `standard` mode; directive names are read in any case (§5.2: `Private` is `private`):
 * - never with no-store or private; with explicit freshness (s-maxage, max-age, Expires) whatever its
 *   final status (the policy's cacheable_statuses still decides which), else only with `public` or a
 *   heuristically cacheable status;
 * - the lifetime: s-maxage, else max-age, else Expires − Date (expiresLifetimeMs), else heuristic
 *   freshness when the policy allows it, at most ttl_seconds (heuristicFreshMs);
 * - `proxy-revalidate` means must-revalidate for a shared cache (§5.2.2.8);
 * - invalid freshness information (an s-maxage or max-age that is no delta-seconds or comes twice with
 *   different values, an Expires that is no HTTP-date or comes twice) makes the response stale
 *   (§4.2.1, §5.3), rather than reading `max-age=1.5` as 1 s, the last of two values, or any string
 *   Date.parse reads (`3000`) as a date;
 * - a `no-cache` response is stored only when it has a validator (it is revalidated on every use);
 * - stale windows: the origin's stale-while-revalidate / stale-if-error (RFC 5861), else the policy's;
 *   none when the response must be revalidated.
 */
export function standardFreshness(
  policy: CompiledCachePolicy,
  status: number,
  headers: IncomingHttpHeaders,
): StorageDecision {
  const directives = cacheDirectives(headers['cache-control']);
  const noCache = directives.has('no-cache');
  const hasValidator = headers.etag !== undefined || headers['last-modified'] !== undefined;
  if (directives.has('no-store') || directives.has('private')) return { notStored: 'origin_cache_control' };
  const explicitFreshness =
    directives.has('s-maxage') || directives.has('max-age') || headers.expires !== undefined;
  if (!explicitFreshness && !directives.has('public') && !HEURISTICALLY_CACHEABLE.has(status))
    return { notStored: 'status' };
  if (noCache && !hasValidator) return { notStored: 'origin_cache_control' };
  const stated = statedMaxAge(headers['cache-control']);
  let freshMs: number;
  if (noCache) freshMs = 0;
  // s-maxage and max-age override Expires (§5.3), an invalid one too.
  else if (stated !== undefined) freshMs = stated === 'invalid' ? 0 : stated * 1000;
  else if (headers.expires !== undefined) freshMs = expiresLifetimeMs(headers);
  else if (!policy.heuristicFreshness) freshMs = 0;
  else freshMs = heuristicFreshMs(policy, headers);
  freshMs = Math.floor(freshMs);
  const ageMs = (receivedAge(headers.age) ?? 0) * 1000;
  const mustRevalidate = noCache || directives.has('proxy-revalidate') || directives.has('must-revalidate');
  const originSwr = deltaSeconds(directives.get('stale-while-revalidate'));
  const originSie = deltaSeconds(directives.get('stale-if-error'));
  const staleWhileRevalidateMs = mustRevalidate
    ? 0
    : originSwr !== undefined
      ? originSwr * 1000
      : policy.staleWhileRevalidateMs;
  const staleIfErrorMs = mustRevalidate
    ? 0
    : originSie !== undefined
      ? originSie * 1000
      : policy.staleIfErrorMs;
  if (freshMs <= ageMs && !hasValidator && staleWhileRevalidateMs === 0 && staleIfErrorMs === 0)
    return { notStored: 'origin_max_age_0' };
  return {
    freshMs,
    ageMs,
    staleWhileRevalidateMs,
    staleIfErrorMs,
    mustRevalidate,
    immutable: directives.has('immutable'),
  };
}

/**
 * Expires − Date (RFC 9111 §4.2.1), both read as HTTP-dates: Date as the time of receipt when it is
 * none, and an Expires that is none or comes twice as already expired (§5.3). Date.parse, which the
 * library uses, reads an RFC 850 year `50` as 1950 (RFC 9110 §5.6.7: 2050), an asctime date in the
 * replica's time zone, and `1` as 2001.
 */
function expiresLifetimeMs(headers: IncomingHttpHeaders): number {
  const expires = httpDateOf(headers.expires);
  if (expires === undefined) return 0;
  const date = httpDateOf(headers.date) ?? Date.now();
  return Math.min(Math.max(0, expires - date), MAX_DELTA_SECONDS * 1000);
}

/**
 * Heuristic freshness (RFC 9111 §4.2.2), at most ttl_seconds: 10 % of the time between Last-Modified and
 * Date, so none for a resource modified at its Date or later (an origin's clock must not date a change
 * after the response, RFC 9110 §8.8.2.1); ttl_seconds without a Last-Modified that is an HTTP-date.
 */
function heuristicFreshMs(policy: CompiledCachePolicy, headers: IncomingHttpHeaders): number {
  const lastModified = httpDateOf(headers['last-modified']);
  if (lastModified === undefined) return policy.ttlMs;
  const date = httpDateOf(headers.date) ?? Date.now();
  return Math.min(policy.ttlMs, Math.max(0, date - lastModified) * HEURISTIC_FRACTION);
}

const HEURISTIC_FRACTION = 0.1;

/** A singleton date field (Date, Expires, Last-Modified) when it is sent once and is an HTTP-date. */
function httpDateOf(value: string | readonly string[] | undefined): number | undefined {
  const single = singleHeader(value);
  return single === undefined ? undefined : parseHttpDate(single);
}

/**
 * The Age a response arrived with (RFC 9111 §5.1): the first member of a list (`7200, 7200`, or one line
 * per cache that added one), or undefined when that is no delta-seconds. Ignoring the whole list instead
 * would serve an upstream cache's copy, already past its lifetime, as if it were new.
 */
function receivedAge(age: string | readonly string[] | undefined): number | undefined {
  const list = headerList(age);
  if (list === undefined) return undefined;
  const comma = list.indexOf(',');
  return deltaSeconds((comma < 0 ? list : list.slice(0, comma)).trim());
}
