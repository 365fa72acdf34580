/**
 * The part of a replica's in-memory cache (the L1, and the in-memory store without Redis) one tenant's
 * entries may hold: a quarter. A tenant past it loses its own least recently used entries; the bound of
 * the whole cache, when reached, takes the least recently used of all. So one tenant whose clients ask
 * for endless distinct URLs cannot push the others' entries out, unless four tenants do it together.
 */
export const TENANT_MEMORY_SHARE = 0.25;

/** The bytes one tenant may hold of `maxBytes`; throws unless `share` is in (0, 1]. */
export function tenantShareOf(maxBytes: number, share: number): number {
  if (!(share > 0 && share <= 1)) throw new RangeError(`tenant share must be in (0, 1], got ${share}`);
  return Math.max(1, Math.floor(maxBytes * share));
}
