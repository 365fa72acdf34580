import { type Dispatcher, Pool } from 'undici';

/**
 * A target's pool refused a request: as many requests as it may hold already wait for a connection
 * (the pipeline answers 503 upstream_queue_full; the origin never saw the request).
 */
export class UpstreamQueueFullError extends Error {
  readonly code = 'UPSTREAM_QUEUE_FULL';
}

/**
 * undici counts the requests waiting in a Pool's queue in a field under this symbol. Its only public
 * reader is `stats`, which walks every connection of the pool (128) on each read: too slow for every
 * dispatch. Found on the first pool made; undefined if undici renamed it (then `stats` is read).
 */
let queuedKey: symbol | undefined | null = null;

function findQueuedKey(pool: Pool): symbol | undefined {
  const key = Object.getOwnPropertySymbols(pool).find((symbol) => symbol.description === 'queued');
  return key !== undefined && typeof (pool as unknown as Record<symbol, unknown>)[key] === 'number'
    ? key
    : undefined;
}

/**
 * An undici Pool whose queue is bounded: with every connection busy and `maxQueued` requests waiting
 * for one, `dispatch` throws UpstreamQueueFullError instead of queueing one more (Envoy's
 * max_pending_requests). How long a queued request may wait is the proxy's business (it answers 504
 * once the response-head deadline, counted from dispatch, passes).
 */
export class TargetPool extends Pool {
  readonly #maxQueued: number;

  constructor(origin: string, options: Pool.Options, maxQueued: number) {
    super(origin, options);
    this.#maxQueued = maxQueued;
    if (queuedKey === null) queuedKey = findQueuedKey(this);
  }

  /** Requests waiting for a connection. */
  get queued(): number {
    return queuedKey === undefined || queuedKey === null
      ? this.stats.queued
      : ((this as unknown as Record<symbol, number>)[queuedKey] ?? 0);
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (this.queued >= this.#maxQueued) {
      throw new UpstreamQueueFullError(
        `${this.#maxQueued} requests already wait for a connection to the origin`,
      );
    }
    return super.dispatch(options, handler);
  }
}
