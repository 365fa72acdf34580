/** A rate limit's arithmetic, as both limit stores (Redis and memory) apply it. */
export type LimitAlgorithm = 'token_bucket' | 'sliding_window';

export interface LimitSpec {
  readonly algorithm: LimitAlgorithm;
  /**
   * token_bucket: the burst. sliding_window: requests admitted per aligned window (and the bound of the
   * weighted estimate over the last windowMs; see the gateway's limit-store.ts).
   */
  readonly capacity: number;
  /** token_bucket refill rate (tokens per millisecond); unused by sliding_window. */
  readonly ratePerMs: number;
  /** sliding_window length; unused by token_bucket. */
  readonly windowMs: number;
  /**
   * How long an idle key is kept: the time for a bucket to refill completely, or two windows (a sliding
   * window's counts weigh on the estimate until the end of the window after theirs).
   */
  readonly ttlMs: number;
}

/** Whether two specs count alike (the same limit, compiled again from an unchanged policy). */
export function sameLimitSpec(a: LimitSpec, b: LimitSpec): boolean {
  return (
    a === b ||
    (a.algorithm === b.algorithm &&
      a.capacity === b.capacity &&
      a.ratePerMs === b.ratePerMs &&
      a.windowMs === b.windowMs)
  );
}
