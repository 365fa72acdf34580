import type { ServerResponse } from 'node:http';
import type { QuotaPolicy } from '@vantageedge/shared/domain/gateway-config';
import type { Logger } from '@vantageedge/shared/observability/logger';
import type { QuotaStore } from '@vantageedge/shared/usage/quota-store';
import {
  type QuotaDecision,
  type QuotaWindow,
  quotaExceededMessage,
  requestQuotaWindows,
} from '@vantageedge/shared/usage/quota-windows';
import { StoreClock } from '@vantageedge/shared/usage/store-clock';
import { Counter, type Registry } from 'prom-client';
import { failExchange } from '../pipeline/errors.js';
import type { GatewayExchange } from '../pipeline/exchange.js';
import type { RoutePolicy, RouteStage, StageResult } from '../pipeline/stage.js';
import { LIMIT_CHECKS_BUSY } from '../ratelimit/rejection.js';
import { type LimitCallsOf, limitCallsPerNode } from '../ratelimit/tenant-limit-calls.js';
import type { StoreCircuit } from '../store-circuit/store-circuit.js';
import { createStoreCircuits, nodeField } from '../store-circuit/store-circuits.js';

/**
 * Request quotas (requests per UTC day/month) of the tenant and of the calling API key, enforced
 * after authentication and rate limiting. Every replica counts in the same Redis counters with one
 * atomic script per request, so the limit holds exactly across replicas: the request that would go
 * over is refused with 429 `quota_exceeded` on whichever replica it reaches, and refused requests do
 * not count. When the counters cannot be reached the request is served (quotas fail open: a Redis
 * outage must not take every tenant with a quota offline) and the counter below goes up. The store is
 * called through a circuit (store-circuit.ts), like the rate limiter's and the cache's: while Redis
 * fails or stalls, a metered request costs at most one command timeout per circuit period, not one each.
 * On a Redis Cluster there is one circuit per master (store-circuits.ts): one master's trouble leaves the
 * tenants on the others counted.
 *
 * The periods are Redis's (quota-windows.ts): the windows are named by the replica's estimate of its
 * clock (StoreClock, corrected by every decision), and when Redis's clock is in another period the
 * request is checked again with that period's windows — so a replica whose clock is off counts into
 * the same day and month as every other, at the cost of a second call only around a period's end.
 *
 * Every answer carries what remains of the tightest window: X-Quota-Limit, X-Quota-Remaining and
 * X-Quota-Reset (seconds until that period ends, by Redis's clock); a refusal also has Retry-After.
 */
export interface QuotaStageOptions {
  store: QuotaStore;
  keyPrefix: string;
  logger?: Logger;
  registry?: Registry;
  /** This replica's clock (default the system's). */
  clock?: () => number;
  /** The counters' clock as this replica reads it; default one over `clock`. Shared with the usage recorder. */
  storeClock?: StoreClock;
  /** Consecutive store failures that open the circuit (then the store is not tried for `halfOpenAfterMs`). */
  circuitFailures?: number | undefined;
  halfOpenAfterMs?: number | undefined;
  /**
   * Each tenant's turns on the counters' connection, shared with the rate limiter's calls on it; a
   * request past its tenant's turns and queue is refused 503 `limit_checks_busy`: serving it uncounted
   * would let a client that holds enough metered requests open at once (an HTTP/2 burst) outrun its
   * quota. Per Redis node (limitCallsPerNode).
   */
  tenantCalls?: LimitCallsOf | undefined;
}

