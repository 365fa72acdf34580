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
 *
 * Every tenant's budget also counts against the replica's (REPLICA_VERDICTS): clients choose the
 * values, and one sending distinct Origins or addresses to every tenant would otherwise make a replica
 * keep each tenant's whole budget (≈0.7 MB of Origins a tenant: 700 MB for 1,000 tenants). When the
 * replica's is full, every memory forgets; a verdict is cheap to decide again.
 */
export class VerdictBudget {
  readonly #memories = new Set<{ clear(): void }>();
  #held = 0;

  /** `replica`: the budget this one counts against too (null for the replica's own). */
  constructor(
    readonly entries: number,
    readonly replica: VerdictBudget | null = REPLICA_VERDICTS,
  ) {}

  /** Values remembered now. */
  get held(): number {
    return this.#held;
  }

  /** Counts one more value kept in `memory`, after making room for it. */
  take(memory: { clear(): void }): void {
    if (this.#held >= this.entries) this.forgetAll();
    // The replica making room may forget this budget's memories too (`memory` among them).
    this.replica?.take(this);
    this.#memories.add(memory);
    this.#held++;
  }

  /** A memory forgot `count` values on its own. */
  returned(count: number): void {
    this.#held -= count;
    this.replica?.returned(count);
  }

  forgetAll(): void {
    for (const memory of this.#memories) memory.clear();
    this.#memories.clear();
    if (this.replica !== null) {
      this.replica.returned(this.#held);
      this.replica.#memories.delete(this); // a removed tenant's budget is not kept
    }
    this.#held = 0;
  }

  /** As a memory of the replica's budget: forgets all. */
  clear(): void {
    this.forgetAll();
  }
}

/** What all tenants' memories of client-sent values hold together on a replica (≤ ≈32 MB). */
export const REPLICA_VERDICTS_REMEMBERED = 32_768;
const REPLICA_VERDICTS: VerdictBudget = new VerdictBudget(REPLICA_VERDICTS_REMEMBERED, null);

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
