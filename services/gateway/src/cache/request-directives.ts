import type { RequestFreshness } from '@vantageedge/shared/gateway-policies/request-freshness';
import type { CacheEntry } from './cache-entry.js';

/**
 * Whether a stored entry may answer a request without contacting the origin at `at`: 'HIT' while it is
 * fresh enough for the client, 'STALE' when the client accepts it stale (max-stale, never past
 * must-revalidate), null when it must be revalidated or fetched again. A fresh immutable entry ignores
 * the client's reload directives (no-cache, max-age).
 */
export function reusable(
  entry: CacheEntry,
  at: number,
  wanted: RequestFreshness | null,
): 'HIT' | 'STALE' | null {
  const age = at - entry.storedAt;
  const fresh = age < entry.freshMs;
  if (wanted === null) return fresh ? 'HIT' : null;
  if (!(fresh && entry.immutable)) {
    if (wanted.noCache) return null;
    // max-age=0 is a reload: revalidated even when stored this very millisecond (an age of 0).
    if (wanted.maxAgeMs !== undefined && (age > wanted.maxAgeMs || wanted.maxAgeMs === 0)) return null;
  }
  if (wanted.minFreshMs !== undefined && entry.freshMs - age < wanted.minFreshMs) return null;
  if (fresh) return 'HIT';
  if (wanted.maxStaleMs !== undefined && !entry.mustRevalidate && age - entry.freshMs <= wanted.maxStaleMs)
    return 'STALE';
  return null;
}
