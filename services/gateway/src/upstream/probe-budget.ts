import { MIN_HEALTH_CHECK_INTERVAL_SECONDS } from '@vantageedge/shared/domain/gateway-config';
import { Counter, type Registry } from 'prom-client';

/** The shortest interval a replica probes one target at, whatever an origin (or an old event) asks for. */
export const MIN_PROBE_INTERVAL_SECONDS = MIN_HEALTH_CHECK_INTERVAL_SECONDS;

/**
 * The health probes one replica may send per second, over every origin of every tenant: a token bucket
 * (burst = one second's worth). A probe over budget is skipped, not queued — the target keeps its health
 * state until a later round probes it — and counted. Rounds start at a rotating target, so under
 * pressure every target of an origin still gets its turn.
 */
export class ProbeBudget {
  readonly #perSecond: number;
  #tokens: number;
  #refilledAt: number;
  readonly #skipped: Counter | undefined;

  constructor(options: { perSecond: number; registry?: Registry }) {
    this.#perSecond = options.perSecond;
    this.#tokens = options.perSecond;
    this.#refilledAt = performance.now();
    this.#skipped = options.registry ? skippedCounter(options.registry) : undefined;
  }

  /** Takes one probe from the budget; false (and counted as skipped) when it is spent. */
  tryTake(): boolean {
    const now = performance.now();
    this.#tokens = Math.min(
      this.#perSecond,
      this.#tokens + ((now - this.#refilledAt) / 1000) * this.#perSecond,
    );
    this.#refilledAt = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
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
