/**
 * The part of the replica's fill budget one tenant's fills may hold together: a quarter. One tenant
 * (a slow or hostile origin, many unique URLs) can take at most this much; the rest stays for the others.
 */
export const TENANT_FILL_SHARE = 0.25;

/**
 * How long a fill may collect its body, from the response's headers to its end. A fill that runs past it
 * stops collecting and gives its bytes back (the response keeps streaming to its client, uncached): an
 * origin that trickles a body just under its idle timeout cannot hold budget for longer than this.
 */
export const FILL_DEADLINE_MS = 30_000;

/**
 * The memory all in-flight cache fills of one replica may buffer together (client fills and background
 * refreshes alike). A fill reserves bytes as they arrive, never a length the origin only announces, and
 * releases them when it stores or gives up; a fill that cannot reserve more stops collecting, and its
 * response streams through uncached. Each tenant's fills together hold at most `tenantShare` of the
 * budget. Without it, unique query strings (every request a fill) times max_body_bytes (up to 64 MiB
 * each) would be the replica's memory bound.
 */
export class FillBudget {
  readonly #limit: number;
  readonly #tenantLimit: number;
  readonly #tenants = new Map<string, number>();
  #used = 0;

  constructor(limitBytes: number, tenantShare = TENANT_FILL_SHARE) {
    this.#limit = limitBytes;
    this.#tenantLimit = Math.max(1, Math.floor(limitBytes * tenantShare));
  }

  get used(): number {
    return this.#used;
  }

  /** The most one tenant's fills may hold together. */
  get tenantLimit(): number {
    return this.#tenantLimit;
  }

  /** What the tenant's fills hold right now. */
  usedBy(tenantId: string): number {
    return this.#tenants.get(tenantId) ?? 0;
  }

  /** What one more fill of the tenant could reserve right now (its share and the replica's budget). */
  available(tenantId: string): number {
    return Math.max(0, Math.min(this.#limit - this.#used, this.#tenantLimit - this.usedBy(tenantId)));
  }

  /** Reserves `bytes` for the tenant if they fit its share and the budget; false (nothing reserved) otherwise. */
  tryReserve(tenantId: string, bytes: number): boolean {
    if (bytes > this.available(tenantId)) return false;
    this.#used += bytes;
    this.#tenants.set(tenantId, this.usedBy(tenantId) + bytes);
    return true;
  }

  /** True while nothing at all could be reserved for the tenant. */
  exhaustedFor(tenantId: string): boolean {
    return this.available(tenantId) <= 0;
  }

  release(tenantId: string, bytes: number): void {
    if (bytes <= 0) return;
    this.#used = Math.max(0, this.#used - bytes);
    const left = this.usedBy(tenantId) - bytes;
    if (left > 0) this.#tenants.set(tenantId, left);
    else this.#tenants.delete(tenantId);
  }
}
