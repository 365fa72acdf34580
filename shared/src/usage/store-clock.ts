/**
 * This process's reading of the quota counters' clock (Redis's, whose periods they count in): its own
 * clock plus an offset, taken from every quota decision (each carries Redis's time) and from a TIME
 * asked now and then off the request path (`follow`), so a replica with no metered traffic has it too.
 * A replica whose clock is off by seconds or by days then names the periods Redis counts in, sets
 * `X-Quota-Reset` from Redis's midnight and counts usage in Redis's hours. Before the first reading
 * the offset is 0; the quota script decides the period whatever the offset.
 */
export class StoreClock {
  #offset = 0;
  #known = false;
  readonly #local: () => number;

  constructor(local: () => number = Date.now) {
    this.#local = local;
  }

  /** The counters' time now, as last read (ms epoch). */
  readonly now = (): number => this.#local() + this.#offset;

  /** Whether the counters' clock was read at least once (before that, `now` is this process's clock). */
  get known(): boolean {
    return this.#known;
  }

  /** A decision's time: the counters' clock when they answered. */
  observe(storeNow: number): void {
    this.#offset = storeNow - this.#local();
    this.#known = true;
  }

  /** Asks the counters' clock, taken as of the middle of the round trip. */
  async sync(storeTime: () => Promise<number>): Promise<void> {
    const sent = this.#local();
    const storeNow = await storeTime();
    this.#offset = storeNow - (sent + this.#local()) / 2;
    this.#known = true;
  }

  /** Syncs now and every `intervalMs` until stopped; a failed reading keeps the last offset. */
  follow(storeTime: () => Promise<number>, intervalMs: number): { stop(): void } {
    const sync = () => void this.sync(storeTime).catch(() => undefined);
    sync();
    const timer = setInterval(sync, intervalMs);
    timer.unref();
    return { stop: () => clearInterval(timer) };
  }
}
