/**
 * How much of a replica's event loop each tenant's config applies may take. Every replica compiles
 * every version of every tenant, and a tenant admin decides what a version costs (1,000 routes of
 * deep patterns: 50–300 ms of compiling each) and how often there is one (publication pacing lets a
 * 1 MB tenant publish about twice a second): without a bound one tenant could keep a third of every
 * replica's time, which every other tenant's requests wait behind.
 *
 * A token bucket of milliseconds per tenant: it holds at most `burstMs`, refills at `share` of the
 * clock, and each apply takes what it cost. While a tenant's bucket is in debt its next apply waits
 * (the config plane keeps only its newest version meanwhile), so in the long run its applies use at
 * most `share` of the replica's time, and a tenant whose applies cost a few ms never waits. A debt is
 * never more than `maxWaitMs` of refill: one very costly apply (the config plane charges its
 * main-thread CPU time) does not hold the tenant's next change back for minutes.
 */
export class TenantApplyBudget {
  readonly #share: number;
  readonly #burstMs: number;
  readonly #floor: number;
  readonly #now: () => number;
  /** Tenants whose bucket is not full, with its balance at `at` (a full bucket is not kept). */
  readonly #buckets = new Map<string, { balance: number; at: number }>();
  #sweepAt = MIN_SWEEP_SIZE;

  constructor(options: { share: number; burstMs: number; maxWaitMs: number; now: () => number }) {
    if (!(options.share > 0 && options.share <= 1)) throw new RangeError('share must be in (0, 1]');
    this.#share = options.share;
    this.#burstMs = Math.max(0, options.burstMs);
    this.#floor = -Math.max(0, options.maxWaitMs) * options.share;
    this.#now = options.now;
  }

  /** Milliseconds until the tenant's next apply may start (0: now). */
  waitMs(tenantId: string): number {
    const balance = this.#balance(tenantId, this.#now());
    return balance >= 0 ? 0 : -balance / this.#share;
  }

  /** Takes what one of the tenant's applies cost from its bucket. */
  charge(tenantId: string, costMs: number): void {
    if (!(costMs > 0)) return;
    const now = this.#now();
    const balance = Math.max(this.#floor, this.#balance(tenantId, now) - costMs);
    this.#buckets.set(tenantId, { balance, at: now });
    if (this.#buckets.size >= this.#sweepAt) this.#sweep(now);
  }

  /** Tenants whose bucket is not full (how many this budget holds state for). */
  get size(): number {
    return this.#buckets.size;
  }

  #balance(tenantId: string, now: number): number {
    const bucket = this.#buckets.get(tenantId);
    if (bucket === undefined) return this.#burstMs;
    const balance = Math.min(this.#burstMs, bucket.balance + (now - bucket.at) * this.#share);
    if (balance >= this.#burstMs) this.#buckets.delete(tenantId);
    return balance;
  }

  /** Forgets full buckets; amortised: the next sweep waits until the map has doubled. */
  #sweep(now: number): void {
    for (const tenantId of this.#buckets.keys()) this.#balance(tenantId, now);
    this.#sweepAt = Math.max(MIN_SWEEP_SIZE, 2 * this.#buckets.size);
  }
}

const MIN_SWEEP_SIZE = 1024;
