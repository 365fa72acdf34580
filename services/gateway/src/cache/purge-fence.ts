import { PURGE_FENCE_MAX_LISTINGS, PURGE_FENCE_MS } from '@vantageedge/shared/cache-purge/purge-protocol';

/**
 * The in-memory store's purge fence (purgeFenceKey in Redis): when each of a tenant's listings (a tag
 * set, a path index) was last purged, so a fill whose origin was asked before that is not stored. Kept
 * PURGE_FENCE_MS; at most `maxListings` per tenant with the horizon, the latest time of those that
 * left, which counts for every listing. Also each replica's record of the purge messages it heard, for
 * the fills it keeps in its L1 only (purge-generations.ts).
 */
export class PurgeFence {
  /** Least recently purged first: a tenant's fence is forgotten PURGE_FENCE_MS after its last purge. */
  readonly #tenants = new Map<string, { listings: Map<string, number>; horizon: number; last: number }>();

  readonly #now: () => number;
  readonly #maxListings: number;

  constructor(now: () => number, maxListings = PURGE_FENCE_MAX_LISTINGS) {
    this.#now = now;
    this.#maxListings = maxListings;
  }

  purged(tenantId: string, listing: string): void {
    const at = this.#now();
    const fence = this.#tenants.get(tenantId) ?? {
      listings: new Map<string, number>(),
      horizon: Number.NEGATIVE_INFINITY,
      last: at,
    };
    this.#tenants.delete(tenantId);
    this.#tenants.set(tenantId, fence);
    fence.last = at;
    // Oldest first: a listing purged again moves to the back.
    fence.listings.delete(listing);
    fence.listings.set(listing, at);
    for (const [name, when] of fence.listings) {
      // Older than any fill under way: forgotten. Past the most listings: remembered in the horizon.
      const expired = when <= at - PURGE_FENCE_MS;
      if (!expired && fence.listings.size < this.#maxListings) break;
      fence.listings.delete(name);
      if (!expired) fence.horizon = Math.max(fence.horizon, when);
    }
    // As the Redis fence's TTL: the tenants that purged nothing for that long hold nothing.
    for (const [id, { last }] of this.#tenants) {
      if (last > at - PURGE_FENCE_MS) break;
      this.#tenants.delete(id);
    }
  }

  /** The listings held, every tenant's: what the fence costs in memory. */
  get size(): number {
    let listings = 0;
    for (const fence of this.#tenants.values()) listings += fence.listings.size;
    return listings;
  }

  /** Whether any listing of the tenant was purged at or after `askedAt`. */
  anyPurgedSince(tenantId: string, askedAt: number): boolean {
    const fence = this.#tenants.get(tenantId);
    return fence !== undefined && fence.last >= askedAt && fence.last > this.#now() - PURGE_FENCE_MS;
  }

  /** Whether one of `listings` of the tenant was purged at or after `askedAt`. */
  purgedSince(tenantId: string, listings: readonly string[], askedAt: number): boolean {
    const fence = this.#tenants.get(tenantId);
    if (!fence || fence.last < askedAt || fence.last <= this.#now() - PURGE_FENCE_MS) return false;
    if (fence.horizon >= askedAt && fence.horizon > this.#now() - PURGE_FENCE_MS) return true;
    return listings.some((listing) => (fence.listings.get(listing) ?? Number.NEGATIVE_INFINITY) >= askedAt);
  }
}
