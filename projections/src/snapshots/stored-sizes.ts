/** Tenants whose stored size is remembered: a tenant forgotten is read again (one lookup by key). */
export const DEFAULT_STORED_SIZES = 65_536;

/**
 * The bytes of JSON of each tenant's snapshot as last stored (0 for a tombstone), the least recently
 * stored forgotten first beyond `maxTenants`. Unlike KeptSnapshots, which drops the largest snapshots
 * first, it keeps a large tenant's size once its snapshot is no longer kept.
 */
export class StoredSizes {
  readonly #maxTenants: number;
  readonly #sizes = new Map<string, number>();

  constructor(maxTenants = DEFAULT_STORED_SIZES) {
    this.#maxTenants = maxTenants;
  }

  /** The tenant's stored size; undefined when not known. */
  of(tenantId: string): number | undefined {
    return this.#sizes.get(tenantId);
  }

  record(tenantId: string, jsonBytes: number): void {
    this.#sizes.delete(tenantId);
    this.#sizes.set(tenantId, jsonBytes);
    for (const oldest of this.#sizes.keys()) {
      if (this.#sizes.size <= this.#maxTenants) break;
      this.#sizes.delete(oldest);
    }
  }
}
