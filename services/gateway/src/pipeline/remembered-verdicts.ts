import type { CompiledTenant } from '../config/compiled-tenant.js';

export interface RememberedVerdictsLimits {
  /** Values one stage keeps at most; all are forgotten at once when full. */
  readonly entries?: number;
  /** A longer value is decided every time, never kept. */
  readonly valueLength?: number;
}

/**
 * The values all of one tenant's stages of one policy remember together, whatever its number of routes
 * and versions: when they hold `entries`, all of them forget. A stage's own limit alone let a tenant
 * with 1,000 CORS routes hold 64,000 Origins (45 MB, measured) on every replica.
 */
export class VerdictBudget {
  readonly #memories = new Set<{ clear(): void }>();
  #held = 0;

  constructor(readonly entries: number) {}

  /** Values remembered now. */
  get held(): number {
    return this.#held;
  }

  /** Counts one more value kept in `memory`, after making room for it. */
  take(memory: { clear(): void }): void {
    if (this.#held >= this.entries) this.forgetAll();
    this.#memories.add(memory);
    this.#held++;
  }

  /** A memory forgot `count` values on its own. */
  returned(count: number): void {
    this.#held -= count;
  }

  forgetAll(): void {
    for (const memory of this.#memories) memory.clear();
    this.#memories.clear();
    this.#held = 0;
  }
}

/** One policy's budget for each tenant, from its first version until it is removed. */
export class TenantVerdictBudgets {
  readonly #budgets = new Map<string, VerdictBudget>();

  constructor(readonly entries: number) {}

  of(tenantId: string): VerdictBudget {
    let budget = this.#budgets.get(tenantId);
    if (budget === undefined) {
      budget = new VerdictBudget(this.entries);
      this.#budgets.set(tenantId, budget);
    }
    return budget;
  }

  /** RoutePolicy.tenantRetired: a removed tenant's values are forgotten. */
  tenantRetired(tenant: CompiledTenant, replacement: CompiledTenant | undefined): void {
    if (replacement !== undefined) return;
    this.#budgets.get(tenant.id)?.forgetAll();
    this.#budgets.delete(tenant.id);
  }
}

/**
 * A route stage's answer for a client-sent value (an Origin, a client address), remembered: clients
 * send the same few values on every request, so the work is done once per value. The values are the
 * client's to choose, and every route of every tenant on a replica has its own memory, so it is small:
 * at most `entries` values of at most `valueLength` characters (a client can send a 16 KB Origin), and
 * counted against the tenant's `budget` (shared with its other routes). A value remembered costs one
 * Map lookup.
 */
export function rememberVerdicts<Verdict>(
  decide: (value: string) => Verdict,
  budget: VerdictBudget,
  { entries = 256, valueLength = 128 }: RememberedVerdictsLimits = {},
): (value: string) => Verdict {
  const verdicts = new Map<string, Verdict>();
  return (value) => {
    let verdict = verdicts.get(value);
    if (verdict === undefined) {
      verdict = decide(value);
      if (value.length > valueLength) return verdict;
      if (verdicts.size >= entries) {
        budget.returned(verdicts.size);
        verdicts.clear();
      }
      budget.take(verdicts);
      verdicts.set(value, verdict);
    }
    return verdict;
  };
}
