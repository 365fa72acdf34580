import { PURGE_FENCE_MAX_LISTINGS, PURGE_FENCE_MS } from '@vantageedge/shared/cache-purge/purge-protocol';

/**
 * The in-memory store's purge fence (purgeFenceKey in Redis): when each of a tenant's listings (a tag
 * set, a path index) was last purged, so a fill whose origin was asked before that is not stored. Kept
 * PURGE_FENCE_MS; at most PURGE_FENCE_MAX_LISTINGS per tenant with the horizon, the latest time of
 * those that left, which counts for every listing.
 */
export class PurgeFence {
  readonly #tenants = new Map<string, { listings: Map<string, number>; horizon: number }>();

  readonly #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  purged(tenantId: string, listing: string): void {
    const at = this.#now();
    let fence = this.#tenants.get(tenantId);
    if (!fence) {
      fence = { listings: new Map(), horizon: Number.NEGATIVE_INFINITY };
      this.#tenants.set(tenantId, fence);
    }
    // Oldest first: a listing purged again moves to the back.
    fence.listings.delete(listing);
    fence.listings.set(listing, at);
    for (const [name, when] of fence.listings) {
      // Older than any fill under way: forgotten. Past the most listings: remembered in the horizon.
      const expired = when <= at - PURGE_FENCE_MS;
      if (!expired && fence.listings.size < PURGE_FENCE_MAX_LISTINGS) break;
      fence.listings.delete(name);
      if (!expired) fence.horizon = Math.max(fence.horizon, when);
    }
  }

  /** Whether one of `listings` of the tenant was purged at or after `askedAt`. */
  purgedSince(tenantId: string, listings: readonly string[], askedAt: number): boolean {
    const fence = this.#tenants.get(tenantId);
    if (!fence) return false;
    if (fence.horizon >= askedAt && fence.horizon > this.#now() - PURGE_FENCE_MS) return true;
    return listings.some((listing) => (fence.listings.get(listing) ?? Number.NEGATIVE_INFINITY) >= askedAt);
  }
}
