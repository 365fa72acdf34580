/** How long a key's failures count: from its first failure, one minute. */
const WINDOW_MS = 60_000;

/** A key's failures in its current window; decrementing `failures` gives one back. */
export interface FailureWindow {
  readonly startedAt: number;
  failures: number;
}

/** Milliseconds until `window` ends when it holds `max` failures or more; else 0. */
export function windowRefusedForMs(window: FailureWindow | undefined, max: number, now: number): number {
  if (window === undefined || window.failures < max) return 0;
  return Math.max(0, window.startedAt + WINDOW_MS - now);
}

/** The window a failure at `now` counts in: `current`, counted, while it lasts; else a fresh one. */
export function countFailure(current: FailureWindow | undefined, now: number): FailureWindow {
  if (current !== undefined && now - current.startedAt < WINDOW_MS) {
    current.failures++;
    return current;
  }
  return { startedAt: now, failures: 1 };
}

/**
 * Failures per key (a client address, or a tenant and a client address) in one-minute windows, in this
 * process's memory, for the auth-failure limits of the gateway and the admin API. Bounded: past
 * `maxKeys` the key used longest ago is forgotten (a Map keeps insertion order; a use moves a key last).
 */
export class FailureWindows {
  readonly #windows = new Map<string, FailureWindow>();

  constructor(
    readonly maxKeys: number,
    readonly now: () => number = Date.now,
  ) {}

  /** Milliseconds until the key's window ends when it holds `max` failures or more; else 0. */
  refusedForMs(key: string, max: number, now = this.now()): number {
    return windowRefusedForMs(this.#use(key), max, now);
  }

  /** Counts a failure in the key's current window (a new one when there is none or it ended). */
  count(key: string, now = this.now()): FailureWindow {
    const window = this.#use(key);
    const counted = countFailure(window, now);
    if (counted === window) return counted;
    this.#windows.set(key, counted);
    if (this.#windows.size > this.maxKeys) this.#windows.delete(this.#windows.keys().next().value!);
    return counted;
  }

  #use(key: string): FailureWindow | undefined {
    const window = this.#windows.get(key);
    if (window !== undefined) {
      this.#windows.delete(key);
      this.#windows.set(key, window);
    }
    return window;
  }
}
