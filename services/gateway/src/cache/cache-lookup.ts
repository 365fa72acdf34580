import type { CacheEntry } from './cache-entry.js';
import type { CacheFill } from './cache-fill.js';

export type CacheOutcome = 'HIT' | 'STALE' | 'MISS' | 'BYPASS';
/** What X-Cache says: a lookup's outcome, or REVALIDATED when the origin confirmed a stale entry (304). */
export type ServedOutcome = 'HIT' | 'STALE' | 'REVALIDATED';

export type CacheLookup =
  | { readonly outcome: 'HIT'; readonly entry: CacheEntry; readonly key: string }
  /** Served stale (stale-while-revalidate). When `revalidation` is set this request should refresh the
   *  entry in the background: fetch the origin and call store(revalidation, response). */
  | {
      readonly outcome: 'STALE';
      readonly entry: CacheEntry;
      readonly key: string;
      readonly revalidation: CacheFill | null;
    }
  /** Go to the origin. With `fill`, this request is the leader: store(fill, …) or abandon(fill) afterwards;
   *  concurrent requests for the key wait for it. `staleIfError`: serve it if the origin fails. */
  | {
      readonly outcome: 'MISS';
      readonly key: string;
      readonly fill: CacheFill | null;
      readonly staleIfError: CacheEntry | null;
    }
  | { readonly outcome: 'BYPASS'; readonly reason: string };
