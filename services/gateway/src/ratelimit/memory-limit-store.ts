import { FairLru } from './fair-lru.js';
import type { LimitOutcome, LimitRequest, LimitSpec, LimitStore } from './limit-store.js';

/**
 * The limit algorithms in process memory: single-process mode and the fail-open fallback while Redis is
 * unreachable. Same semantics and arithmetic as the Lua script (see limit-store.ts and lua.ts). Bounded:
 * at most `maxKeys` keys of a few numbers each, shared fairly between tenants (a request's `partition`,
 * see FairLru): when full, the least recently used key of a tenant holding its share or more is dropped,
 * so one tenant's churning callers never drop another tenant's counters. A dropped key starts full
 * again, which only ever admits more.
 */

interface TokenBucketState {
  kind: 'tb';
  tokens: number;
  updatedAt: number;
}

/** The sliding-window counter: the counts of the current aligned window and of the one before it. */
interface SlidingWindowState {
  kind: 'sw';
  /** Index of the aligned window `current` counts (time / windowMs, rounded down). */
  window: number;
  /** The windows' length: counts of windows of another length (the limit changed) count as none. */
  windowMs: number;
  current: number;
  previous: number;
}

type KeyState = TokenBucketState | SlidingWindowState;

export interface MemoryLimitStoreOptions {
  maxKeys?: number;
  /** Milliseconds; injectable for tests of time-dependent behaviour. */
  now?: () => number;
}

/**
 * A sliding window's milliseconds until `estimate` (previous × (1 − elapsed / window) + current, with
 * `elapsed` ms into the current window) is at most capacity − minCost, if nothing more is admitted: the
 * previous window's weight decays to 0 at the end of the current window, then the current count's.
 */
function slidingWindowRetryMs(
  spec: LimitSpec,
  minCost: number,
  current: number,
  previous: number,
  elapsed: number,
): number {
  const target = spec.capacity - minCost;
  if (target < 0) return spec.windowMs;
  if (current > target)
    return Math.max(1, Math.ceil(spec.windowMs - elapsed + (1 - target / current) * spec.windowMs));
  if (previous > 0)
    return Math.max(1, Math.ceil((1 - (target - current) / previous) * spec.windowMs - elapsed));
  return 1;
}

/** Ms into the state's window; 0 when the window is newer than the clock's (the clock stepped back). */
function elapsedIn(state: SlidingWindowState, windowMs: number, now: number): number {
  return Math.max(0, now - state.window * windowMs);
}

export class MemoryLimitStore implements LimitStore {
  readonly #states: FairLru<KeyState>;
  readonly #now: () => number;

  constructor({
    maxKeys = 100_000,
    now = () => performance.timeOrigin + performance.now(),
  }: MemoryLimitStoreOptions = {}) {
    this.#states = new FairLru(maxKeys);
    this.#now = now;
  }

  consume(requests: readonly LimitRequest[]): Promise<LimitOutcome[]> {
    return Promise.resolve(this.consumeNow(requests));
  }

  /** Synchronous form, for callers that must not yield (the fallback path). */
  consumeNow(requests: readonly LimitRequest[]): LimitOutcome[] {
    const now = this.#now();
    const states: KeyState[] = [];
    /** Token bucket: tokens. Sliding window: the estimate. */
    const levels: number[] = [];
    const grants: number[] = [];
    let all = true;
    for (const request of requests) {
      const state = this.#stateFor(request, now);
      states.push(state);
      let available: number;
      if (state.kind === 'tb') {
        levels.push(state.tokens);
        available = state.tokens;
      } else {
        const { windowMs } = request.spec;
        const estimate = state.previous * (1 - elapsedIn(state, windowMs, now) / windowMs) + state.current;
        levels.push(estimate);
        available = request.spec.capacity - estimate;
      }
      const granted =
        available >= request.cost ? request.cost : available >= request.minCost ? Math.floor(available) : 0;
      grants.push(granted);
      if (granted <= 0) all = false;
    }
    const outcomes: LimitOutcome[] = [];
    for (let i = 0; i < requests.length; i++) {
      const request = requests[i]!;
      const state = states[i]!;
      const proposed = grants[i]!;
      const granted = all ? proposed : 0;
      const { spec } = request;
      if (state.kind === 'tb') {
        state.tokens -= granted;
        state.updatedAt = now;
        outcomes.push({
          granted,
          remaining: Math.floor(state.tokens),
          resetMs: Math.ceil((spec.capacity - state.tokens) / spec.ratePerMs),
          retryAfterMs: proposed <= 0 ? Math.ceil((request.minCost - state.tokens) / spec.ratePerMs) : 0,
        });
      } else {
        state.current += granted;
        const estimate = levels[i]! + granted;
        const elapsed = elapsedIn(state, spec.windowMs, now);
        const left = spec.windowMs - elapsed;
        outcomes.push({
          granted,
          remaining: Math.max(0, Math.floor(spec.capacity - estimate)),
          resetMs:
            state.current > 0 ? Math.ceil(left + spec.windowMs) : state.previous > 0 ? Math.ceil(left) : 0,
          retryAfterMs:
            proposed <= 0
              ? slidingWindowRetryMs(spec, request.minCost, state.current, state.previous, elapsed)
              : 0,
        });
      }
      this.#states.set(request.partition ?? '', request.key, state);
    }
    return outcomes;
  }

  #stateFor({ partition, key, spec }: LimitRequest, now: number): KeyState {
    const existing = this.#states.get(partition ?? '', key);
    if (spec.algorithm === 'token_bucket') {
      if (existing?.kind !== 'tb') return { kind: 'tb', tokens: spec.capacity, updatedAt: now };
      const elapsed = Math.max(0, now - existing.updatedAt);
      existing.tokens = Math.min(spec.capacity, existing.tokens + elapsed * spec.ratePerMs);
      existing.updatedAt = now;
      return existing;
    }
    const { windowMs } = spec;
    const window = Math.floor(now / windowMs);
    if (existing?.kind !== 'sw' || existing.windowMs !== windowMs)
      return { kind: 'sw', window, windowMs, current: 0, previous: 0 };
    // Counts of a window newer than the clock's (it stepped back): kept as they are, the window taken
    // to start now (elapsedIn), and never replaced by the older window.
    if (existing.window > window) return existing;
    // Rolling the counts forward changes no decision: the window they describe is the same.
    if (existing.window === window - 1) {
      existing.previous = existing.current;
      existing.current = 0;
    } else if (existing.window !== window) {
      existing.previous = 0;
      existing.current = 0;
    }
    existing.window = window;
    return existing;
  }
}
