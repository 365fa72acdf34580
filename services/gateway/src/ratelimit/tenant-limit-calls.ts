/**
 * Rate-limit calls of one tenant in flight on a replica's store connection. One Redis connection answers
 * in order; a round trip of this many scripts is well under a millisecond of Redis, so a tenant with
 * 5,000 exact-limited requests a second (one Redis master's worth) still never waits here.
 */
export const TENANT_LIMIT_CALLS = 32;
/** A tenant's calls waiting for one of its turns; a check past them is decided without the store. */
export const TENANT_LIMIT_QUEUE = 512;

interface TenantTurns {
  inFlight: number;
  readonly waiting: Array<() => void>;
  /** Index of the first call still waiting (the queue is drained from the front without shifting). */
  head: number;
}

/**
 * Every tenant's rate-limit and lease calls share the replica's connection to the limit store, and a
 * call waits for every call sent before it. Without a bound, a tenant whose clients hold a few hundred
 * exact-limited requests open at once put that many scripts ahead of everyone's: other tenants' calls
 * passed the command timeout, their fail-closed limits answered 503 and the circuit every tenant's
 * limits share opened. So a tenant has at most `maxCalls` calls in flight; the next `maxQueued` wait
 * for one of them to end, in order, and a check past those is its own tenant's to decide without the
 * store (its fail-open fallback or 503), without counting as a store failure.
 */
export class TenantLimitCalls {
  readonly #tenants = new Map<string, TenantTurns>();
  readonly #maxCalls: number;
  readonly #maxQueued: number;

  constructor(maxCalls = TENANT_LIMIT_CALLS, maxQueued = TENANT_LIMIT_QUEUE) {
    this.#maxCalls = maxCalls;
    this.#maxQueued = maxQueued;
  }

  /** `true`: the call may go now; a promise: it may go once that resolves; `false`: the queue is full. */
  take(tenantId: string): true | Promise<void> | false {
    let turns = this.#tenants.get(tenantId);
    if (turns === undefined) {
      turns = { inFlight: 0, waiting: [], head: 0 };
      this.#tenants.set(tenantId, turns);
    }
    if (turns.inFlight < this.#maxCalls) {
      turns.inFlight++;
      return true;
    }
    if (turns.waiting.length - turns.head >= this.#maxQueued) return false;
    return new Promise<void>((resolve) => turns.waiting.push(resolve));
  }

  /** A call taken with `take` ended: its turn goes to the tenant's next waiting call. */
  give(tenantId: string): void {
    const turns = this.#tenants.get(tenantId);
    if (turns === undefined) return;
    const next = turns.waiting[turns.head];
    if (next !== undefined) {
      turns.waiting[turns.head++] = noop;
      if (turns.head === turns.waiting.length) {
        turns.waiting.length = 0;
        turns.head = 0;
      }
      next();
      return;
    }
    if (--turns.inFlight === 0) this.#tenants.delete(tenantId);
  }

  /** Tenants with calls in flight (their entries go with their last call). */
  get tenants(): number {
    return this.#tenants.size;
  }
}

function noop(): void {}
