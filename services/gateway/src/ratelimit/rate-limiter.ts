import type {
  CompiledRateLimits,
  LimitDescriptor,
} from '@vantageedge/shared/gateway-policies/compile-rate-limits';
import {
  FAST_MODE_LEASE_MS,
  limitKey,
  OVERFLOW_CALLER,
  tenantLedgerKey,
} from '@vantageedge/shared/gateway-policies/compile-rate-limits';
import { type LimitSpec, sameLimitSpec } from '@vantageedge/shared/gateway-policies/limit-spec';
import type { Logger } from '@vantageedge/shared/observability/logger';
import { Counter, Gauge, type Registry } from 'prom-client';
import { BoundCounter } from '../observability/bound-metrics.js';
import { type StoreFailureReason, storeFailureReason } from '../store-circuit/store-circuit.js';
import { createStoreCircuits, nodeField } from '../store-circuit/store-circuits.js';
import { FairLru } from './fair-lru.js';
import type { LimitOutcome, LimitRequest, LimitStore } from './limit-store.js';
import { MemoryLimitStore } from './memory-limit-store.js';
import { type LimitCallsOf, limitCallsPerNode } from './tenant-limit-calls.js';

/** Who is asking; tenantId/routeId must be those the limits were compiled for. */
export interface RateLimitIdentity {
  readonly tenantId: string;
  readonly routeId: string;
  /**
   * The caller's principal (Identity.principal), what a `scope: user` limit counts; none for an
   * anonymous caller, counted by address in a namespace (`anon-ip:`) no principal starts with.
   */
  readonly userId?: string | undefined;
  readonly apiKeyId?: string | undefined;
  readonly clientIp: string;
}

export type RateLimitHeaders = ReadonlyArray<readonly [name: string, value: string]>;

export type RateLimitDecision =
  | { readonly outcome: 'allowed'; readonly headers: RateLimitHeaders; readonly degraded: boolean }
  | {
      readonly outcome: 'limited';
      readonly headers: RateLimitHeaders;
      readonly retryAfterSeconds: number;
      /** Name of the refusing limit (its RateLimit-Policy item). */
      readonly limitedBy: string;
      readonly degraded: boolean;
    }
  /**
   * Redis unreachable and a fail-closed limit applies, or (`busy`) the tenant's checks in flight and
   * waiting at their bound on this replica, whatever the limit's on_store_failure: answer 503.
   */
  | { readonly outcome: 'store_unavailable'; readonly headers: RateLimitHeaders; readonly busy?: true };

export interface RateLimiterOptions {
  /**
   * Where the limits live: a RedisLimitStore shares them across replicas; a MemoryLimitStore keeps
   * them in this process (single-process mode).
   */
  store: LimitStore;
  registry: Registry;
  logger: Logger;
  /** Prepended to every limit key (tests isolate themselves with it). */
  keyPrefix?: string | undefined;
  /** Consecutive store failures that open the circuit (then the store is not tried for `halfOpenAfterMs`). */
  circuitFailures?: number | undefined;
  halfOpenAfterMs?: number | undefined;
  /**
   * Fail-open fallback: each replica enforces limit / share locally while Redis is down. 1 (default)
   * keeps the full limit per replica; set it to the replica count to keep the total near the limit.
   */
  fallbackShare?: number | undefined;
  /**
   * The most keys this replica keeps for itself: fail-open fallback counters, and fast-mode leases,
   * each shared fairly between tenants (FairLru: least recently used of a tenant holding its share
   * dropped first; a dropped lease only sends its next request to the store).
   */
  maxLocalKeys?: number | undefined;
  /**
   * Each tenant's turns on the store's connection, shared with whatever else sends its calls down the
   * same connection (the quota stage), per Redis node; default turns of the limiter's own.
   */
  tenantCalls?: LimitCallsOf | undefined;
}

export interface RateLimiter {
  check(limits: CompiledRateLimits, identity: RateLimitIdentity): Promise<RateLimitDecision>;
  /**
   * The same decision, synchronously when it needs no store call (fast-mode leases, a refusal
   * remembered from the store, an open circuit, limits in this process); a promise otherwise.
   */
  checkNow(
    limits: CompiledRateLimits,
    identity: RateLimitIdentity,
  ): RateLimitDecision | Promise<RateLimitDecision>;
  /** True while the store, or on a Redis Cluster one of its masters, is considered down (circuit open). */
  readonly storeDegraded: boolean;
}

