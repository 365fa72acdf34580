interface TenantFailures {
  /** Sends that failed in a row with this tenant in them. */
  count: number;
  /** When the tenant may be sent again (performance.now() ms). */
  notBefore: number;
}

/**
 * The tenants whose sends failed, each with its own back-off, so that tenants that cannot be written
 * do not hold up those that can. A Kafka send fails as a whole when one of its partitions cannot take
 * a write (no leader, too few in-sync replicas): retried as the same batch, one tenant on such a
 * partition would keep every tenant sent with it, and every tenant after them, off the topic. Here a
 * tenant waits `baseDelayMs`, doubled at each failure up to `maxDelayMs`, and goes in ever smaller
 * batches (half the size at each failure), so the tenants sent beside one that cannot be written
 * leave it after a few failures, and it ends up sent alone. In memory: after a restart every pending
 * tenant is tried again at once.
 *
 * When the whole bus is down, every send fails and every pending tenant ends up sent alone, which
 * would keep it so once the bus is back (a send and a transaction per tenant). So when sends of
 * different tenants each sent alone failed with no send succeeding in between, the failures are the
 * bus's, not the tenants': the next send that succeeds forgives every tenant that failed since the
 * last success (sent at once, in full batches). A single tenant that cannot be written fails alone
 * among sends of others that succeed, and keeps its back-off.
 */
export class FailedSends {
  readonly #tenants = new Map<string, TenantFailures>();
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #now: () => number;
  /** Tenants of the sends that failed since the last one that succeeded. */
  readonly #sinceSuccess = new Set<string>();
  /** Of those, the tenants whose send failed with them alone in it. */
  readonly #failedAlone = new Set<string>();

  constructor(baseDelayMs: number, maxDelayMs: number, now: () => number = () => performance.now()) {
    this.#baseDelayMs = baseDelayMs;
    this.#maxDelayMs = maxDelayMs;
    this.#now = now;
  }

  /** A send of these tenants failed. */
  failed(tenantIds: readonly string[]): void {
    const now = this.#now();
    for (const tenantId of tenantIds) {
      const count = (this.#tenants.get(tenantId)?.count ?? 0) + 1;
      const delay = Math.min(this.#baseDelayMs * 2 ** (count - 1), this.#maxDelayMs);
      this.#tenants.set(tenantId, { count, notBefore: now + delay });
      this.#sinceSuccess.add(tenantId);
    }
    if (tenantIds.length === 1) this.#failedAlone.add(tenantIds[0]!);
  }

  /**
   * The bus answered a send of these tenants: they are forgotten, and when the sends that failed before
   * it were the bus's failures (see the class), so are those sends' tenants.
   */
  succeeded(tenantIds: readonly string[]): void {
    if (this.#failedAlone.size >= 2)
      for (const tenantId of this.#sinceSuccess) this.#tenants.delete(tenantId);
    this.#sinceSuccess.clear();
    this.#failedAlone.clear();
    for (const tenantId of tenantIds) this.forget(tenantId);
  }

  /** The tenant's version was sent, or refused for good: nothing to retry. */
  forget(tenantId: string): void {
    this.#tenants.delete(tenantId);
  }

  /** Milliseconds until the tenant may be sent again; 0: now. */
  hold(tenantId: string): number {
    const failures = this.#tenants.get(tenantId);
    return failures === undefined ? 0 : Math.max(0, failures.notBefore - this.#now());
  }

  /** The most tenants a batch with this tenant in it may hold: `batchSize` halved at each failure. */
  batchLimit(tenantId: string, batchSize: number): number {
    const count = this.#tenants.get(tenantId)?.count ?? 0;
    return Math.max(1, Math.floor(batchSize / 2 ** count));
  }

  /** Tenants waiting for their back-off to end. */
  waitingCount(): number {
    const now = this.#now();
    let waiting = 0;
    for (const failures of this.#tenants.values()) if (failures.notBefore > now) waiting += 1;
    return waiting;
  }
}
