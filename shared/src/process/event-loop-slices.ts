import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * Long synchronous work cut into slices of the event loop: a large tenant's snapshot (hundreds of
 * milliseconds to validate and compile at the snapshot bound) must not hold up every other tenant's
 * requests on the replica meanwhile. The work is written once, as a generator that yields between
 * steps (a route validated, a route compiled); `runToEnd` runs it at once, `runInSlices` gives the
 * event loop back whenever a slice has used its budget.
 */
export type SlicedWork<T> = Generator<void, T, void>;

/** Milliseconds of work between two turns of the event loop (a step may overrun it by itself). */
export const DEFAULT_SLICE_BUDGET_MS = 5;

export interface EventLoopSlicesOptions {
  budgetMs?: number | undefined;
  /** The clock (tests: a step counter, so that ordering does not depend on the machine's speed). */
  now?: () => number;
  /**
   * What busyMs reads (default `now`): the main thread's CPU time tells a slice's own work from the
   * time a loaded machine kept the process off a CPU.
   */
  busyClock?: () => number;
}

/** The main thread's CPU time (user and system) in milliseconds. */
export function threadCpuMs(): number {
  const { user, system } = process.threadCpuUsage();
  return (user + system) / 1000;
}

/** When to give the event loop back, and the longest slice so far (what the other tenants waited). */
export class EventLoopSlices {
  readonly #budgetMs: number;
  readonly #now: () => number;
  readonly #busyClock: () => number;
  #sliceStartedAt: number;
  #busySince: number;
  #longestMs = 0;
  #endedBusyMs = 0;
  #turns = 0;

  constructor(options: EventLoopSlicesOptions = {}) {
    this.#budgetMs = options.budgetMs ?? DEFAULT_SLICE_BUDGET_MS;
    this.#now = options.now ?? (() => performance.now());
    this.#busyClock = options.busyClock ?? this.#now;
    this.#sliceStartedAt = this.#now();
    this.#busySince = this.#busyClock();
  }

  /** Whether the current slice has used its budget. */
  due(): boolean {
    return this.#now() - this.#sliceStartedAt >= this.#budgetMs;
  }

  /** Ends the current slice: resolves on a later turn of the event loop, after pending I/O and timers. */
  async next(): Promise<void> {
    this.#endSlice();
    this.#turns += 1;
    await nextTurn();
    this.#sliceStartedAt = this.#now();
    this.#busySince = this.#busyClock();
  }

  /** The longest slice so far, the current one included. */
  get longestMs(): number {
    return Math.max(this.#longestMs, this.#now() - this.#sliceStartedAt);
  }

  /** The time (busyClock) spent in slices so far, the current one included, not the turns given back. */
  get busyMs(): number {
    return this.#endedBusyMs + this.#busyClock() - this.#busySince;
  }

  /** How often the event loop was given back. */
  get turns(): number {
    return this.#turns;
  }

  #endSlice(): void {
    const sliceMs = this.#now() - this.#sliceStartedAt;
    this.#longestMs = Math.max(this.#longestMs, sliceMs);
    this.#endedBusyMs += this.#busyClock() - this.#busySince;
  }
}

export function runToEnd<T>(work: SlicedWork<T>): T {
  for (;;) {
    const step = work.next();
    if (step.done) return step.value;
  }
}

export type SlicedResult<T> = { done: true; value: T } | { done: false };

/**
 * Runs `work`, giving the event loop back whenever `slices` says so. After each such turn `proceed`
 * is asked whether the work is still wanted: when it is not, the work is stopped (its `finally`
 * blocks run) and `{ done: false }` returned. Between the last turn and the end nothing else runs.
 */
export async function runInSlices<T>(
  work: SlicedWork<T>,
  slices: EventLoopSlices,
  proceed: () => boolean = () => true,
): Promise<SlicedResult<T>> {
  for (;;) {
    const step = work.next();
    if (step.done) return { done: true, value: step.value };
    if (!slices.due()) continue;
    await slices.next();
    if (!proceed()) {
      work.return(undefined as T);
      return { done: false };
    }
  }
}
