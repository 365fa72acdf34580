/**
 * The memory all in-flight cache fills of one replica may buffer together. A fill reserves what it
 * buffers (the whole Content-Length up front when the origin declares one, chunk by chunk otherwise)
 * and releases it when it stores or gives up; a fill that cannot reserve is not collected, and its
 * response streams through uncached. Without it, unique query strings (every request a fill) times
 * max_body_bytes (up to 64 MiB each) would be the replica's memory bound.
 */
export class FillBudget {
  readonly #limit: number;
  #used = 0;

  constructor(limitBytes: number) {
    this.#limit = limitBytes;
  }

  get used(): number {
    return this.#used;
  }

  /** Reserves `bytes` if they fit; false (and nothing reserved) otherwise. */
  tryReserve(bytes: number): boolean {
    if (this.#used + bytes > this.#limit) return false;
    this.#used += bytes;
    return true;
  }

  /** True while nothing at all could be reserved. */
  get exhausted(): boolean {
    return this.#used >= this.#limit;
  }

  release(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes);
  }
}
