import { createHash } from 'node:crypto';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { CircuitState, CircuitTripReason } from './circuit-breaker.js';
import type { HealthSource } from './target-health.js';

const TARGET_LABELS = ['tenant', 'origin', 'target'] as const;
type TargetLabels = Record<(typeof TARGET_LABELS)[number], string>;
type OriginLabels = Pick<TargetLabels, 'tenant' | 'origin'>;

/** The most characters of a `target` label (see targetLabel). */
export const TARGET_LABEL_MAX = 128;
const TARGET_DIGEST_CHARS = 12;

/**
 * A target's label: its id (URL origin, plus base path when the origin repeats), or when longer than
 * TARGET_LABEL_MAX its start, `…` and a digest of the whole id, which keeps an origin's targets apart. A
 * tenant writes the URLs, up to TENANT_MAX_STRING_LENGTH each, and every target is several lines of
 * every scrape of every replica, with or without traffic.
 */
export function targetLabel(id: string): string {
  if (id.length <= TARGET_LABEL_MAX) return id;
  const digest = createHash('sha256').update(id).digest('hex').slice(0, TARGET_DIGEST_CHARS);
  return `${id.slice(0, TARGET_LABEL_MAX - TARGET_DIGEST_CHARS - 1)}…${digest}`;
}

export const CIRCUIT_STATE_VALUE: Record<CircuitState, number> = { closed: 0, half_open: 1, open: 2 };

/**
 * Per-request numbers of one target, kept as plain fields on the hot path and copied into
 * prom-client only when the registry is scraped (a labelled `inc()` hashes its labels every call).
 */
export interface TargetLoad {
  /** Leases handed out since the set was built. */
  picks: number;
  /** Leases not yet released. */
  inFlight: number;
}

const CIRCUIT_TRANSITIONS: ReadonlyArray<readonly [CircuitState, CircuitTripReason]> = [
  ['open', 'consecutive_failures'],
  ['open', 'error_rate'],
  ['open', 'probe_failed'],
  ['half_open', 'cool_down_over'],
  ['closed', 'probes_succeeded'],
];

/** The upstream metrics of one registry, shared by every upstream set that reports to it. */
class UpstreamMetricFamilies {
  readonly healthy: Gauge<'tenant' | 'origin' | 'target'>;
  readonly circuitState: Gauge<'tenant' | 'origin' | 'target'>;
  readonly healthTransitions: Counter<'tenant' | 'origin' | 'target' | 'to' | 'source'>;
  readonly circuitTransitions: Counter<'tenant' | 'origin' | 'target' | 'to' | 'reason'>;
  readonly probes: Counter<'tenant' | 'origin' | 'target' | 'result'>;
  readonly #picks: Counter<'tenant' | 'origin' | 'target'>;
  readonly #unavailable: Counter<'tenant' | 'origin'>;
  /** Targets and origins of open upstream sets, read at scrape time. */
  readonly #targets = new Set<TargetMetrics>();
  readonly #origins = new Set<OriginMetrics>();
  /**
   * Open upstream sets per target label set. When a snapshot replaces an origin, the new set is
   * built before the old one closes; the series are removed only when the last set using them closes.
   */
  readonly #users = new Map<string, number>();
  /** The same for origin label sets. */
  readonly #originUsers = new Map<string, number>();

