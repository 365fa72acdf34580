import { Counter, Gauge, type Registry } from 'prom-client';
import type { CircuitState, CircuitTripReason } from './circuit-breaker.js';
import type { HealthSource } from './target-health.js';

const TARGET_LABELS = ['tenant', 'origin', 'target'] as const;
type TargetLabels = Record<(typeof TARGET_LABELS)[number], string>;

export const CIRCUIT_STATE_VALUE: Record<CircuitState, number> = { closed: 0, half_open: 1, open: 2 };

/** The upstream metrics of one registry, shared by every upstream set that reports to it. */
class UpstreamMetricFamilies {
  readonly picks: Counter<'tenant' | 'origin' | 'target'>;
  readonly unavailable: Counter<'tenant' | 'origin'>;
  readonly inFlight: Gauge<'tenant' | 'origin' | 'target'>;
  readonly healthy: Gauge<'tenant' | 'origin' | 'target'>;
  readonly circuitState: Gauge<'tenant' | 'origin' | 'target'>;
  readonly healthTransitions: Counter<'tenant' | 'origin' | 'target' | 'to' | 'source'>;
  readonly circuitTransitions: Counter<'tenant' | 'origin' | 'target' | 'to' | 'reason'>;
  readonly probes: Counter<'tenant' | 'origin' | 'target' | 'result'>;
  /**
   * Live upstream sets per target label set. When a snapshot replaces an origin, the new set is built
   * before the old one closes; the series are removed only when the last set using them closes.
   */
  readonly #users = new Map<string, number>();

  constructor(registry: Registry) {
    const registers = [registry];
    this.picks = new Counter({
      name: 'vantageedge_upstream_picks_total',
      help: 'Load-balancing decisions: requests given to each upstream target',
      labelNames: TARGET_LABELS,
      registers,
    });
    this.unavailable = new Counter({
      name: 'vantageedge_upstream_unavailable_total',
      help: 'Requests refused because no target of the origin was healthy with a closed circuit',
      labelNames: ['tenant', 'origin'],
      registers,
    });
    this.inFlight = new Gauge({
      name: 'vantageedge_upstream_in_flight',
      help: 'Requests in flight to each upstream target',
      labelNames: TARGET_LABELS,
      registers,
    });
    this.healthy = new Gauge({
      name: 'vantageedge_upstream_target_healthy',
      help: '1 when the target is healthy (active and passive checks), 0 when ejected',
      labelNames: TARGET_LABELS,
      registers,
    });
    this.circuitState = new Gauge({
      name: 'vantageedge_upstream_circuit_state',
      help: 'Circuit breaker state per target: 0 closed, 1 half-open, 2 open',
      labelNames: TARGET_LABELS,
      registers,
    });
    this.healthTransitions = new Counter({
      name: 'vantageedge_upstream_health_transitions_total',
      help: 'Target health changes, by new state (healthy|unhealthy) and the check that caused it',
      labelNames: [...TARGET_LABELS, 'to', 'source'],
      registers,
    });
    this.circuitTransitions = new Counter({
      name: 'vantageedge_upstream_circuit_transitions_total',
      help: 'Circuit breaker state changes, by new state and reason',
      labelNames: [...TARGET_LABELS, 'to', 'reason'],
      registers,
    });
    this.probes = new Counter({
      name: 'vantageedge_upstream_health_probes_total',
      help: 'Active health probes by result (success|failure)',
      labelNames: [...TARGET_LABELS, 'result'],
      registers,
    });
  }

  inUse(labels: TargetLabels): boolean {
    return this.#users.has(seriesKey(labels));
  }

  acquireSeries(labels: TargetLabels): void {
    const key = seriesKey(labels);
    this.#users.set(key, (this.#users.get(key) ?? 0) + 1);
  }

