/**
 * Envoy-style retry budget of one target: the retries its failures cause stay within a share of the
 * requests it received over the last 10 seconds (at least a minimum, so a quiet target can still be
 * retried). Counted in one-second buckets; only targets of an origin some route retries on count.
 */
const WINDOW_SECONDS = 10;

export class RetryBudget {
  readonly #requests = new Uint32Array(WINDOW_SECONDS);
  readonly #retries = new Uint32Array(WINDOW_SECONDS);
  /** The second the newest bucket belongs to. */
  #second = 0;

  /** One request sent to the target at `nowMs` (a monotonic clock). */
  recordRequest(nowMs: number): void {
    this.#advance(nowMs);
    this.#requests[this.#second % WINDOW_SECONDS]!++;
  }

  /**
   * May one more retry be spent on a failure of this target? Claims it when so: the retries in the
   * window stay ≤ max(minRetries, percent of the window's requests).
   */
  claim(nowMs: number, percent: number, minRetries: number): boolean {
    this.#advance(nowMs);
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < WINDOW_SECONDS; i++) {
      requests += this.#requests[i]!;
      retries += this.#retries[i]!;
    }
    if (retries + 1 > Math.max(minRetries, Math.floor((requests * percent) / 100))) return false;
    this.#retries[this.#second % WINDOW_SECONDS]!++;
    return true;
  }

  #advance(nowMs: number): void {
    const second = Math.floor(nowMs / 1000);
    if (second === this.#second) return;
    const gap = Math.min(second - this.#second, WINDOW_SECONDS);
    for (let i = 1; i <= gap; i++) {
      const bucket = (this.#second + i) % WINDOW_SECONDS;
      this.#requests[bucket] = 0;
      this.#retries[bucket] = 0;
    }
    this.#second = second;
  }
}