  constructor(registry: Registry) {
    const registers = [registry];
    const targets = this.#targets;
    const origins = this.#origins;
    this.#picks = new Counter({
      name: 'vantageedge_upstream_picks_total',
      help: 'Load-balancing decisions: requests given to each upstream target',
      labelNames: TARGET_LABELS,
      registers,
      collect() {
        for (const target of targets) target.flushPicks(this);
      },
    });
    this.#unavailable = new Counter({
      name: 'vantageedge_upstream_unavailable_total',
      help: 'Requests refused because no target of the origin was healthy with an admitting circuit',
      labelNames: ['tenant', 'origin'],
      registers,
      collect() {
        for (const origin of origins) origin.flush(this);
      },
    });
    new Gauge({
      name: 'vantageedge_upstream_in_flight',
      help: 'Requests in flight to each upstream target',
      labelNames: TARGET_LABELS,
      registers,
      collect() {
        this.reset();
        for (const target of targets) this.inc(target.labels, target.load.inFlight);
      },
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

  addTarget(target: TargetMetrics): void {
    this.#targets.add(target);
    const key = seriesKey(target.labels);
    this.#users.set(key, (this.#users.get(key) ?? 0) + 1);
    this.#picks.inc(target.labels, 0);
  }

  removeTarget(target: TargetMetrics): void {
    target.flushPicks(this.#picks);
    this.#targets.delete(target);
    const { labels } = target;
    const key = seriesKey(labels);
    const users = (this.#users.get(key) ?? 1) - 1;
    if (users > 0) {
      this.#users.set(key, users);
      return;
    }
    this.#users.delete(key);
    this.#picks.remove(labels);
    this.healthy.remove(labels);
    this.circuitState.remove(labels);
    for (const to of ['healthy', 'unhealthy']) {
      for (const source of ['active', 'passive']) this.healthTransitions.remove({ ...labels, to, source });
    }
    for (const [to, reason] of CIRCUIT_TRANSITIONS) this.circuitTransitions.remove({ ...labels, to, reason });
    for (const result of ['success', 'failure']) this.probes.remove({ ...labels, result });
  }

  addOrigin(origin: OriginMetrics): void {
    this.#origins.add(origin);
    const key = originKey(origin.labels);
    this.#originUsers.set(key, (this.#originUsers.get(key) ?? 0) + 1);
    this.#unavailable.inc(origin.labels, 0);
  }

  removeOrigin(origin: OriginMetrics): void {
    origin.flush(this.#unavailable);
    this.#origins.delete(origin);
    const key = originKey(origin.labels);
    const users = (this.#originUsers.get(key) ?? 1) - 1;
    if (users > 0) {
      this.#originUsers.set(key, users);
      return;
    }
    this.#originUsers.delete(key);
    this.#unavailable.remove(origin.labels);
  }
}

function originKey(labels: OriginLabels): string {
  return `${labels.tenant}\u0000${labels.origin}`;
}

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

/** One target's series. State changes are written at once; per-request load is read at scrape time. */
export class TargetMetrics {
  readonly #families: UpstreamMetricFamilies;
  #reportedPicks = 0;
  #closed = false;

  constructor(
    registry: Registry,
    readonly labels: TargetLabels,
    readonly load: TargetLoad,
  ) {
    this.#families = familiesFor(registry);
    this.#families.addTarget(this);
    this.#families.healthy.set(labels, 1);
    this.#families.circuitState.set(labels, CIRCUIT_STATE_VALUE.closed);
  }

  flushPicks(counter: Counter<'tenant' | 'origin' | 'target'>): void {
    const delta = this.load.picks - this.#reportedPicks;
    if (delta > 0) counter.inc(this.labels, delta);
    this.#reportedPicks = this.load.picks;
  }

  // After close, the series belong to the replacement set (if any) or are gone; writing would
  // overwrite the former or bring back the latter.
  healthChanged(healthy: boolean, source: HealthSource): void {
    if (this.#closed) return;
    this.#families.healthy.set(this.labels, healthy ? 1 : 0);
    this.#families.healthTransitions.inc({ ...this.labels, to: healthy ? 'healthy' : 'unhealthy', source });
  }

  circuitChanged(to: CircuitState, reason: CircuitTripReason): void {
    if (this.#closed) return;
    this.#families.circuitState.set(this.labels, CIRCUIT_STATE_VALUE[to]);
    this.#families.circuitTransitions.inc({ ...this.labels, to, reason });
  }

  probed(success: boolean): void {
    if (this.#closed) return;
    this.#families.probes.inc({ ...this.labels, result: success ? 'success' : 'failure' });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#families.removeTarget(this);
  }
}

/** Requests of one origin refused because no target was available; counted per request, read at scrape. */
export class OriginMetrics {
  refused = 0;
  #reported = 0;
  #closed = false;
  readonly #families: UpstreamMetricFamilies;

  constructor(
    registry: Registry,
    readonly labels: OriginLabels,
  ) {
    this.#families = familiesFor(registry);
    this.#families.addOrigin(this);
  }

  flush(counter: Counter<'tenant' | 'origin'>): void {
    const delta = this.refused - this.#reported;
    if (delta > 0) counter.inc(this.labels, delta);
    this.#reported = this.refused;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#families.removeOrigin(this);
  }
}
