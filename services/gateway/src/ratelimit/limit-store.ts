/**
 * The port both limit stores implement (Redis for replicas sharing limits, memory for a single process
 * and for the fail-open fallback). One call consumes from several limits of one request atomically:
 * every limit is checked first and, only if all of them can grant, all are charged ("all or nothing",
 * so a request refused by one limit does not use up the others). Refused requests are never recorded,
 * so a client over its limit recovers as soon as it slows down.
 *
 * Algorithms (the same arithmetic in Lua and in TypeScript):
 * - token_bucket: `capacity` tokens (the burst), refilled continuously at `ratePerMs`.
 * - sliding_window: a sliding-window LOG (one timestamp per admitted request, kept for `windowMs`).
 *   Exact: no window of `windowMs` ever contains more than `capacity` admitted requests (error bound 0),
 *   at the price of O(capacity) memory per key.
 */
export type { LimitAlgorithm, LimitSpec } from '@vantageedge/shared/gateway-policies/limit-spec';

import type { LimitSpec } from '@vantageedge/shared/gateway-policies/limit-spec';

export interface LimitRequest {
  readonly key: string;
  readonly spec: LimitSpec;
  /** Units wanted. */
  readonly cost: number;
  /** Accept a partial grant down to this many units (fast-mode leases); equal to cost otherwise. */
  readonly minCost: number;
}

export interface LimitOutcome {
  /** Units granted; 0 when refused. When any limit of the call refuses, every outcome has granted 0. */
  granted: number;
  /** Whole units left after this call. */
  remaining: number;
  /** Milliseconds until the limit is fully available again. */
  resetMs: number;
  /** When refused by this limit: milliseconds until `minCost` units are available; else 0. */
  retryAfterMs: number;
}

export interface LimitStore {
  consume(requests: readonly LimitRequest[]): Promise<LimitOutcome[]>;
}