  releaseSeries(labels: TargetLabels): void {
    const key = seriesKey(labels);
    const users = (this.#users.get(key) ?? 1) - 1;
    if (users > 0) {
      this.#users.set(key, users);
      return;
    }
    this.#users.delete(key);
    this.picks.remove(labels);
    this.inFlight.remove(labels);
    this.healthy.remove(labels);
    this.circuitState.remove(labels);
    for (const to of ['healthy', 'unhealthy']) {
      for (const source of ['active', 'passive']) this.healthTransitions.remove({ ...labels, to, source });
    }
    for (const [to, reason] of CIRCUIT_TRANSITIONS) this.circuitTransitions.remove({ ...labels, to, reason });
    for (const result of ['success', 'failure']) this.probes.remove({ ...labels, result });
  }
}

const CIRCUIT_TRANSITIONS: ReadonlyArray<readonly [CircuitState, CircuitTripReason]> = [
  ['open', 'consecutive_failures'],
  ['open', 'error_rate'],
  ['open', 'probe_failed'],
  ['half_open', 'cool_down_over'],
  ['closed', 'probes_succeeded'],
];

function seriesKey(labels: TargetLabels): string {
  return `${labels.tenant}\u0000${labels.origin}\u0000${labels.target}`;
}

const familiesByRegistry = new WeakMap<Registry, UpstreamMetricFamilies>();

function familiesFor(registry: Registry): UpstreamMetricFamilies {
  let families = familiesByRegistry.get(registry);
  if (families === undefined) {
    families = new UpstreamMetricFamilies(registry);
    familiesByRegistry.set(registry, families);
  }
  return families;
}

/**
 * One target's metric children, resolved once when the upstream set is built so the per-request
 * calls (`picked`, in-flight) are plain increments with no label lookup.
 */
export class TargetMetrics {
  readonly #families: UpstreamMetricFamilies;
  readonly #labels: TargetLabels;
  readonly #picks: { inc(value?: number): void };
  readonly #inFlight: { inc(value?: number): void; dec(): void };
  readonly #healthy: { set(value: number): void };
  readonly #circuitState: { set(value: number): void };
  #closed = false;

  constructor(registry: Registry, labels: TargetLabels) {
    this.#families = familiesFor(registry);
    this.#labels = labels;
    this.#families.acquireSeries(labels);
    this.#picks = this.#families.picks.labels(labels);
    this.#inFlight = this.#families.inFlight.labels(labels);
    this.#healthy = this.#families.healthy.labels(labels);
    this.#circuitState = this.#families.circuitState.labels(labels);
    this.#picks.inc(0);
    this.#inFlight.inc(0);
    this.#healthy.set(1);
    this.#circuitState.set(CIRCUIT_STATE_VALUE.closed);
  }

  leased(): void {
    this.#picks.inc();
    this.#inFlight.inc();
  }

  released(): void {
    // A lease may outlive its closed set; touching a removed series would bring it back.
    if (this.#closed && !this.#families.inUse(this.#labels)) return;
    this.#inFlight.dec();
  }

  healthChanged(healthy: boolean, source: HealthSource): void {
    if (this.#closed) return;
    this.#healthy.set(healthy ? 1 : 0);
    this.#families.healthTransitions.inc({ ...this.#labels, to: healthy ? 'healthy' : 'unhealthy', source });
  }

  circuitChanged(to: CircuitState, reason: CircuitTripReason): void {
    if (this.#closed) return;
    this.#circuitState.set(CIRCUIT_STATE_VALUE[to]);
    this.#families.circuitTransitions.inc({ ...this.#labels, to, reason });
  }

  probed(success: boolean): void {
    if (this.#closed) return;
    this.#families.probes.inc({ ...this.#labels, result: success ? 'success' : 'failure' });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#families.releaseSeries(this.#labels);
  }
}

/** Counts refusals of one origin (no target available). */
export function unavailableCounter(registry: Registry, tenant: string, origin: string): { inc(): void } {
  return familiesFor(registry).unavailable.labels({ tenant, origin });
}