export function createQuotaStage(options: QuotaStageOptions): RoutePolicy {
  const clock = options.clock ?? Date.now;
  const storeClock = options.storeClock ?? new StoreClock(clock);
  const tenantCalls = options.tenantCalls ?? limitCallsPerNode(options.store.nodeOf);
  const decisions = new Counter({
    name: 'vantageedge_gateway_quota_decisions_total',
    help: "Requests checked against a quota, by outcome (allowed, exceeded, unavailable: counters unreachable, served; busy: past the tenant's queue of checks, refused)",
    labelNames: ['outcome'] as const,
    registers: options.registry ? [options.registry] : [],
  });
  const allowed = decisions.labels('allowed');
  const exceeded = decisions.labels('exceeded');
  const unavailable = decisions.labels('unavailable');
  const busy = decisions.labels('busy');
  let lastWarningAt = 0;
  const warnUnavailable = (error: unknown) => {
    unavailable.inc();
    const now = clock();
    if (now - lastWarningAt < 10_000) return; // one line per 10 s, not one per request
    lastWarningAt = now;
    options.logger?.warn('quota counters unreachable: requests are served uncounted', {
      error: String(error),
    });
  };

  const circuits = createStoreCircuits({
    nodeOf: options.store.nodeOf,
    failures: options.circuitFailures,
    halfOpenAfterMs: options.halfOpenAfterMs,
    onOpen: (node) =>
      options.logger?.warn('quota store circuit opened; requests are served uncounted', nodeField(node)),
    onClose: (node) =>
      options.logger?.info('quota store circuit closed; requests are counted again', nodeField(node)),
  });

  const unreachable = (error: unknown): StageResult => {
    warnUnavailable(error);
    return 'continue';
  };

  const answer = (
    exchange: GatewayExchange,
    windows: readonly QuotaWindow[],
    decision: Exclude<QuotaDecision, { allowed: null }>,
  ): StageResult => {
    storeClock.observe(decision.storeNow);
    if (decision.allowed) {
      allowed.inc();
      setQuotaHeaders(exchange.res, windows, decision.used, decision.storeNow);
      return 'continue';
    }
    exceeded.inc();
    refuse(exchange, windows, decision.index, decision.used, decision.storeNow);
    return 'handled';
  };

  /**
   * Redis's clock was in another period than the windows asked about (this replica's clock is off, or
   * the period ended in between): asks about the period of Redis's time, again while it names another.
   */
  const inPeriodOf = async (
    storeNow: number,
    exchange: GatewayExchange,
    circuit: StoreCircuit,
    tenantId: string,
    tenantQuota: QuotaPolicy | null,
    apiKey: { id: string; quota: QuotaPolicy | undefined } | undefined,
  ): Promise<StageResult> => {
    storeClock.observe(storeNow);
    let at = storeNow;
    try {
      for (let attempt = 1; attempt < MAX_PERIOD_ATTEMPTS; attempt++) {
        const windows = requestQuotaWindows(options.keyPrefix, tenantId, tenantQuota, apiKey, at);
        const decision = await circuit.run(() => options.store.consume(windows));
        if (decision.allowed !== null) return answer(exchange, windows, decision);
        at = decision.storeNow;
      }
    } catch (error) {
      return unreachable(error);
    }
    return unreachable('the counters named another period each time');
  };

  return {
    name: 'quota',
    readsOrigins: false,
    compiledFrom: (tenant, apiKeyQuotas) =>
      JSON.stringify([tenant.settings.quota ?? null, [...apiKeyQuotas]]),
    compileRoute({ tenant, route, apiKeyQuotas }) {
      const tenantQuota = tenant.settings.quota ?? null;
      const keysMayHaveQuota = route.auth_mode !== 'public' && apiKeyQuotas.size > 0;
      if (tenantQuota === null && !keysMayHaveQuota) return null;
      const stage: RouteStage = {
        name: 'quota',
        onRequest(exchange) {
          const keyId = exchange.identity.apiKeyId;
          const apiKey = keyId === undefined ? undefined : { id: keyId, quota: apiKeyQuotas.get(keyId) };
          const now = storeClock.now();
          const windows = requestQuotaWindows(options.keyPrefix, tenant.id, tenantQuota, apiKey, now);
          if (windows.length === 0) return 'continue'; // a caller without a quota on a tenant without one
          const circuit = circuits.of(tenant.id);
          if (circuit.skipping) {
            warnUnavailable('quota store circuit open');
            return 'continue';
          }
          const calls = tenantCalls(tenant.id);
          const turn = calls.take(tenant.id);
          if (turn === false) {
            busy.inc();
            refuseBusy(exchange);
            return 'handled';
          }
          const count = (): Promise<StageResult> =>
            circuit
              .run(() => options.store.consume(windows))
              .then(
                (decision): StageResult | Promise<StageResult> =>
                  decision.allowed === null
                    ? inPeriodOf(decision.storeNow, exchange, circuit, tenant.id, tenantQuota, apiKey)
                    : answer(exchange, windows, decision),
                unreachable,
              )
              .finally(() => calls.give(tenant.id));
          if (turn === true) return count();
          return turn.then((): StageResult | Promise<StageResult> => {
            if (!circuit.skipping) return count();
            calls.give(tenant.id);
            warnUnavailable('quota store circuit open');
            return 'continue';
          });
        },
      };
      return stage;
    },
  };
}

/** Calls for one request: its windows, then (the counters' clock in another period) those of theirs. */
const MAX_PERIOD_ATTEMPTS = 3;

/** Seconds until the window's period ends (at least 1). */
function secondsUntil(window: QuotaWindow, now: number): number {
  return Math.max(1, Math.ceil((window.resetsAt - now) / 1000));
}

/** The window with the fewest requests left decides the headers (ties: the one that resets first). */
function setQuotaHeaders(
  res: ServerResponse,
  windows: readonly QuotaWindow[],
  used: readonly number[],
  now: number,
): void {
  let tightest = 0;
  let least = Number.POSITIVE_INFINITY;
  windows.forEach((window, index) => {
    const remaining = Math.max(0, window.limit - (used[index] ?? 0));
    const current = windows[tightest]!;
    if (remaining < least || (remaining === least && window.resetsAt < current.resetsAt)) {
      least = remaining;
      tightest = index;
    }
  });
  const window = windows[tightest]!;
  res.setHeader('x-quota-limit', String(window.limit));
  res.setHeader('x-quota-remaining', String(least));
  res.setHeader('x-quota-reset', String(secondsUntil(window, now)));
}

/**
 * The tenant's quota and rate-limit checks in flight and waiting are at their bound on this replica: its
 * clients sent more metered requests at once than its turns on the counters take. Retry-After as a
 * fail-closed rate limit's: turns free within milliseconds.
 */
function refuseBusy(exchange: GatewayExchange): void {
  failExchange(
    exchange,
    503,
    LIMIT_CHECKS_BUSY,
    "the tenant's rate-limit and quota checks are at their bound on this gateway; retry after the number of seconds in Retry-After",
    { 'retry-after': '1' },
  );
}

function refuse(
  exchange: GatewayExchange,
  windows: readonly QuotaWindow[],
  index: number,
  used: number,
  now: number,
): void {
  const window = windows[index] ?? windows[0]!;
  const retryAfter = String(secondsUntil(window, now));
  failExchange(exchange, 429, 'quota_exceeded', quotaExceededMessage(window, used), {
    'retry-after': retryAfter,
    'x-quota-limit': String(window.limit),
    'x-quota-remaining': '0',
    'x-quota-reset': retryAfter,
  });
}
