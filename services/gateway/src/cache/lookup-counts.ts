import type { CompiledCachePolicy } from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import { type BoundCounter, CounterSeries } from '../observability/bound-metrics.js';
import type { CacheOutcome } from './cache-lookup.js';

export interface RouteTotals {
  tenant: string;
  route: string;
  hits: number;
  all: number;
}

/** Per tenant and route id, while the route is in the config (routeRetired drops it). */
export type RouteTotalsByTenant = Map<string, Map<string, RouteTotals>>;

/** What the cache keeps per compiled policy (so per route and snapshot). */
export interface PolicyState {
  /** Lookup counter series per outcome, bound on the outcome's first lookup. */
  readonly counters: Partial<Record<CacheOutcome, CounterSeries>>;
  readonly total: RouteTotals;
  /** The route left the config: its lookups bind no new series (they would come back into /metrics). */
  retired: boolean;
  /** `c:{<tenant>}:<tenant gen>:<route>:<route gen>:` for the generations it was built with. */
  keyPrefix: string;
  tenantGeneration: number;
  routeGeneration: number;
}

export interface LookupCounts {
  /** The policy's state, made on its first lookup. */
  stateOf(policy: CompiledCachePolicy): PolicyState;
  /** Counts one lookup's outcome for its route (and in the route's hit ratio unless it bypassed). */
  count(state: PolicyState, outcome: CacheOutcome): void;
  /**
   * The policy's route left the config: its hit-ratio totals leave /metrics, and lookups still in
   * flight on it count nowhere.
   */
  routeRetired(policy: CompiledCachePolicy): void;
}

/**
 * Lookups counted per route and outcome (`lookups`) and in each route's hit-ratio totals (`totals`).
 * Per compiled policy, made on its first lookup: no label lookups or key prefix building per request.
 */
export function createLookupCounts(lookups: BoundCounter, totals: RouteTotalsByTenant): LookupCounts {
  const policyState = new WeakMap<CompiledCachePolicy, PolicyState>();
  const stateOf = (policy: CompiledCachePolicy): PolicyState => {
    let state = policyState.get(policy);
    if (state) return state;
    let byRoute = totals.get(policy.tenantId);
    if (!byRoute) {
      byRoute = new Map();
      totals.set(policy.tenantId, byRoute);
    }
    // Routes folded into `other` share its totals.
    let total = byRoute.get(policy.metricsRoute);
    if (!total) {
      total = { tenant: policy.tenantId, route: policy.metricsRoute, hits: 0, all: 0 };
      byRoute.set(policy.metricsRoute, total);
    }
    state = {
      counters: {},
      total,
      retired: false,
      keyPrefix: '',
      tenantGeneration: -1,
      routeGeneration: -1,
    };
    policyState.set(policy, state);
    return state;
  };
  const count = (state: PolicyState, outcome: CacheOutcome) => {
    let series = state.counters[outcome];
    if (series === undefined) {
      const { tenant, route } = state.total;
      // Once per policy and outcome, not per request.
      series = state.retired
        ? new CounterSeries({ tenant, route, outcome })
        : lookups.series([tenant, route, outcome]);
      state.counters[outcome] = series;
    }
    series.inc();
    if (outcome === 'BYPASS') return;
    state.total.all++;
    if (outcome !== 'MISS') state.total.hits++;
  };
  const routeRetired = (policy: CompiledCachePolicy): void => {
    const byRoute = totals.get(policy.tenantId);
    // `other` stays while the tenant does: routes still folded into it count on.
    if (policy.metricsRoute === policy.routeId) byRoute?.delete(policy.routeId);
    if (byRoute?.size === 0) totals.delete(policy.tenantId);
    const state = policyState.get(policy);
    if (state !== undefined) {
      state.retired = true;
      return;
    }
    // Never looked up yet: a lookup still on its way gets totals of its own, not exported.
    policyState.set(policy, {
      counters: {},
      total: { tenant: policy.tenantId, route: policy.metricsRoute, hits: 0, all: 0 },
      retired: true,
      keyPrefix: '',
      tenantGeneration: -1,
      routeGeneration: -1,
    });
  };
  return { stateOf, count, routeRetired };
}
