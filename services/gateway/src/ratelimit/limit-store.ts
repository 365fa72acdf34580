/**
 * The port both limit stores implement (Redis for replicas sharing limits, memory for a single process
 * and for the fail-open fallback). One call consumes from several limits of one request atomically:
 * every limit is checked first and, only if all of them can grant, all are charged ("all or nothing",
 * so a request refused by one limit does not use up the others). Refused requests are never recorded,
 * so a client over its limit recovers as soon as it slows down.
 *
 * Algorithms (the same arithmetic in Lua and in TypeScript), each O(1) memory per key:
 * - token_bucket: `capacity` tokens (the burst), refilled continuously at `ratePerMs`.
 * - sliding_window: a sliding-window COUNTER (as Kong's sliding window, Cloudflare and most gateways):
 *   time is cut into aligned windows of `windowMs` (window n is [n × windowMs, (n + 1) × windowMs)), a
 *   key keeps the admitted count of the current window and of the previous one, and a request is judged
 *   on the estimate of the last `windowMs`:
 *
 *       estimate = previous × (1 − elapsed / windowMs) + current      (elapsed: ms into the current window)
 *
 *   It is admitted when estimate + cost ≤ capacity (a partial grant: floor(capacity − estimate) units,
 *   when that is at least minCost). Guarantees, with every replica on the one Redis clock:
 *   - never more than `capacity` admitted in one aligned window (current ≤ estimate, exactly);
 *   - any window of `windowMs` that starts a fraction f of the way into an aligned window sees at most
 *     capacity × (1 + f) admissions, so always fewer than 2 × capacity. The worst case is adversarial:
 *     a whole capacity at the very end of one aligned window, then the next window's share as that
 *     count's weight decays. The estimate assumes the previous window's admissions were evenly spread:
 *     when they were, it is within one request of the true count, and a client sending evenly at up to
 *     capacity − 1 requests per window is never refused;
 *   - `retryAfterMs` is when the estimate, if nothing else is admitted, has fallen to capacity − minCost
 *     (the previous count's weight decays to 0 by the end of the current window, then the current
 *     count's over the next one); `resetMs` is when it reaches 0 (at most 2 × windowMs away);
 *   - refused requests are never counted. A key is a hash of 4 numbers (the window's length
 *     among them: counts of windows of another length, before the limit changed, count as none), kept
 *     for 2 windows (`ttlMs`);
 *   - a key whose window is newer than the clock's (written by a Redis master whose clock was ahead,
 *     before a Cluster failover or an NTP step back) keeps its counts: the clock is taken to be at the
 *     start of that window (elapsed 0) and the key is charged in it, never reset to an older window.
 */
export type { LimitAlgorithm, LimitSpec } from '@vantageedge/shared/gateway-policies/limit-spec';

import type { LimitSpec } from '@vantageedge/shared/gateway-policies/limit-spec';
import type { TenantNodeOf } from '@vantageedge/shared/redis/tenant-node';

export interface LimitRequest {
  readonly key: string;
  readonly spec: LimitSpec;
  /** Units wanted. */
  readonly cost: number;
  /** Accept a partial grant down to this many units (fast-mode leases); equal to cost otherwise. */
  readonly minCost: number;
  /** Whose limit this is (the tenant): the memory store shares its room fairly between them. */
  readonly partition?: string;
  /**
   * A caller's key (scoped limits) in a store shared by every tenant: its tenant's key ledger, and the
   * limit's key every caller shares once the tenant has the most caller keys it may (RedisLimitStore).
   */
  readonly callerKey?: { readonly ledgerKey: string; readonly overflowKey: string } | undefined;
}

export interface LimitOutcome {
  /** Units granted; 0 when refused. When any limit of the call refuses, every outcome has granted 0. */
  granted: number;
  /** Whole units left after this call. */
  remaining: number;
  /** Milliseconds until the limit is fully available again (if nothing more is admitted). */
  resetMs: number;
  /** When refused by this limit: milliseconds until `minCost` units are available; else 0. */
  retryAfterMs: number;
  /**
   * The caller had no key and its tenant's caller keys were at their bound: it was counted on the
   * limit's overflow key, shared with every such caller (stores that bound caller keys).
   */
  overflowed?: boolean;
}

/**
 * Told the outcomes of a call whose promise had already failed (the answer came after the command
 * timeout): the caller decided without them. Returns, per request, the units to give back (at most
 * the units granted; the store gives them back, best effort).
 */
export type LateOutcomes = (outcomes: readonly LimitOutcome[]) => readonly number[];

export interface LimitStore {
  /** `onLate`: for a store whose call may still charge after it failed (RedisLimitStore). */
  consume(requests: readonly LimitRequest[], onLate?: LateOutcomes): Promise<LimitOutcome[]>;
  /** The node holding a tenant's limits (a Redis Cluster's master), for a circuit per node. */
  readonly nodeOf?: TenantNodeOf | undefined;
}
