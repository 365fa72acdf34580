import { type Dispatcher, Pool } from 'undici';

/**
 * A target's pool refused a request: as many requests as it may hold already wait for a connection
 * (the pipeline answers 503 upstream_queue_full; the origin never saw the request).
 */
export class UpstreamQueueFullError extends Error {
  readonly code = 'UPSTREAM_QUEUE_FULL';
}

interface Waiting {
  readonly options: Dispatcher.DispatchOptions;
  readonly handler: Dispatcher.DispatchHandler;
}

/**
 * An undici Pool whose waiting requests are the gateway's: while every connection is busy, requests
 * wait here, at most `maxQueued` of them (Envoy's max_pending_requests; past it `dispatch` throws
 * UpstreamQueueFullError), and go to undici in order as connections free up (its `drain`). One the
 * proxy gives up on while it waits (its client left, its wait ran out: `abandon`) leaves at once: it
 * neither holds a place in the bound nor, later, a connection (undici can only drop a request it has
 * taken by closing that request's connection). How long a request may wait is the proxy's business.
 */
export class TargetPool extends Pool {
  readonly #maxQueued: number;
  readonly #waiting: Waiting[] = [];
  /** undici said its connections are all taken (dispatch returned false) and has not drained since. */
  #busy = false;

  static {
    // Before the pool closes or is destroyed, the requests still waiting go to undici, whose close
    // serves its queue and whose destroy fails it: they are neither left behind nor lost.
    for (const name of ['close', 'destroy'] as const) {
      const stock = Pool.prototype[name] as (...args: unknown[]) => unknown;
      Object.defineProperty(TargetPool.prototype, name, {
        configurable: true,
        writable: true,
        value(this: TargetPool, ...args: unknown[]) {
          this.#flushWaiting();
          return stock.apply(this, args);
        },
      });
    }
  }

  constructor(origin: string, options: Pool.Options, maxQueued: number) {
    super(origin, options);
    this.#maxQueued = maxQueued;
    this.on('drain', () => {
      this.#busy = false;
      this.#dispatchWaiting();
    });
  }

  /** Requests waiting for a connection. */
  get queued(): number {
    return this.#waiting.length;
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (!this.#busy && this.#waiting.length === 0) {
      const free = super.dispatch(options, handler);
      if (!free) this.#busy = true;
      return free;
    }
    if (this.#waiting.length >= this.#maxQueued) {
      throw new UpstreamQueueFullError(
        `${this.#maxQueued} requests already wait for a connection to the origin`,
      );
    }
    this.#waiting.push({ options, handler });
    return false;
  }

  /** The request of `handler` is no longer wanted: out of the queue, if it still waits there. */
  abandon(handler: Dispatcher.DispatchHandler): void {
    const at = this.#waiting.findIndex((waiting) => waiting.handler === handler);
    if (at >= 0) this.#waiting.splice(at, 1);
  }

  /** Hands every waiting request to undici, whatever its connections. */
  #flushWaiting(): void {
    this.#busy = true;
    for (const next of this.#waiting.splice(0)) this.#dispatchOne(next);
  }

  #dispatchWaiting(): void {
    while (!this.#busy && this.#waiting.length > 0) {
      if (!this.#dispatchOne(this.#waiting.shift()!)) this.#busy = true;
    }
  }

  /** undici's answer (false: its connections are all taken); a pool that refuses fails the request. */
  #dispatchOne({ options, handler }: Waiting): boolean {
    try {
      return super.dispatch(options, handler);
    } catch (error) {
      const legacy = handler as { onError?: (error: Error) => void };
      if (handler.onResponseError) handler.onResponseError(null as never, error as Error);
      else legacy.onError?.(error as Error);
      return true;
    }
  }
}
