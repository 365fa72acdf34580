import { createHash } from 'node:crypto';
import { Counter, Gauge, type Registry } from 'prom-client';
import { FOLDED_LABEL, LabelBudget } from '../observability/label-budget.js';
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

/** The replica's limits on target label sets in /metrics (settings of the same names). */
export interface TargetSeriesSettings {
  /** Target label sets (tenant, origin, target) one replica exports at once, over all tenants. */
  GATEWAY_METRICS_MAX_TARGET_SERIES: number;
  /** The part of GATEWAY_METRICS_MAX_TARGET_SERIES one tenant's targets may hold, in (0, 1]. */
  GATEWAY_METRICS_TARGET_SERIES_TENANT_SHARE: number;
}

/**
 * Which targets are a `target` label of their own, shared by every upstream set of a replica. A target
 * built past the replica's bound or its tenant's share is counted as target="other" of its origin.
 */
export function targetLabelBudget(settings: TargetSeriesSettings): LabelBudget {
  return new LabelBudget({
    maxLabels: settings.GATEWAY_METRICS_MAX_TARGET_SERIES,
    tenantShare: settings.GATEWAY_METRICS_TARGET_SERIES_TENANT_SHARE,
  });
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
   * The targets folded into target="other" of an origin share one label set.
   */
  readonly #users = new Map<string, number>();
  /** Open upstream sets per target (tenant, origin, id): its label budget is freed with the last. */
  readonly #targetUsers = new Map<string, number>();
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
    const current = () => this.#currentTargets();
    new Gauge({
      name: 'vantageedge_upstream_target_healthy',
      help: '1 when the target is healthy (active and passive checks), 0 when ejected; target="other": how many of the targets folded into it are healthy',
      labelNames: TARGET_LABELS,
      registers,
      collect() {
        this.reset();
        for (const target of current()) this.inc(target.labels, target.healthy ? 1 : 0);
      },
    });
    new Gauge({
      name: 'vantageedge_upstream_circuit_state',
      help: 'Circuit breaker state per target: 0 closed, 1 half-open, 2 open; target="other": the most open of the targets folded into it',
      labelNames: TARGET_LABELS,
      registers,
      collect() {
        this.reset();
        const mostOpen = new Map<string, TargetMetrics>();
        for (const target of current()) {
          const before = mostOpen.get(target.seriesKey);
          if (
            before === undefined ||
            CIRCUIT_STATE_VALUE[target.circuit] > CIRCUIT_STATE_VALUE[before.circuit]
          )
            mostOpen.set(target.seriesKey, target);
        }
        for (const target of mostOpen.values()) this.set(target.labels, CIRCUIT_STATE_VALUE[target.circuit]);
      },
    });
    new Gauge({
      name: 'vantageedge_upstream_metrics_folded_targets',
      help: 'Targets counted under target="other" of their origin because the replica held GATEWAY_METRICS_MAX_TARGET_SERIES target labels or the tenant its share of them',
      labelNames: ['tenant', 'origin'],
      registers,
      collect() {
        this.reset();
        for (const target of current()) {
          if (target.folded) this.inc({ tenant: target.labels.tenant, origin: target.labels.origin });
        }
      },
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
    addUser(this.#users, target.seriesKey);
    addUser(this.#targetUsers, target.targetKey);
    this.#picks.inc(target.labels, 0);
  }

  removeTarget(target: TargetMetrics): void {
    target.flushPicks(this.#picks);
    this.#targets.delete(target);
    if (!removeUser(this.#targetUsers, target.targetKey)) target.releaseLabel();
    const { labels } = target;
    if (removeUser(this.#users, target.seriesKey)) return;
    this.#picks.remove(labels);
    for (const to of ['healthy', 'unhealthy']) {
      for (const source of ['active', 'passive']) this.healthTransitions.remove({ ...labels, to, source });
    }
    for (const [to, reason] of CIRCUIT_TRANSITIONS) this.circuitTransitions.remove({ ...labels, to, reason });
    for (const result of ['success', 'failure']) this.probes.remove({ ...labels, result });
  }

  addOrigin(origin: OriginMetrics): void {
    this.#origins.add(origin);
    addUser(this.#originUsers, originKey(origin.labels));
    this.#unavailable.inc(origin.labels, 0);
  }

  removeOrigin(origin: OriginMetrics): void {
    origin.flush(this.#unavailable);
    this.#origins.delete(origin);
    if (removeUser(this.#originUsers, originKey(origin.labels))) return;
    this.#unavailable.remove(origin.labels);
  }

  /**
   * Each target of the open sets once: while a replacement set of an origin is built and the set it
   * replaces drains, a target both have is the replacement's (the newer, added later).
   */
  #currentTargets(): Iterable<TargetMetrics> {
    const byTarget = new Map<string, TargetMetrics>();
    for (const target of this.#targets) byTarget.set(target.targetKey, target);
    return byTarget.values();
  }
}

function addUser(users: Map<string, number>, key: string): void {
  users.set(key, (users.get(key) ?? 0) + 1);
}

/** Whether the key has users left. */
function removeUser(users: Map<string, number>, key: string): boolean {
  const left = (users.get(key) ?? 1) - 1;
  if (left > 0) users.set(key, left);
  else users.delete(key);
  return left > 0;
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

/** Which target of which tenant's origin a TargetMetrics reports. */
export interface TargetIdentity {
  readonly tenant: string;
  readonly origin: string;
  /** Unique in its origin (see uniqueId). */
  readonly id: string;
  /** Its `target` label when the budget gives it one (targetLabel of the id). */
  readonly label: string;
}

/**
 * One target's series. Transitions are counted at once; its state and per-request load are read at
 * scrape time. Its label set is settled when it is built: its own, or target="other" of its origin when
 * `labelBudget` has no room for it (the folded targets of an origin add up in that one label set).
 */
export class TargetMetrics {
  readonly #families: UpstreamMetricFamilies;
  readonly labels: TargetLabels;
  readonly folded: boolean;
  readonly seriesKey: string;
  readonly targetKey: string;
  readonly #budgetKey: string;
  #healthy = true;
  #circuit: CircuitState = 'closed';
  #reportedPicks = 0;
  #closed = false;

  constructor(
    registry: Registry,
    target: TargetIdentity,
    readonly load: TargetLoad,
    private readonly labelBudget?: LabelBudget,
  ) {
    this.#budgetKey = `${target.origin}\u0000${target.id}`;
    this.folded = !(labelBudget?.admit(target.tenant, this.#budgetKey) ?? true);
    this.labels = {
      tenant: target.tenant,
      origin: target.origin,
      target: this.folded ? FOLDED_LABEL : target.label,
    };
    this.seriesKey = seriesKey(this.labels);
    this.targetKey = `${target.tenant}\u0000${this.#budgetKey}`;
    this.#families = familiesFor(registry);
    this.#families.addTarget(this);
  }

  get healthy(): boolean {
    return this.#healthy;
  }

  get circuit(): CircuitState {
    return this.#circuit;
  }

  /** No open set has the target any more. */
  releaseLabel(): void {
    this.labelBudget?.releaseKey(this.labels.tenant, this.#budgetKey);
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
    this.#healthy = healthy;
    this.#families.healthTransitions.inc({ ...this.labels, to: healthy ? 'healthy' : 'unhealthy', source });
  }

  /** The target is down as the set this one replaces had it (no transition: the series is the same target's). */
  ejectionInherited(): void {
    if (this.#closed) return;
    this.#healthy = false;
  }

  /** The circuit is open as the set this one replaces had it (no transition, as for an ejection). */
  openCircuitInherited(): void {
    if (this.#closed) return;
    this.#circuit = 'open';
  }

  circuitChanged(to: CircuitState, reason: CircuitTripReason): void {
    if (this.#closed) return;
    this.#circuit = to;
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
