import { Counter, Gauge, type Registry } from 'prom-client';
import { BoundCounter } from '../observability/bound-metrics.js';
import type { FillBudget } from './fill-budget.js';
import type { RouteTotalsByTenant } from './lookup-counts.js';

/** The response cache's series on /metrics (one set per replica). */
export interface CacheMetrics {
  readonly lookups: BoundCounter;
  readonly storeErrors: Counter<'reason'>;
  readonly notStored: Counter<'reason'>;
  readonly overBudget: Counter;
  readonly revalidations: Counter<'result'>;
  readonly coalesced: Counter;
  readonly purges: Counter<'kind'>;
  readonly purgeVisits: Counter;
}

/**
 * Registers the cache's series. The fill-bytes gauge reads `budget` and the hit-ratio gauge `totals`
 * when /metrics is collected.
 */
export function createCacheMetrics(
  registry: Registry,
  budget: FillBudget,
  totals: RouteTotalsByTenant,
): CacheMetrics {
  const lookups = new BoundCounter({
    name: 'vantageedge_gateway_cache_lookups_total',
    help: 'Cache lookups by outcome (HIT, STALE, MISS, BYPASS)',
    labelNames: ['tenant', 'route', 'outcome'],
    registry,
  });
  const storeErrors = new Counter({
    name: 'vantageedge_gateway_cache_store_errors_total',
    help: 'Cache store (Redis) calls that failed or were skipped (circuit open)',
    labelNames: ['reason'],
    registers: [registry],
  });
  const notStored = new Counter({
    name: 'vantageedge_gateway_cache_not_stored_total',
    help: 'Origin responses to a fill that were not stored, by reason (status, origin_cache_control, authorization, cookie, vary_star, …)',
    labelNames: ['reason'],
    registers: [registry],
  });
  const overBudget = new Counter({
    name: 'vantageedge_gateway_cache_fill_budget_bypass_total',
    help: 'Fills not collected because the tenant’s share of the replica’s fill budget (GATEWAY_CACHE_FILL_BYTES) or the budget was used up: the response streamed through uncached',
    registers: [registry],
  });
  new Gauge({
    name: 'vantageedge_gateway_cache_fill_bytes',
    help: 'Bytes of origin responses buffered by cache fills in flight on this replica',
    registers: [registry],
    collect() {
      this.set(budget.used);
    },
  });
  const revalidations = new Counter({
    name: 'vantageedge_gateway_cache_revalidations_total',
    help: 'Conditional requests the cache sent to the origin for stale entries, by result (not_modified, modified)',
    labelNames: ['result'],
    registers: [registry],
  });
  const coalesced = new Counter({
    name: 'vantageedge_gateway_cache_coalesced_total',
    help: 'Requests that waited for another request to fetch the same key from the origin',
    registers: [registry],
  });
  const purges = new Counter({
    name: 'vantageedge_gateway_cache_purges_total',
    help: 'Purges applied by this replica (route, tenant, path)',
    labelNames: ['kind'],
    registers: [registry],
  });
  const purgeVisits = new Counter({
    name: 'vantageedge_gateway_cache_l1_purge_visits_total',
    help: "Memory-cache entries tenant, route and tag purges looked at (the purging tenant's, each one dropped)",
    registers: [registry],
  });
  new Gauge({
    name: 'vantageedge_gateway_cache_hit_ratio',
    help: 'HIT+STALE / (HIT+STALE+MISS) since start, per tenant and route',
    labelNames: ['tenant', 'route'],
    registers: [registry],
    collect() {
      // Rebuilt from the totals: a retired route's series goes with its totals.
      this.reset();
      for (const byRoute of totals.values()) {
        for (const { tenant, route, hits, all } of byRoute.values()) {
          if (all > 0) this.set({ tenant, route }, hits / all);
        }
      }
    },
  });
  return { lookups, storeErrors, notStored, overBudget, revalidations, coalesced, purges, purgeVisits };
}
