/**
 * 2 MiB of JSON per second and tenant. Decoding a snapshot costs each gateway replica some 17 ms of
 * blocked event loop per MiB of JSON (gunzip and JSON.parse: ~400 ms at the 24 MiB budget), so at this
 * rate one tenant's churn holds every replica's event loop at most ~3.5 % of the time, while a tenant
 * at the budget still goes live every 12 s and one of 100 KB within 50 ms.
 */
export const DEFAULT_TENANT_PUBLISH_BYTES_PER_SECOND = 2 * 1024 * 1024;

interface TenantPace {
  /** When the tenant's next snapshot may be published (performance.now() ms). */
  notBefore: number;
  /** When a pending version was first held back, until it is published. */
  heldSince?: number;
}

/**
 * Per-tenant pacing of snapshot publications, in memory (after a restart the first publication of each
 * tenant is immediate): after a snapshot of S bytes of JSON is published, the tenant's next one waits
 * S ÷ `bytesPerSecond` seconds. Tombstones are not paced: the caller publishes them whenever they come.
 * Holds an entry only for tenants still inside their window or held back.
 */
export class PublishPacing {
  readonly #bytesPerSecond: number;
  readonly #now: () => number;
  readonly #tenants = new Map<string, TenantPace>();

  /** `bytesPerSecond` 0: no pacing. */
  constructor(bytesPerSecond: number, now: () => number = () => performance.now()) {
    this.#bytesPerSecond = bytesPerSecond;
    this.#now = now;
  }

  /** Tenants inside their window now (forgets those whose window passed and that hold nothing back). */
  waitingCount(): number {
    const now = this.#now();
    let waiting = 0;
    for (const [tenantId, pace] of this.#tenants) {
      if (pace.notBefore > now) waiting += 1;
      else if (pace.heldSince === undefined) this.#tenants.delete(tenantId);
    }
    return waiting;
  }

  /** Milliseconds until the tenant's pending snapshot may be published; 0: now (else it is held back). */
  hold(tenantId: string): number {
    const pace = this.#tenants.get(tenantId);
    if (!pace) return 0;
    const now = this.#now();
    const wait = pace.notBefore - now;
    if (wait <= 0) return 0;
    pace.heldSince ??= now;
    return wait;
  }

  /**
   * The tenant's snapshot of `jsonBytes` was published: starts its next window. Returns how long this
   * one was held back (ms), or undefined if it was not.
   */
  published(tenantId: string, jsonBytes: number): number | undefined {
    const now = this.#now();
    const heldSince = this.#tenants.get(tenantId)?.heldSince;
    if (this.#bytesPerSecond > 0) {
      this.#tenants.set(tenantId, { notBefore: now + (jsonBytes / this.#bytesPerSecond) * 1000 });
    }
    return heldSince === undefined ? undefined : now - heldSince;
  }

  /** The tenant's tombstone was published, or its version refused: nothing of it to pace. */
  forget(tenantId: string): void {
    this.#tenants.delete(tenantId);
  }
}
