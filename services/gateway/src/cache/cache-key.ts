import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { CompiledCachePolicy } from './compile-cache-policy.js';

/** What the cache needs of a request: the path after normalisation (no query) and the raw query. */
export interface CacheRequest {
  readonly method: string;
  readonly path: string;
  /** Without the leading '?'; '' when none. */
  readonly query: string;
  readonly headers: IncomingHttpHeaders;
}

/** The authenticated caller, for routes whose cached responses are per caller. */
export interface CacheIdentity {
  readonly userId?: string | undefined;
  readonly apiKeyId?: string | undefined;
}

export function sortedQuery(query: string): string {
  if (query === '') return '';
  const params = [...new URLSearchParams(query)];
  params.sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return new URLSearchParams(params).toString();
}

function headerValue(headers: IncomingHttpHeaders, name: string): string {
  const value = headers[name];
  return value === undefined ? '' : Array.isArray(value) ? value.join(', ') : value;
}

/** Digest of the path alone: the unit unsafe methods invalidate. */
export function pathDigest(path: string): string {
  return createHash('sha256').update(path).digest('base64url').slice(0, 22);
}

/**
 * Digest of everything else that selects a variant. Each part is length-prefixed so no crafted value
 * can make two different requests collide (e.g. a query that imitates a header part).
 * Returns null when the route is per caller and the caller is anonymous (such a request is not cached).
 */
export function variantDigest(
  policy: CompiledCachePolicy,
  request: CacheRequest,
  identity: CacheIdentity,
): string | null {
  const hash = createHash('sha256');
  const part = (value: string) => hash.update(`${value.length}:${value}`);
  if (policy.keyPattern !== 'path') part(sortedQuery(request.query));
  for (const name of policy.varyHeaders) part(headerValue(request.headers, name));
  if (policy.perCaller) {
    if (identity.userId) part(`user:${identity.userId}`);
    else if (identity.apiKeyId) part(`key:${identity.apiKeyId}`);
    else return null;
  }
  return hash.digest('base64url').slice(0, 32);
}
