import type { IncomingHttpHeaders } from 'node:http';
import { cacheDirectives, deltaSeconds } from '../http/cache-directives.js';
import { headerList } from '../http/header-values.js';
import type { CompiledCachePolicy } from './compile-cache-policy.js';

/** What a client's Cache-Control asks of a stored response (RFC 9111 §5.2.1), in `standard` mode. */
export interface RequestFreshness {
  /** no-cache (or Pragma: no-cache without Cache-Control): never reuse without revalidation. */
  readonly noCache: boolean;
  readonly maxAgeMs: number | undefined;
  readonly minFreshMs: number | undefined;
  /** max-stale: Infinity without a value. */
  readonly maxStaleMs: number | undefined;
  /** Answer from the cache or with 504, never from the origin. */
  readonly onlyIfCached: boolean;
}

/**
 * The client's requirements, or null when it states none (the common case: one property read each for
 * Cache-Control and Pragma) or the policy does not honour them.
 */
export function requestFreshness(
  policy: CompiledCachePolicy,
  headers: IncomingHttpHeaders,
): RequestFreshness | null {
  const cacheControl = headers['cache-control'];
  if (cacheControl === undefined && headers.pragma === undefined) return null;
  if (policy.mode !== 'standard' || !policy.honorRequestCacheControl) return null;
  const directives = cacheDirectives(cacheControl);
  const pragmaNoCache =
    cacheControl === undefined && /(^|[\s,])no-cache([\s,]|$)/i.test(headerList(headers.pragma) ?? '');
  const seconds = (name: string) => {
    const value = deltaSeconds(directives.get(name));
    return value === undefined ? undefined : value * 1000;
  };
  const maxStale = directives.get('max-stale');
  const wanted: RequestFreshness = {
    noCache: pragmaNoCache || directives.has('no-cache'),
    maxAgeMs: seconds('max-age'),
    minFreshMs: seconds('min-fresh'),
    maxStaleMs: maxStale === undefined ? undefined : maxStale === '' ? Infinity : seconds('max-stale'),
    onlyIfCached: directives.has('only-if-cached'),
  };
  return wanted.noCache ||
    wanted.maxAgeMs !== undefined ||
    wanted.minFreshMs !== undefined ||
    wanted.maxStaleMs !== undefined ||
    wanted.onlyIfCached
    ? wanted
    : null;
}