const NO_LIMITS: RateLimitDecision = { outcome: 'allowed', headers: [], degraded: false };

type DecisionOutcome = 'allowed' | 'limited' | 'store_unavailable';
/** A limit's three decision counters sit at index * 3 + slot in CompiledRateLimits.counters. */
const DECISION_SLOT: Record<DecisionOutcome, number> = { allowed: 0, limited: 1, store_unavailable: 2 };

/** A fast-mode replica's local allowance for one key: units already taken from Redis. */
interface Lease {
  units: number;
  expiresAt: number;
  /** After Redis refused a lease, refuse locally until then (no Redis call per refused request). */
  refusedUntil: number;
  /**
   * The limit Redis refused under: a refusal holds only for that limit, not for the one a later snapshot
   * compiled (a raised limit admits from the next request on, as in exact mode).
   */
  refusedUnder: LimitSpec | null;
  retryAfterMs: number;
  remaining: number;
  resetMs: number;
  /**
   * A lease refill in flight (resolves with how it ended): requests finding the lease empty or expired
   * wait for it instead of piling on Redis.
   */
  pending: Promise<RefillEnd> | null;
}

/**
 * How a call to Redis ended: `answered`; `failed` (Redis down, slow or the circuit open: decided as
 * `on_store_failure` says); `busy` (never sent: the tenant's calls in flight and waiting were at their
 * bound). Busy is no outage: the tenant's clients sent more checks at once than its turns take, and one
 * client can (an HTTP/2 burst), so it is refused 503 whatever `on_store_failure` says — a fail-open
 * fallback would give that client a second allowance on every replica.
 */
type RefillEnd = 'answered' | 'failed' | 'busy';

function emptyLease(): Lease {
  return {
    units: 0,
    expiresAt: 0,
    refusedUntil: 0,
    refusedUnder: null,
    retryAfterMs: 0,
    remaining: 0,
    resetMs: 0,
    pending: null,
  };
}

/** The lease's remembered refusal is one of this limit (see Lease.refusedUnder). */
function refusalHoldsFor(lease: Lease, spec: LimitSpec): boolean {
  return lease.refusedUnder !== null && sameLimitSpec(lease.refusedUnder, spec);
}

function keyFor(prefix: string, descriptor: LimitDescriptor, identity: RateLimitIdentity): string {
  return prefix + limitKey(descriptor, identity);
}

