/** A rate limit's arithmetic, as both limit stores (Redis and memory) apply it. */
export type LimitAlgorithm = 'token_bucket' | 'sliding_window';

export interface LimitSpec {
  readonly algorithm: LimitAlgorithm;
  /** token_bucket: the burst. sliding_window: requests admitted per window. */
  readonly capacity: number;
  /** token_bucket refill rate (tokens per millisecond); unused by sliding_window. */
  readonly ratePerMs: number;
  /** sliding_window length; unused by token_bucket. */
  readonly windowMs: number;
  /** How long an idle key is kept (time for a bucket to refill completely, or one window). */
  readonly ttlMs: number;
}
