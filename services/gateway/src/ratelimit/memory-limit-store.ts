import { LRUCache } from 'lru-cache';
import type { LimitOutcome, LimitRequest, LimitSpec, LimitStore } from './limit-store.js';

/**
 * The limit algorithms in process memory: single-process mode and the fail-open fallback while Redis is
 * unreachable. Same semantics as the Lua script (see limit-store.ts). Bounded: at most `maxKeys` keys,
 * least recently used dropped first (a dropped key starts full again, which only ever admits more).
 */

interface TokenBucketState {
  kind: 'tb';
  tokens: number;
  updatedAt: number;
}

/** A ring of the admission times still inside the window: O(1) per request, capacity entries per key. */
interface WindowLogState {
  kind: 'sw';
  times: Float64Array;
  head: number;
  size: number;
}

type KeyState = TokenBucketState | WindowLogState;

export interface MemoryLimitStoreOptions {
  maxKeys?: number;
  /** Milliseconds; injectable for tests of time-dependent behaviour. */
  now?: () => number;
}

export class MemoryLimitStore implements LimitStore {
  readonly #states: LRUCache<string, KeyState>;
  readonly #now: () => number;

  constructor({
    maxKeys = 100_000,
    now = () => performance.timeOrigin + performance.now(),
  }: MemoryLimitStoreOptions = {}) {
    this.#states = new LRUCache({ max: maxKeys, ttlAutopurge: false });
    this.#now = now;
  }

  consume(requests: readonly LimitRequest[]): Promise<LimitOutcome[]> {
    return Promise.resolve(this.consumeNow(requests));
  }

  /** Synchronous form, for callers that must not yield (the fallback path). */
  consumeNow(requests: readonly LimitRequest[]): LimitOutcome[] {
    const now = this.#now();
    const states: KeyState[] = [];
    const grants: number[] = [];
    let all = true;
    for (const request of requests) {
      const state = this.#stateFor(request.key, request.spec, now);
      states.push(state);
      const available = state.kind === 'tb' ? state.tokens : request.spec.capacity - state.size;
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
        for (let j = 0; j < granted; j++) {
          state.times[(state.head + state.size) % state.times.length] = now;
          state.size++;
        }
        const oldest = state.size > 0 ? state.times[state.head]! : now;
        let retryAfterMs = 0;
        if (proposed <= 0) {
          const index = state.size + request.minCost - spec.capacity - 1;
          retryAfterMs =
            index >= state.size
              ? spec.windowMs
              : Math.ceil(state.times[(state.head + index) % state.times.length]! + spec.windowMs - now);
        }
        outcomes.push({
          granted,
          remaining: spec.capacity - state.size,
          resetMs: state.size > 0 ? Math.ceil(oldest + spec.windowMs - now) : 0,
          retryAfterMs,
        });
      }
      this.#states.set(request.key, state);
    }
    return outcomes;
  }

  #stateFor(key: string, spec: LimitSpec, now: number): KeyState {
    const existing = this.#states.get(key);
    if (spec.algorithm === 'token_bucket') {
      if (existing?.kind !== 'tb') return { kind: 'tb', tokens: spec.capacity, updatedAt: now };
      const elapsed = Math.max(0, now - existing.updatedAt);
      existing.tokens = Math.min(spec.capacity, existing.tokens + elapsed * spec.ratePerMs);
      existing.updatedAt = now;
      return existing;
    }
    const state: WindowLogState =
      existing?.kind === 'sw' && existing.times.length === spec.capacity
        ? existing
        : { kind: 'sw', times: new Float64Array(spec.capacity), head: 0, size: 0 };
    // Entries at or before now - window have left the window.
    while (state.size > 0 && state.times[state.head]! <= now - spec.windowMs) {
      state.head = (state.head + 1) % state.times.length;
      state.size--;
    }
    return state;
  }
}
