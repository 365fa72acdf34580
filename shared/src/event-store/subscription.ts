import type { RecordedEvent, Subscription } from './port.js';

/**
 * What a catch-up subscription needs from an adapter: a batched read after a position, and a signal
 * that new events may have been committed.
 */
export interface SubscriptionSource {
  readAfter(position: bigint, maxCount: number): Promise<RecordedEvent[]>;
  /**
   * Arms a wake-up *before* a read, so a commit landing between "read found nothing" and "start
   * waiting" still wakes the reader (no lost wake-up). The promise resolves on the next change
   * (or when the source cannot tell, e.g. after a reconnect) and when `signal` aborts.
   */
  nextChange(signal: AbortSignal): Promise<void>;
  /** Errors worth retrying (lost connection, server restarting); others end the subscription. */
  isTransient(error: unknown): boolean;
}

export interface CatchUpOptions {
  batchSize?: number;
  /** Backoff between retries after a transient error, in ms: min(initial * 2^n, max). */
  retry?: { initialMs: number; maxMs: number };
  onRetry?: (error: unknown, attempt: number) => void;
  /** Called when the subscription ends, so the adapter can forget it. */
  onClose?: () => void;
}

/**
 * Catch up from an exclusive checkpoint, then follow live. Pull-based: a batch is read only when
 * the consumer has taken the previous one, so a slow consumer never grows a buffer. The checkpoint
 * moves only when an event is handed to the consumer, which is why a retry after a dropped
 * connection neither loses nor repeats events.
 */
export function catchUpSubscription(
  source: SubscriptionSource,
  fromPosition: bigint,
  { batchSize = 500, retry = { initialMs: 50, maxMs: 2_000 }, onRetry, onClose }: CatchUpOptions = {},
): Subscription {
  const stop = new AbortController();
  let closed = false;
  let reading: Promise<void> | null = null;
  const finish = () => {
    stop.abort();
    if (closed) return;
    closed = true;
    onClose?.();
  };

  async function* follow(): AsyncGenerator<RecordedEvent, void, undefined> {
    let checkpoint = fromPosition;
    let failures = 0;
    try {
      while (!stop.signal.aborted) {
        const changed = source.nextChange(stop.signal);
        let batch: RecordedEvent[];
        try {
          const read = source.readAfter(checkpoint, batchSize);
          reading = read.then(noop, noop);
          batch = await read;
          failures = 0;
        } catch (error) {
          reading = null;
          if (stop.signal.aborted) return;
          if (!source.isTransient(error)) throw error;
          failures += 1;
          onRetry?.(error, failures);
          await sleep(Math.min(retry.initialMs * 2 ** (failures - 1), retry.maxMs), stop.signal);
          continue;
        }
        reading = null;
        for (const event of batch) {
          if (stop.signal.aborted) return;
          checkpoint = event.position;
          yield event;
        }
        if (batch.length < batchSize) await changed;
      }
    } finally {
      finish();
    }
  }

  const iterator = follow();
  let iterated = false;
  return {
    [Symbol.asyncIterator]() {
      if (iterated) throw new Error('a subscription can be iterated only once');
      iterated = true;
      return iterator;
    },
    readInFlight: () => reading,
    async close() {
      stop.abort();
      await iterator.return(undefined);
      finish(); // the generator's finally does not run if iteration never started
    },
  };
}

function noop(): void {}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * A wake-up signal for sources that learn about changes by callback (in-process appends,
 * LISTEN/NOTIFY). `notify()` resolves every armed waiter.
 */
export class ChangeSignal {
  private waiters = new Set<() => void>();

  next(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const wake = () => {
        this.waiters.delete(wake);
        signal.removeEventListener('abort', wake);
        resolve();
      };
      this.waiters.add(wake);
      signal.addEventListener('abort', wake, { once: true });
    });
  }

  notify(): void {
    for (const wake of [...this.waiters]) wake();
  }
}
