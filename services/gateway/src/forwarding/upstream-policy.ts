import type { RetryPolicy, RouteTimeouts } from '@vantageedge/shared/domain/route-policies';
import { ROUTE_ONLY, type RoutePolicy } from '../pipeline/stage.js';

/** A route's retries, compiled once per snapshot. */
export interface CompiledRetry {
  /** Tries in all, the first included. */
  readonly attempts: number;
  readonly onConnectError: boolean;
  readonly onReset: boolean;
  readonly statuses: ReadonlySet<number>;
  readonly methods: ReadonlySet<string>;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly budgetPercent: number;
  readonly budgetMinRetries: number;
  /** Counts a retry (reason: connect_error, reset, 502, …) or a retry the budget refused. */
  readonly counted: (outcome: 'retried' | 'budget_exhausted', reason: string) => void;
}

/** How a route calls its origin when it overrides the origin's timeouts or retries. */
export interface UpstreamPolicy {
  readonly connectMs: number | undefined;
  readonly responseHeadersMs: number | undefined;
  readonly idleMs: number | undefined;
  readonly retry: CompiledRetry | undefined;
}

/**
 * `timeouts` and `retries` as a route stage: its request hook hands the compiled policy to the
 * forwarding step (exchange.upstreamPolicy), which then sends each attempt with the route's timeouts
 * and retries failed ones on another target (forward-with-policy.ts). Routes without either get no
 * stage and are forwarded exactly once, as before.
 */
export function createUpstreamPolicy(): RoutePolicy {
  return {
    name: 'upstream_policy',
    compiledFrom: ROUTE_ONLY,
    compileRoute({ route, origins, routeMetrics }) {
      if ((route.fixed_response ?? null) !== null || (route.redirect ?? null) !== null) return null;
      const timeouts = route.timeouts ?? null;
      const retries = route.retries ?? null;
      if (timeouts === null && retries === null) return null;
      const retry =
        retries === null
          ? undefined
          : compileRetry(retries, (outcome, reason) => routeMetrics?.countRetry(outcome, reason));
      if (retry !== undefined) {
        // Retry budgets need each target's recent requests: count them on every origin the route uses.
        const used = [
          route.origin_id,
          ...(route.traffic_split?.origins.map((entry) => entry.origin_id) ?? []),
        ];
        for (const id of used) if (id !== null) origins.get(id)?.upstreams.trackRetryBudget?.();
      }
      const policy = compileTimeouts(timeouts, retry);
      return {
        name: 'upstream_policy',
        onRequest(exchange) {
          exchange.upstreamPolicy = policy;
          return 'continue';
        },
      };
    },
  };
}

function compileTimeouts(timeouts: RouteTimeouts | null, retry: CompiledRetry | undefined): UpstreamPolicy {
  return {
    connectMs: timeouts?.connect_ms,
    responseHeadersMs: timeouts?.response_headers_ms,
    idleMs: timeouts?.idle_ms,
    retry,
  };
}

function compileRetry(retries: RetryPolicy, counted: CompiledRetry['counted']): CompiledRetry {
  const on = new Set<string>(retries.on);
  return {
    attempts: retries.attempts,
    onConnectError: on.has('connect_error'),
    onReset: on.has('reset'),
    statuses: new Set([502, 503, 504].filter((status) => on.has(String(status)))),
    methods: new Set(retries.methods),
    backoffBaseMs: retries.backoff.base_ms,
    backoffMaxMs: retries.backoff.max_ms,
    budgetPercent: retries.budget.percent,
    budgetMinRetries: retries.budget.min_retries,
    counted,
  };
}
