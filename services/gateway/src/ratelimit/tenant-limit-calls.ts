import type { TenantNodeOf } from '@vantageedge/shared/redis/tenant-node';

/**
 * Rate-limit and quota calls of one tenant in flight on a replica's store connection. One Redis
 * connection answers in order; a round trip of this many scripts is well under a millisecond of Redis,
 * so a tenant with 5,000 exact-limited requests a second (one Redis master's worth) never waits here.
 */
export const TENANT_LIMIT_CALLS = 32;
/** A tenant's calls waiting for one of its turns; a check past them is decided without the store. */
export const TENANT_LIMIT_QUEUE = 512;
/**
 * Every tenant's calls in flight together: four tenants' shares. Measured against the shared Redis (50 ms
 * command timeout, the loaded 2-core machine), a call sent behind 200 others answered in ≈ 20 ms, behind
 * 500 it timed out; at a few ms a round trip this is still tens of thousands of calls a second.
 */
export const LIMIT_CALLS_IN_FLIGHT = 4 * TENANT_LIMIT_CALLS;

interface TenantTurns {
  readonly id: string;
  inFlight: number;
  readonly waiting: Array<() => void>;
  /** Index of the first call still waiting (the queue is drained from the front without shifting). */
  head: number;
  /** In the replica's round of tenants with calls waiting. */
  inRound: boolean;
}

/**
 * Every tenant's rate-limit and quota calls share the replica's connection to the counters, and a call
 * waits for every call sent before it. Without a bound, a tenant whose clients hold a few hundred
 * exact-limited requests open at once put that many scripts ahead of everyone's: other tenants' calls
 * passed the command timeout, their fail-closed limits answered 503 and the circuit every tenant's
 * limits share opened. So a tenant has at most `maxCalls` calls in flight, and all tenants together
 * `maxInFlight`; a call past either waits in its tenant's queue (at most `maxQueued`, and a check past
 * those is its own tenant's to decide without the store: its fail-open fallback or 503, a quota
 * uncounted, never a store failure). When a call ends, the turn goes to the tenants with calls waiting
 * in rounds, one call each, so a tenant with one call waits behind at most one call of each other
 * tenant, however many they have queued.
 */
export class TenantLimitCalls {
  readonly #tenants = new Map<string, TenantTurns>();
  /** Tenants with calls waiting, in the order their turns come (from `#roundHead`). */
  readonly #round: TenantTurns[] = [];
  #roundHead = 0;
  #inFlight = 0;
  readonly #maxCalls: number;
  readonly #maxQueued: number;
  readonly #maxInFlight: number;

  constructor(
    maxCalls = TENANT_LIMIT_CALLS,
    maxQueued = TENANT_LIMIT_QUEUE,
    maxInFlight = LIMIT_CALLS_IN_FLIGHT,
  ) {
    this.#maxCalls = maxCalls;
    this.#maxQueued = maxQueued;
    this.#maxInFlight = Math.max(maxInFlight, maxCalls);
  }

  /** `true`: the call may go now; a promise: it may go once that resolves; `false`: the queue is full. */
  take(tenantId: string): true | Promise<void> | false {
    let turns = this.#tenants.get(tenantId);
    if (turns === undefined) {
      turns = { id: tenantId, inFlight: 0, waiting: [], head: 0, inRound: false };
      this.#tenants.set(tenantId, turns);
    }
    const waiting = turns.waiting.length - turns.head;
    if (waiting === 0 && turns.inFlight < this.#maxCalls && this.#inFlight < this.#maxInFlight) {
      turns.inFlight++;
      this.#inFlight++;
      return true;
    }
    if (waiting >= this.#maxQueued) return false;
    const owner = turns;
    const turn = new Promise<void>((resolve) => owner.waiting.push(resolve));
    if (!turns.inRound && turns.inFlight < this.#maxCalls) this.#joinRound(turns);
    return turn;
  }

  /** A call that went (take's `true`, or its promise resolved) ended. */
  give(tenantId: string): void {
    const turns = this.#tenants.get(tenantId);
    if (turns === undefined) return;
    turns.inFlight--;
    this.#inFlight--;
    if (!turns.inRound && turns.head < turns.waiting.length) this.#joinRound(turns);
    this.#startWaiting();
    if (turns.inFlight === 0 && turns.head === turns.waiting.length) this.#tenants.delete(tenantId);
  }

  /** Tenants with calls in flight or waiting (their entries go with their last call). */
  get tenants(): number {
    return this.#tenants.size;
  }

  #joinRound(turns: TenantTurns): void {
    turns.inRound = true;
    this.#round.push(turns);
  }

  /** Hands free turns to the waiting tenants in rounds, one call each. */
  #startWaiting(): void {
    while (this.#inFlight < this.#maxInFlight && this.#roundHead < this.#round.length) {
      const turns = this.#round[this.#roundHead]!;
      this.#round[this.#roundHead++] = undefined as unknown as TenantTurns;
      turns.inRound = false;
      // At its own bound: it rejoins the round when one of its calls ends (give).
      if (turns.inFlight >= this.#maxCalls) continue;
      const next = turns.waiting[turns.head]!;
      turns.waiting[turns.head++] = noop;
      if (turns.head === turns.waiting.length) {
        turns.waiting.length = 0;
        turns.head = 0;
      } else {
        // A queue its clients keep full never empties: drop the slots of the calls started, or one
        // is kept for every call the tenant ever queued.
        if (turns.head >= COMPACT_QUEUE_AT) {
          turns.waiting.splice(0, turns.head);
          turns.head = 0;
        }
        this.#joinRound(turns);
      }
      turns.inFlight++;
      this.#inFlight++;
      next();
    }
    if (this.#roundHead === this.#round.length) {
      this.#round.length = 0;
      this.#roundHead = 0;
    } else if (this.#roundHead > 1024 && this.#roundHead * 2 > this.#round.length) {
      this.#round.splice(0, this.#roundHead);
      this.#roundHead = 0;
    }
  }
}

/** The turns of the connection a tenant's calls go down. */
export type LimitCallsOf = (tenantId: string) => TenantLimitCalls;

/**
 * A replica has one connection per Redis node, and on a Cluster each master answers only its own calls:
 * the bound over all tenants is per master, so a master slow to answer holds the turns of its own tenants
 * only, not those of the tenants on the other masters. A tenant's keys all live on one master (the
 * `{tenant_id}` hash tag), so its share is the same either way. A caller takes and gives back the turn
 * on the one it was handed: a resharding between the two cannot leave a turn taken on another.
 */
export function limitCallsPerNode(nodeOf: TenantNodeOf | undefined): LimitCallsOf {
  const shared = new TenantLimitCalls();
  if (nodeOf === undefined) return () => shared;
  // One per master that has served a tenant: as many as the Cluster has had masters.
  const byNode = new Map<string, TenantLimitCalls>();
  return (tenantId) => {
    const node = nodeOf(tenantId);
    if (node === undefined) return shared;
    let calls = byNode.get(node);
    if (calls === undefined) {
      calls = new TenantLimitCalls();
      byNode.set(node, calls);
    }
    return calls;
  };
}

/** Started calls' slots at the front of a tenant's queue past which they are dropped (≤ a queue's worth moved). */
const COMPACT_QUEUE_AT = 1024;

function noop(): void {}
