/** The route label of the routes of a tenant past its share of the replica's route labels. */
export const OTHER_ROUTES = 'other';

export interface RouteLabelBudgetOptions {
  /** Route ids that may be route labels on this replica at once, over all tenants. */
  maxRoutes: number;
  /** The part of `maxRoutes` one tenant may hold, in (0, 1]. */
  tenantShare: number;
}

/**
 * Which routes are their own `route` label in /metrics. Each route label costs every scrape of every
 * replica a series set per status class, so the replica holds at most `maxRoutes` of them and one
 * tenant at most its share; a route compiled past either bound is labelled `other` in its tenant
 * (the tenant's totals stay exact). A route keeps its label while it stays in the config; a route
 * folded into `other` gets its own label when it is next compiled with room to spare.
 */
export class RouteLabelBudget {
  readonly #maxRoutes: number;
  readonly #maxPerTenant: number;
  /** Route ids holding a label, by tenant. */
  readonly #labelled = new Map<string, Set<string>>();
  /** Route ids labelled `other`, by tenant. */
  readonly #folded = new Map<string, Set<string>>();
  #held = 0;

  constructor(options: RouteLabelBudgetOptions) {
    this.#maxRoutes = options.maxRoutes;
    this.#maxPerTenant = Math.max(1, Math.floor(options.maxRoutes * options.tenantShare));
  }

  /** The label of a route being compiled: its id, or `other`. */
  labelFor(tenant: string, routeId: string): string {
    const labelled = this.#labelled.get(tenant);
    if (labelled?.has(routeId)) return routeId;
    if (this.#held < this.#maxRoutes && (labelled?.size ?? 0) < this.#maxPerTenant) {
      if (labelled === undefined) this.#labelled.set(tenant, new Set([routeId]));
      else labelled.add(routeId);
      this.#held++;
      this.#remove(this.#folded, tenant, routeId);
      return routeId;
    }
    let folded = this.#folded.get(tenant);
    if (folded === undefined) {
      folded = new Set();
      this.#folded.set(tenant, folded);
    }
    folded.add(routeId);
    return OTHER_ROUTES;
  }

  /** The tenant now has only `liveRoutes` (none: it was removed); the others' labels are free. */
  release(tenant: string, liveRoutes?: ReadonlySet<string>): void {
    for (const routes of [this.#labelled, this.#folded]) {
      for (const routeId of [...(routes.get(tenant) ?? [])]) {
        if (liveRoutes?.has(routeId)) continue;
        if (this.#remove(routes, tenant, routeId) && routes === this.#labelled) this.#held--;
      }
    }
  }

  /** Routes labelled `other`, by tenant. */
  foldedRoutes(): Iterable<[string, number]> {
    return [...this.#folded].map(([tenant, routes]) => [tenant, routes.size]);
  }

  #remove(routes: Map<string, Set<string>>, tenant: string, routeId: string): boolean {
    const ofTenant = routes.get(tenant);
    if (ofTenant === undefined || !ofTenant.delete(routeId)) return false;
    if (ofTenant.size === 0) routes.delete(tenant);
    return true;
  }
}