/**
 * Checks all limits of a request with at most one store call (one Redis round trip with a
 * RedisLimitStore; with a MemoryLimitStore, single-process mode, the same path runs in memory).
 *
 * Accuracy modes (policy.accuracy):
 * - exact: every request runs the Lua script (atomic across replicas).
 * - fast: a replica leases `leaseSize` units (≈ FAST_MODE_LEASE_MS worth of the rate) from Redis with the
 *   same script and spends them locally; Redis is called once per lease, not per request. Tokens are
 *   really taken from the shared limit, so replicas never jointly exceed it by more than what is leased
 *   but not yet spent: at most R × leaseSize units early (R replicas), and leases unspent after
 *   FAST_MODE_LEASE_MS are dropped, under-admitting by at most R × leaseSize per lease period.
 *   After a refused lease the replica refuses locally until the retry-after Redis gave, as long as the
 *   limit is the one Redis refused under (a snapshot that changes it ends the refusal).
 *   At most one refill per key is in flight per replica (concurrent requests wait for it), and a lease's
 *   FAST_MODE_LEASE_MS count from Redis's answer, so a replica takes at most one lease per lease period.
 *
 * Store failure: a short command timeout (Redis client setting) plus a circuit (store-circuit.ts:
 * consecutive failures open it, half-open after `halfOpenAfterMs`), so an outage costs at most one
 * timeout per circuit period. On a Redis Cluster there is one circuit per master (store-circuits.ts):
 * a master that fails or stalls degrades only the tenants whose limits it holds. A command Redis refuses
 * (a reply error about that call) decides that request the same way, but does not count towards opening
 * the circuit the replica's other limits share. A charge Redis answers after the command timeout was
 * applied all the same: when its answer arrives, what the request did not use is given back (all of
 * it for a request refused without Redis, all but one unit for one the fail-open fallback admitted).
 * Then,
 * per policy.on_store_failure: `closed` → 503 decision; `open` → the same limits in a local memory store
 * (limit / fallbackShare per replica). Recovery is automatic when a half-open trial succeeds.
 */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const prefix = options.keyPrefix ?? '';
  const share = options.fallbackShare ?? 1;
  const maxLocalKeys = options.maxLocalKeys ?? 100_000;
  const local = new MemoryLimitStore({ maxKeys: maxLocalKeys });
  const { store, logger } = options;
  // Bounded, fairly between tenants: a scoped limit has a lease per caller, and a refused one is kept
  // until its retry-after.
  const leases = new FairLru<Lease>(maxLocalKeys);
  const tenantCalls = options.tenantCalls ?? limitCallsPerNode(store.nodeOf);

  const decisions = new BoundCounter({
    name: 'vantageedge_gateway_ratelimit_decisions_total',
    help: 'Rate-limit decisions per limit: allowed, limited or store_unavailable',
    labelNames: ['tenant', 'route', 'scope', 'outcome'],
    registry: options.registry,
  });
  const overflows = new BoundCounter({
    name: 'vantageedge_gateway_ratelimit_overflow_total',
    help: "Rate-limit calls of callers without a key of their own while their tenant's caller keys were at GATEWAY_RATE_LIMIT_TENANT_MAX_KEYS: counted on the limit's shared overflow key",
    labelNames: ['tenant'],
    registry: options.registry,
  });
  const storeErrors = new Counter({
    name: 'vantageedge_gateway_ratelimit_store_errors_total',
    help: 'Redis calls of the rate limiter that failed (error/timeout), were refused by Redis (refused: that call only) or were skipped (circuit_open; tenant_queue_full: the tenant had its share of calls in flight and waiting)',
    labelNames: ['reason'],
    registers: [options.registry],
  });
  const fallbacks = new Counter({
    name: 'vantageedge_gateway_ratelimit_fallback_total',
    help: 'Requests decided without Redis: local limiter (fail open) or 503 (fail closed)',
    labelNames: ['mode'],
    registers: [options.registry],
  });
  const lateCharges = new Counter({
    name: 'vantageedge_gateway_ratelimit_late_answers_total',
    help: 'Rate-limit calls Redis answered after the command timeout (the request decided without it): what Redis charged for a request not admitted is given back',
    registers: [options.registry],
  });
  const circuitOpen = new Gauge({
    name: 'vantageedge_gateway_ratelimit_store_circuit_open',
    help: '1 while a circuit around the rate-limit Redis is open (on a Redis Cluster: one per master)',
    registers: [options.registry],
  });
  const circuits = createStoreCircuits({
    nodeOf: store.nodeOf,
    failures: options.circuitFailures,
    halfOpenAfterMs: options.halfOpenAfterMs,
    onOpen(node) {
      circuitOpen.set(1);
      logger.warn('rate-limit store circuit opened; deciding locally per on_store_failure', nodeField(node));
    },
    onClose(node, openCircuits) {
      if (openCircuits === 0) circuitOpen.set(0);
      logger.info('rate-limit store circuit closed; limits shared again', nodeField(node));
    },
  });

  /** The decision counter of a route's limit, bound once (kept with the route's compiled limits). */
  const count = (limits: CompiledRateLimits, index: number, outcome: DecisionOutcome): void => {
    const slot = index * 3 + DECISION_SLOT[outcome];
    let series = limits.counters[slot];
    if (series === undefined) {
      const scope = limits.descriptors[index]!.name;
      series = decisions.series([limits.tenantId, limits.metricsRoute, scope, outcome]);
      limits.counters[slot] = series;
    }
    series.inc();
  };

  const decide = (
    limits: CompiledRateLimits,
    outcomes: readonly LimitOutcome[],
    degraded: boolean,
  ): RateLimitDecision => {
    const { descriptors } = limits;
    let refusing = -1;
    let tightest = 0;
    let overflowed = false;
    for (let i = 0; i < outcomes.length; i++) {
      const outcome = outcomes[i]!;
      // Of the limits refusing, the one that admits last: the request is refused until every one admits.
      const refusedLonger = refusing < 0 || outcome.retryAfterMs > outcomes[refusing]!.retryAfterMs;
      if (outcome.granted <= 0 && outcome.retryAfterMs > 0 && refusedLonger) refusing = i;
      if (outcome.remaining < outcomes[tightest]!.remaining) tightest = i;
      if (outcome.overflowed === true) overflowed = true;
    }
    if (overflowed) overflows.series([limits.tenantId]).inc();
    const allowed = outcomes.every((o) => o.granted > 0);
    if (allowed) {
      for (let i = 0; i < descriptors.length; i++) count(limits, i, 'allowed');
      const shown = outcomes[tightest]!;
      return {
        outcome: 'allowed',
        degraded,
        headers: [
          ['RateLimit-Policy', limits.policyHeader ?? ''],
          [
            'RateLimit',
            `"${descriptors[tightest]!.name}";r=${shown.remaining};t=${Math.ceil(shown.resetMs / 1000)}`,
          ],
        ],
      };
    }
    const index = refusing < 0 ? outcomes.findIndex((o) => o.granted <= 0) : refusing;
    const refused = outcomes[index]!;
    const descriptor = descriptors[index]!;
    count(limits, index, 'limited');
    const retryAfterSeconds = Math.max(1, Math.ceil(refused.retryAfterMs / 1000));
    return {
      outcome: 'limited',
      degraded,
      limitedBy: descriptor.name,
      retryAfterSeconds,
      headers: [
        ['RateLimit-Policy', limits.policyHeader ?? ''],
        ['RateLimit', `"${descriptor.name}";r=0;t=${retryAfterSeconds}`],
        ['Retry-After', String(retryAfterSeconds)],
      ],
    };
  };

  /** A scoped limit's key is a caller's: counted in its tenant's key ledger (RedisLimitStore). */
  const callerKeyOf = (tenantId: string, descriptor: LimitDescriptor): LimitRequest['callerKey'] =>
    descriptor.fixedKey
      ? undefined
      : {
          ledgerKey: `${prefix}${tenantLedgerKey(tenantId)}`,
          overflowKey: `${prefix}${descriptor.keyPrefix}${OVERFLOW_CALLER}`,
        };

  const requestsFor = (
    limits: CompiledRateLimits,
    identity: RateLimitIdentity,
    divisor: number,
  ): LimitRequest[] =>
    limits.descriptors.map((descriptor) => ({
      key: keyFor(prefix, descriptor, identity),
      spec:
        divisor === 1
          ? descriptor.spec
          : {
              ...descriptor.spec,
              capacity: Math.max(1, Math.floor(descriptor.spec.capacity / divisor)),
              ratePerMs: descriptor.spec.ratePerMs / divisor,
            },
      cost: 1,
      minCost: 1,
      partition: limits.tenantId,
    }));

  /** 503: a fail-closed limit's answer without the store; any limit's when `busy` (RefillEnd). */
  const refusedUnavailable = (limits: CompiledRateLimits, busy = false): RateLimitDecision => {
    for (let i = 0; i < limits.descriptors.length; i++) count(limits, i, 'store_unavailable');
    const headers: RateLimitHeaders = limits.policyHeader ? [['RateLimit-Policy', limits.policyHeader]] : [];
    return busy ? { outcome: 'store_unavailable', headers, busy } : { outcome: 'store_unavailable', headers };
  };

  const fallback = (limits: CompiledRateLimits, identity: RateLimitIdentity): RateLimitDecision => {
    if (limits.descriptors.some((d) => d.failClosed)) {
      fallbacks.labels({ mode: 'closed' }).inc();
      return refusedUnavailable(limits);
    }
    fallbacks.labels({ mode: 'open' }).inc();
    return decide(limits, local.consumeNow(requestsFor(limits, identity, share)), true);
  };

  /**
   * Fast mode: while another request refills a lease this request cannot spend from (empty or
   * expired), this request must wait for that refill instead of sending one more (at most one refill
   * per key and replica in flight; otherwise N concurrent requests at a lease's expiry take N leases
   * from the shared bucket and drain it).
   */
  const refillToWaitFor = (
    limits: CompiledRateLimits,
    identity: RateLimitIdentity,
  ): Promise<RefillEnd> | null => {
    for (const descriptor of limits.descriptors) {
      if (descriptor.accuracy !== 'fast') continue;
      const lease = leases.get(limits.tenantId, keyFor(prefix, descriptor, identity));
      if (!lease?.pending || (lease.units >= 1 && lease.expiresAt > Date.now())) continue;
      return lease.pending;
    }
    return null;
  };

  /** Waits for refills in flight, then decides. Repeats: waiting on one limit may let another start one. */
  const checkAfterRefills = async (
    limits: CompiledRateLimits,
    identity: RateLimitIdentity,
    refill: Promise<RefillEnd>,
  ): Promise<RateLimitDecision> => {
    for (let pending: Promise<RefillEnd> | null = refill; pending !== null; ) {
      // The refill this request waited for failed: the store is down for it too (store-failure path).
      const end = await pending;
      if (end === 'failed') return fallback(limits, identity);
      if (end === 'busy') return refusedUnavailable(limits, true);
      pending = refillToWaitFor(limits, identity);
    }
    return spendAndConsume(limits, identity);
  };

  /**
   * Spends from local leases what it can and sends the rest to the store in one call. Synchronous when
   * nothing needs the store. No await may sit between refillToWaitFor() and setting `pending` here.
   */
  const spendAndConsume = (
    limits: CompiledRateLimits,
    identity: RateLimitIdentity,
  ): RateLimitDecision | Promise<RateLimitDecision> => {
    const { descriptors } = limits;
    const now = Date.now();
    const outcomes: Array<LimitOutcome | undefined> = new Array(descriptors.length);
    let remoteRequests: LimitRequest[] | undefined;
    let remoteIndexes: number[] | undefined;
    let spentLeases: Lease[] | undefined;
    for (let i = 0; i < descriptors.length; i++) {
      const descriptor = descriptors[i]!;
      const key = keyFor(prefix, descriptor, identity);
      let request: LimitRequest;
      if (descriptor.accuracy === 'fast') {
        const lease = leases.get(limits.tenantId, key);
        if (lease && lease.refusedUntil > now && refusalHoldsFor(lease, descriptor.spec)) {
          outcomes[i] = {
            granted: 0,
            remaining: 0,
            resetMs: lease.resetMs,
            retryAfterMs: lease.refusedUntil - now,
          };
          if (spentLeases) for (const spent of spentLeases) spent.units++;
          return decide(
            limits,
            outcomes.map((o) => o ?? { granted: 0, remaining: 0, resetMs: 0, retryAfterMs: 0 }),
            false,
          );
        }
        if (lease && lease.units >= 1 && lease.expiresAt > now) {
          lease.units--;
          if (spentLeases === undefined) spentLeases = [lease];
          else spentLeases.push(lease);
          outcomes[i] = {
            granted: 1,
            remaining: lease.remaining + lease.units,
            resetMs: lease.resetMs,
            retryAfterMs: 0,
          };
          continue;
        }
        if (!lease) leases.set(limits.tenantId, key, emptyLease());
        request = {
          key,
          spec: descriptor.spec,
          cost: descriptor.leaseSize,
          minCost: 1,
          partition: limits.tenantId,
          callerKey: callerKeyOf(limits.tenantId, descriptor),
        };
      } else {
        request = {
          key,
          spec: descriptor.spec,
          cost: 1,
          minCost: 1,
          partition: limits.tenantId,
          callerKey: callerKeyOf(limits.tenantId, descriptor),
        };
      }
      if (remoteRequests === undefined || remoteIndexes === undefined) {
        remoteRequests = [request];
        remoteIndexes = [i];
      } else {
        remoteRequests.push(request);
        remoteIndexes.push(i);
      }
    }
    if (remoteRequests === undefined || remoteIndexes === undefined) {
      return decide(limits, outcomes as LimitOutcome[], false);
    }
    return consumeFromStore(limits, identity, outcomes, remoteRequests, remoteIndexes, spentLeases ?? []);
  };

  const consumeFromStore = async (
    limits: CompiledRateLimits,
    identity: RateLimitIdentity,
    outcomes: Array<LimitOutcome | undefined>,
    remoteRequests: LimitRequest[],
    remoteIndexes: number[],
    spentLeases: Lease[],
  ): Promise<RateLimitDecision> => {
    const { descriptors } = limits;
    let settle: (end: RefillEnd) => void = () => {};
    const refill = new Promise<RefillEnd>((resolve) => {
      settle = resolve;
    });
    const refilling: Lease[] = [];
    for (let j = 0; j < remoteIndexes.length; j++) {
      if (descriptors[remoteIndexes[j]!]!.accuracy !== 'fast') continue;
      const key = remoteRequests[j]!.key;
      const lease = leases.get(limits.tenantId, key) ?? emptyLease();
      leases.set(limits.tenantId, key, lease);
      lease.pending = refill;
      refilling.push(lease);
    }
    const done = (end: RefillEnd) => {
      for (const lease of refilling) if (lease.pending === refill) lease.pending = null;
      settle(end);
    };
    // Decided without the store (its call failed): whether the request was admitted (fail-open fallback).
    let admittedWithout: boolean | undefined;
    const unavailable = (reason: StoreFailureReason | 'tenant_queue_full') => {
      done(reason === 'tenant_queue_full' ? 'busy' : 'failed');
      for (const spent of spentLeases) spent.units++;
      storeErrors.labels({ reason }).inc();
      if (reason === 'tenant_queue_full') return refusedUnavailable(limits, true);
      const decision = fallback(limits, identity);
      admittedWithout = decision.outcome === 'allowed';
      return decision;
    };
    // The call failed (timed out) and Redis charged all the same: it keeps one unit of each limit for a
    // request the fallback admitted (it was served), nothing for one refused (503, or the fallback's 429).
    const lateOutcomes = (late: readonly LimitOutcome[]) => {
      const kept = admittedWithout === true ? 1 : 0;
      lateCharges.inc();
      return late.map((outcome) => Math.max(0, outcome.granted - kept));
    };
    // Open circuit (of the node holding this tenant's limits): decide locally without even a rejected promise.
    const circuit = circuits.of(limits.tenantId);
    if (circuit.skipping) return unavailable('circuit_open');
    const { tenantId } = limits;
    const calls = tenantCalls(tenantId);
    const turn = calls.take(tenantId);
    if (turn === false) return unavailable('tenant_queue_full');
    if (turn !== true) {
      await turn;
      if (circuit.skipping) {
        calls.give(tenantId);
        return unavailable('circuit_open');
      }
    }
    let reply: LimitOutcome[];
    try {
      reply = await circuit.run(() => store.consume(remoteRequests, lateOutcomes));
    } catch (error) {
      return unavailable(storeFailureReason(error));
    } finally {
      calls.give(tenantId);
    }
    // Lease times count from the store's answer, not from before the call: a refill slower than
    // FAST_MODE_LEASE_MS would otherwise arrive expired, its units wasted and leased again.
    const answeredAt = Date.now();
    for (let j = 0; j < remoteIndexes.length; j++) {
      const i = remoteIndexes[j]!;
      const descriptor = descriptors[i]!;
      const outcome = reply[j]!;
      if (descriptor.accuracy === 'fast') {
        const key = remoteRequests[j]!.key;
        const lease = leases.get(limits.tenantId, key) ?? emptyLease();
        if (outcome.granted > 0) {
          lease.units = (lease.expiresAt > answeredAt ? lease.units : 0) + outcome.granted - 1;
          lease.expiresAt = answeredAt + FAST_MODE_LEASE_MS;
          lease.refusedUntil = 0;
          outcome.granted = 1;
        } else if (outcome.retryAfterMs > 0) {
          lease.refusedUntil = answeredAt + outcome.retryAfterMs;
          lease.refusedUnder = descriptor.spec;
        }
        lease.remaining = outcome.remaining;
        lease.resetMs = outcome.resetMs;
        leases.set(limits.tenantId, key, lease);
        outcome.remaining += lease.units;
      }
      outcomes[i] = outcome;
    }
    done('answered');
    const all = outcomes as LimitOutcome[];
    if (spentLeases.length > 0 && !all.every((o) => o.granted > 0)) {
      // Another limit refused: give back what this request took from local leases.
      for (const spent of spentLeases) spent.units++;
    }
    return decide(limits, all, false);
  };

  const checkNow = (
    limits: CompiledRateLimits,
    identity: RateLimitIdentity,
  ): RateLimitDecision | Promise<RateLimitDecision> => {
    if (limits.descriptors.length === 0) return NO_LIMITS;
    const refill = refillToWaitFor(limits, identity);
    return refill === null ? spendAndConsume(limits, identity) : checkAfterRefills(limits, identity, refill);
  };

  // Bound the lease map: drop expired leases now and then (leases live FAST_MODE_LEASE_MS).
  const sweep = setInterval(() => {
    const now = Date.now();
    leases.deleteWhere((lease) => lease.expiresAt < now && lease.refusedUntil < now && !lease.pending);
  }, 10_000);
  sweep.unref();

  return {
    get storeDegraded() {
      return circuits.degraded;
    },
    check(limits, identity) {
      const decision = checkNow(limits, identity);
      return decision instanceof Promise ? decision : Promise.resolve(decision);
    },
    checkNow,
  };
}
