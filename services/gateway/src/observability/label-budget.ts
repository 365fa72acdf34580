/** The label of the series of a tenant's keys past its share of a label budget. */
export const FOLDED_LABEL = 'other';

export interface LabelBudgetOptions {
  /** Keys that may be a label of their own on this replica at once, over all tenants. */
  maxLabels: number;
  /** The part of `maxLabels` one tenant may hold, in (0, 1]. */
  tenantShare: number;
}

/**
 * Which keys of the tenants (routes, upstream targets) are a label of their own in /metrics. Each such
 * label costs every scrape of every replica a set of series, so the replica holds at most `maxLabels`
 * of them and one tenant at most its share; a key admitted past either bound is counted under
 * FOLDED_LABEL in its tenant (the tenant's totals stay exact). A key keeps its label until released; a
 * folded key gets its own label when it is next admitted with room to spare.
 */
export class LabelBudget {
  readonly #maxLabels: number;
  readonly #maxPerTenant: number;
  /** Keys holding a label, by tenant. */
  readonly #labelled = new Map<string, Set<string>>();
  /** Keys folded into FOLDED_LABEL, by tenant. */
  readonly #folded = new Map<string, Set<string>>();
  #held = 0;

  constructor(options: LabelBudgetOptions) {
    this.#maxLabels = options.maxLabels;
    this.#maxPerTenant = Math.max(1, Math.floor(options.maxLabels * options.tenantShare));
  }

  /** Whether the key is (now) a label of its own; if not, it is folded. */
  admit(tenant: string, key: string): boolean {
    const labelled = this.#labelled.get(tenant);
    if (labelled?.has(key)) return true;
    if (this.#held < this.#maxLabels && (labelled?.size ?? 0) < this.#maxPerTenant) {
      if (labelled === undefined) this.#labelled.set(tenant, new Set([key]));
      else labelled.add(key);
      this.#held++;
      this.#remove(this.#folded, tenant, key);
      return true;
    }
    let folded = this.#folded.get(tenant);
    if (folded === undefined) {
      folded = new Set();
      this.#folded.set(tenant, folded);
    }
    folded.add(key);
    return false;
  }

  /** The tenant now has only the keys `isLive` accepts (no `isLive`: it was removed); the others' labels are free. */
  release(tenant: string, isLive?: (key: string) => boolean): void {
    for (const keys of [this.#labelled, this.#folded]) {
      for (const key of [...(keys.get(tenant) ?? [])]) {
        if (isLive?.(key)) continue;
        this.releaseKey(tenant, key);
      }
    }
  }

  /** The key left its tenant: its label, if it held one, is free. */
  releaseKey(tenant: string, key: string): void {
    if (this.#remove(this.#labelled, tenant, key)) this.#held--;
    this.#remove(this.#folded, tenant, key);
  }

  /** Keys folded into FOLDED_LABEL, by tenant. */
  folded(): Iterable<[string, number]> {
    return [...this.#folded].map(([tenant, keys]) => [tenant, keys.size]);
  }

  #remove(keys: Map<string, Set<string>>, tenant: string, key: string): boolean {
    const ofTenant = keys.get(tenant);
    if (ofTenant === undefined || !ofTenant.delete(key)) return false;
    if (ofTenant.size === 0) keys.delete(tenant);
    return true;
  }
}
