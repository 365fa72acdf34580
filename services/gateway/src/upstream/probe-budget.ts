import { MIN_HEALTH_CHECK_INTERVAL_SECONDS } from '@vantageedge/shared/domain/gateway-config';
import { Counter, type Registry } from 'prom-client';
import type { buildConnector } from 'undici';
import { TenantUpstreamSockets, TenantUpstreamSocketsFullError } from './tenant-upstream-sockets.js';

/** The shortest interval a replica probes one target at, whatever an origin (or an old event) asks for. */
export const MIN_PROBE_INTERVAL_SECONDS = MIN_HEALTH_CHECK_INTERVAL_SECONDS;

/** Why a probe was not sent (`reason` of vantageedge_upstream_probes_skipped_total). */
type ProbeSkipReason = 'replica_budget' | 'tenant_probe_sockets';

/** One tenant's access to the replica's probe budget, held while its active checks run. */
export interface TenantProbeBudget {
  /**
   * Takes one probe: the function to call once it has ended, or undefined (counted as skipped) when the
   * tenant has its bound of probes in flight or the budget has none to give now.
   */
  tryStart(): (() => void) | undefined;
  /** The tenant's probe connections go through this: its probe sockets, idle ones included, are counted. */
  connector(connector: buildConnector.connector): buildConnector.connector;
  /**
   * A probe whose connection the tenant's bound refused (`TenantUpstreamSocketsFullError`): it says nothing
   * of the target, so it is counted as skipped, not as a failure.
   */
  refused(error: unknown): boolean;
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
 *
 * Each tenant's probe sockets are bounded apart from its requests' (GATEWAY_MAX_PROBE_SOCKETS_PER_TENANT,
 * `maxSocketsPerTenant`), as Envoy keeps health-check connections out of a cluster's circuit breakers and
 * Kong bounds an upstream's checks in flight (`healthchecks.active.concurrency`): probes never take
 * the sockets the tenant's requests are allowed, and requests never keep its targets from being probed.
 * A tenant has at most that many probes in flight over all its origins (past it a probe is skipped, as
 * over budget: a target whose probe hangs until its timeout holds one of them), and before one of its
 * probes opens a connection while it holds that many probe sockets, its probe sockets idle longest are
 * closed (TenantUpstreamSockets): an idle probe socket is one per target address, kept for twice the
 * interval, so 1,000 targets kept 1,000 of them between rounds.
 */
export class ProbeBudget {
  readonly #perSecond: number;
  #tokens: number;
  #refilledAt: number;
  readonly #tenants = new Map<string, TenantShare>();
  /** Probes in flight per tenant, over every origin of it (entries at 0 are removed). */
  readonly #inFlight = new Map<string, number>();
  readonly #maxSocketsPerTenant: number;
  readonly #sockets: TenantUpstreamSockets;
  readonly #skipped: Counter<'reason'> | undefined;
  readonly #now: () => number;

  /**
   * `now`: the clock the buckets refill by, in ms (default performance.now). `maxSocketsPerTenant`: one
   * tenant's probes in flight and probe sockets open (default and 0: no bound).
   */
  constructor(options: {
    perSecond: number;
    maxSocketsPerTenant?: number;
    registry?: Registry;
    now?: () => number;
  }) {
    this.#perSecond = options.perSecond;
    this.#tokens = options.perSecond;
    this.#maxSocketsPerTenant = options.maxSocketsPerTenant ?? 0;
    this.#sockets = new TenantUpstreamSockets(this.#maxSocketsPerTenant);
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
      tryStart: () => this.#tryStart(tenantId, share),
      connector: (connector) => this.#sockets.connector(tenantId, connector),
      refused: (error) => {
        if (!(error instanceof TenantUpstreamSocketsFullError)) return false;
        this.#skip('tenant_probe_sockets');
        return true;
      },
      release: () => {
        if (released) return;
        released = true;
        if (--share.holders === 0) this.#tenants.delete(tenantId);
      },
    };
  }

  #tryStart(tenantId: string, share: TenantShare): (() => void) | undefined {
    const inFlight = this.#inFlight.get(tenantId) ?? 0;
    if (this.#maxSocketsPerTenant > 0 && inFlight >= this.#maxSocketsPerTenant) {
      this.#skip('tenant_probe_sockets');
      return undefined;
    }
    if (!this.#tryTake(share)) return undefined;
    this.#inFlight.set(tenantId, inFlight + 1);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      const left = (this.#inFlight.get(tenantId) ?? 1) - 1;
      if (left > 0) this.#inFlight.set(tenantId, left);
      else this.#inFlight.delete(tenantId);
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
    this.#skip('replica_budget');
    return false;
  }

  #skip(reason: ProbeSkipReason): void {
    this.#skipped?.inc({ reason });
  }
}

const skippedByRegistry = new WeakMap<Registry, Counter<'reason'>>();

function skippedCounter(registry: Registry): Counter<'reason'> {
  let counter = skippedByRegistry.get(registry);
  if (counter === undefined) {
    counter = new Counter({
      name: 'vantageedge_upstream_probes_skipped_total',
      help: 'Active health probes not sent, by reason: replica_budget (GATEWAY_HEALTH_PROBES_PER_SECOND was spent) or tenant_probe_sockets (the tenant held GATEWAY_MAX_PROBE_SOCKETS_PER_TENANT)',
      labelNames: ['reason'] as const,
      registers: [registry],
    });
    skippedByRegistry.set(registry, counter);
  }
  return counter;
}
