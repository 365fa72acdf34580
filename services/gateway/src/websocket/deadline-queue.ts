/** The longest delay node's timers take; a longer one fires after 1 ms (TimeoutOverflowWarning). */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

interface Entry<T> {
  readonly item: T;
  atMs: number;
  /** Position in the heap. */
  index: number;
}

/**
 * Items each due at a wall-clock time (ms since the epoch), earliest first in a binary heap behind one
 * timer armed for the earliest: adding, moving and removing an item cost O(log n) and no timer of its
 * own, however many are waiting. `onDue` gets each item once its time has come, already removed.
 * A deadline past node's longest timer (an API key expiring next year) rearms until it is reached.
 */
export class DeadlineQueue<T> {
  readonly #heap: Entry<T>[] = [];
  readonly #entries = new Map<T, Entry<T>>();
  readonly #onDue: (item: T) => void;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  /** The deadline the timer is armed for. */
  #armedAtMs = Number.POSITIVE_INFINITY;

  constructor(onDue: (item: T) => void, now: () => number = Date.now) {
    this.#onDue = onDue;
    this.#now = now;
  }

  get size(): number {
    return this.#heap.length;
  }

  /** `item` is due at `atMs` (moved there when already waiting). */
  set(item: T, atMs: number): void {
    const entry = this.#entries.get(item);
    if (entry === undefined) {
      const added: Entry<T> = { item, atMs, index: this.#heap.length };
      this.#heap.push(added);
      this.#entries.set(item, added);
      this.#up(added.index);
    } else {
      const earlier = atMs < entry.atMs;
      entry.atMs = atMs;
      if (earlier) this.#up(entry.index);
      else this.#down(entry.index);
    }
    this.#arm();
  }

  delete(item: T): void {
    const entry = this.#entries.get(item);
    if (entry === undefined) return;
    this.#removeAt(entry.index);
    this.#arm();
  }

  /** Forgets every item and stops the timer. */
  clear(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedAtMs = Number.POSITIVE_INFINITY;
    this.#heap.length = 0;
    this.#entries.clear();
  }

  #fire = (): void => {
    this.#timer = undefined;
    this.#armedAtMs = Number.POSITIVE_INFINITY;
    const now = this.#now();
    // The wall clock decides: a timer that fired early (the clock was set back) rearms.
    while (this.#heap.length > 0 && this.#heap[0]!.atMs <= now) {
      const { item } = this.#heap[0]!;
      this.#removeAt(0);
      this.#onDue(item);
    }
    this.#arm();
  };

  #arm(): void {
    const earliest = this.#heap[0]?.atMs ?? Number.POSITIVE_INFINITY;
    if (earliest === this.#armedAtMs) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedAtMs = earliest;
    if (earliest === Number.POSITIVE_INFINITY) return;
    const delay = Math.min(Math.max(earliest - this.#now(), 0), MAX_TIMER_DELAY_MS);
    this.#timer = setTimeout(this.#fire, delay);
    // What waits here is open connections, which keep the process alive by themselves.
    this.#timer.unref();
  }

  #removeAt(index: number): void {
    const heap = this.#heap;
    const removed = heap[index]!;
    this.#entries.delete(removed.item);
    const last = heap.pop()!;
    if (index === heap.length) return;
    heap[index] = last;
    last.index = index;
    if (last.atMs < removed.atMs) this.#up(index);
    else this.#down(index);
  }

  #up(index: number): void {
    const heap = this.#heap;
    const entry = heap[index]!;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = heap[parentIndex]!;
      if (parent.atMs <= entry.atMs) break;
      heap[index] = parent;
      parent.index = index;
      index = parentIndex;
    }
    heap[index] = entry;
    entry.index = index;
  }

  #down(index: number): void {
    const heap = this.#heap;
    const entry = heap[index]!;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && heap[right]!.atMs < heap[left]!.atMs ? right : left;
      if (heap[child]!.atMs >= entry.atMs) break;
      heap[index] = heap[child]!;
      heap[index]!.index = index;
      index = child;
    }
    heap[index] = entry;
    entry.index = index;
  }
}
