import { type EvictionReason, MAX_EVICTIONS_PER_STORE } from './cache-store.js';

interface TenantShare {
  bytes: number;
  /** Stored keys and their sizes, least recently used first (Map order). */
  readonly sizes: Map<string, number>;
}

/**
 * Per-tenant byte accounting for the in-memory cache store: the same bound and LRU order the Redis
 * store keeps in its tenant-bound keys. The owner deletes the victims `admit` names (and calls
 * `forget` for every key that leaves the store, whatever the reason).
 */
export class TenantByteBound {
  readonly #tenants = new Map<string, TenantShare>();

  /**
   * Records `key` (now the most recently used) and names the least recently used keys to evict, at most
   * MAX_EVICTIONS_PER_STORE. A tenant within its bound without the entry takes it, even when those
   * evictions leave it over by up to the entry (later writes evict it back); a tenant over its bound
   * even without it does not admit `key` (nor keep it, if it was there): entries as large as the
   * bound, each paid for by a few small ones, would pile up past it.
   */
  admit(
    tenantId: string,
    key: string,
    size: number,
    maxBytes: number,
  ): { victims: string[]; admitted: boolean } {
    let share = this.#tenants.get(tenantId);
    if (!share) {
      share = { bytes: 0, sizes: new Map() };
      this.#tenants.set(tenantId, share);
    }
    share.bytes += size - (share.sizes.get(key) ?? 0);
    share.sizes.delete(key);
    share.sizes.set(key, size);
    const victims: string[] = [];
    let over = share.bytes;
    for (const [candidate, candidateSize] of share.sizes) {
      if (over <= maxBytes || victims.length >= MAX_EVICTIONS_PER_STORE || candidate === key) break;
      victims.push(candidate);
      over -= candidateSize;
    }
    return { victims, admitted: over - size <= maxBytes };
  }

  /**
   * The tenant's least recently used keys to evict for its bytes to be within `maxBytes` (a bound
   * lowered since they were stored), without a write: each is still the owner's to delete and forget.
   */
  overBound(tenantId: string, maxBytes: number): string[] {
    const share = this.#tenants.get(tenantId);
    const victims: string[] = [];
    if (share === undefined) return victims;
    let over = share.bytes;
    for (const [candidate, candidateSize] of share.sizes) {
      if (over <= maxBytes) break;
      victims.push(candidate);
      over -= candidateSize;
    }
    return victims;
  }

  /** A read of `key`: it becomes the tenant's most recently used. */
  touch(tenantId: string, key: string): void {
    const sizes = this.#tenants.get(tenantId)?.sizes;
    const size = sizes?.get(key);
    if (sizes === undefined || size === undefined) return;
    sizes.delete(key);
    sizes.set(key, size);
  }

  forget(tenantId: string, key: string): void {
    const share = this.#tenants.get(tenantId);
    const size = share?.sizes.get(key);
    if (share === undefined || size === undefined) return;
    share.sizes.delete(key);
    share.bytes -= size;
    if (share.sizes.size === 0) this.#tenants.delete(tenantId);
  }
}

export type { EvictionReason };
