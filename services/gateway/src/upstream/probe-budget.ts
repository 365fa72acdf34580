import { MIN_HEALTH_CHECK_INTERVAL_SECONDS } from '@vantageedge/shared/domain/gateway-config';
import { Counter, type Registry } from 'prom-client';

/** The shortest interval a replica probes one target at, whatever an origin (or an old event) asks for. */
export const MIN_PROBE_INTERVAL_SECONDS = MIN_HEALTH_CHECK_INTERVAL_SECONDS;

/** One tenant's access to the replica's probe budget, held while its active checks run. */
export interface TenantProbeBudget {
  /** Takes one probe from the budget; false (and counted as skipped) when none may be taken now. */
  tryTake(): boolean;
  /** The checks stopped: the tenant no longer counts when the budget is shared out. */
  release(): void;
}

interface TenantShare {
  holders: number;
  tokens: number;
  refilledAt: number;
}

/**
 * The health probes one replica may send per second, over every origin of every tenant: a token bucket
 * (burst = one second's worth). A probe over budget is skipped, not queued — the target keeps its health
 * state until a later round probes it — and counted. Rounds start at a rotating target, so under
 * pressure every target of an origin still gets its turn.
 *
 * Tenants share it fairly: each tenant with active checks has an equal share of the rate. Within its
 * share a tenant takes any token there is; past it, only while the bucket is more than half full, so
 * a tenant asking for more than the whole budget leaves the other half to tenants within their share
 * (first come, first served let it spend every token before their rounds came), and still gets the
 * whole rate while nobody else probes.
 */
export class ProbeBudget {
  readonly #perSecond: number;
  #tokens: number;
  #refilledAt: number;
  readonly #tenants = new Map<string, TenantShare>();
  readonly #skipped: Counter | undefined;
  readonly #now: () => number;

  /** `now`: the clock the buckets refill by, in ms (default performance.now). */
  constructor(options: { perSecond: number; registry?: Registry; now?: () => number }) {
    this.#perSecond = options.perSecond;
    this.#tokens = options.perSecond;
    this.#now = options.now ?? (() => performance.now());
    this.#refilledAt = this.#now();
    this.#skipped = options.registry ? skippedCounter(options.registry) : undefined;
  }

  /** The tenant's handle on the budget; `release` it when its checks stop. */
  forTenant(tenantId: string): TenantProbeBudget {
    let share = this.#tenants.get(tenantId);
    if (share === undefined) {
      const shareRate = this.#perSecond / (this.#tenants.size + 1);
      share = { holders: 0, tokens: Math.max(1, shareRate), refilledAt: this.#now() };
      this.#tenants.set(tenantId, share);
    }
    share.holders++;
    let released = false;
    return {
      tryTake: () => this.#tryTake(share),
      release: () => {
        if (released) return;
        released = true;
        if (--share.holders === 0) this.#tenants.delete(tenantId);
      },
    };
  }

  #tryTake(share: TenantShare): boolean {
    const now = this.#now();
    this.#tokens = Math.min(
      this.#perSecond,
      this.#tokens + ((now - this.#refilledAt) / 1000) * this.#perSecond,
    );
    this.#refilledAt = now;
    const shareRate = this.#perSecond / Math.max(1, this.#tenants.size);
    share.tokens = Math.min(
      Math.max(1, shareRate),
      share.tokens + ((now - share.refilledAt) / 1000) * shareRate,
    );
    share.refilledAt = now;
    const withinShare = share.tokens >= 1;
    if (this.#tokens >= 1 && (withinShare || this.#tokens - 1 >= this.#perSecond / 2)) {
      this.#tokens -= 1;
      if (withinShare) share.tokens -= 1;
      return true;
    }
    this.#skipped?.inc();
    return false;
  }
}

const skippedByRegistry = new WeakMap<Registry, Counter>();

function skippedCounter(registry: Registry): Counter {
  let counter = skippedByRegistry.get(registry);
  if (counter === undefined) {
    counter = new Counter({
      name: 'vantageedge_upstream_probes_skipped_total',
      help: 'Active health probes not sent because the replica probe budget (GATEWAY_HEALTH_PROBES_PER_SECOND) was spent',
      registers: [registry],
    });
    skippedByRegistry.set(registry, counter);
  }
  return counter;
}
