import { FOLDED_LABEL, LabelBudget } from './label-budget.js';

/** The route label of the routes of a tenant past its share of the replica's route labels. */
export const OTHER_ROUTES = FOLDED_LABEL;

export interface RouteLabelBudgetOptions {
  /** Route ids that may be route labels on this replica at once, over all tenants. */
  maxRoutes: number;
  /** The part of `maxRoutes` one tenant may hold, in (0, 1]. */
  tenantShare: number;
}

/**
 * Which routes are their own `route` label in /metrics (a LabelBudget of route ids): each costs every
 * scrape of every replica a series set per status class. A route compiled past the replica's bound or
 * its tenant's share is labelled `other` in its tenant; it keeps its label while it stays in the
 * config, and a route folded into `other` gets its own label when it is next compiled with room to spare.
 */
export class RouteLabelBudget {
  readonly #budget: LabelBudget;

  constructor(options: RouteLabelBudgetOptions) {
    this.#budget = new LabelBudget({ maxLabels: options.maxRoutes, tenantShare: options.tenantShare });
  }

  /** The label of a route being compiled: its id, or `other`. */
  labelFor(tenant: string, routeId: string): string {
    return this.#budget.admit(tenant, routeId) ? routeId : OTHER_ROUTES;
  }

  /** The tenant now has only `liveRoutes` (none: it was removed); the others' labels are free. */
  release(tenant: string, liveRoutes?: ReadonlySet<string>): void {
    this.#budget.release(tenant, liveRoutes && ((routeId) => liveRoutes.has(routeId)));
  }

  /** Routes labelled `other`, by tenant. */
  foldedRoutes(): Iterable<[string, number]> {
    return this.#budget.folded();
  }
}
