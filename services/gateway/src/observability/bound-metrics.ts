import type { Registry } from 'prom-client';

/**
 * Prometheus series whose label values are bound once, so counting a request is arithmetic on a
 * series object: no label object, no label hashing, no validation per request. (prom-client's own
 * `labels()` children still hash and validate their labels on every observe/inc.) Exported through a
 * prom-client Registry in prom-client's own format, so /metrics looks exactly as it did with
 * prom-client's Histogram and Counter.
 *
 * A series exists (and is exported) from the first time `series()` asks for it; callers ask when they
 * first count, so series of routes that never saw a request are never exported. Series labelled by
 * tenant are removed through `removeTenantSeries` when the tenant or their route leaves the config.
 */

type Labels = Record<string, string>;

interface ExportedValue {
  value: number;
  labels: Record<string, string | number>;
  sharedLabels?: Labels;
  metricName?: string;
  /** prom-client's shape: buckets carry `null` (no exemplar). */
  exemplar?: null;
}

interface ExportedMetric {
  name: string;
  help: string;
  type: 'histogram' | 'counter';
  values: ExportedValue[];
  aggregator: 'sum';
}

/** A route label that is no route id: which routes are live is for the caller to say. */
export type RouteIsLive = (route: string) => boolean;

/** Holds series labelled by tenant (every bound metric, and series kept elsewhere that register). */
export interface TenantSeriesHolder {
  /** See removeTenantSeries. */
  removeTenant(tenant: string, routeIsLive?: RouteIsLive): void;
}

/** The tenant series holders of each registry: a tenant's series leave all of a replica's /metrics at once. */
const holdersByRegistry = new WeakMap<Registry, Set<TenantSeriesHolder>>();

/** Has removeTenantSeries on the registry reach `holder` too (series that are no bound metric's). */
export function registerTenantSeries(registry: Registry, holder: TenantSeriesHolder): void {
  let holders = holdersByRegistry.get(registry);
  if (holders === undefined) {
    holders = new Set();
    holdersByRegistry.set(registry, holders);
  }
  holders.add(holder);
}

/**
 * Whether a registry's bound metrics may make a series for this tenant and, when the series has a route
 * label, this route (see countOnlyTenantsIn).
 */
export type ConfiguredSeries = (tenant: string, route: string | undefined) => boolean;

/** Which tenants and routes each registry's bound metrics may make series for (see countOnlyTenantsIn). */
const configuredSeriesByRegistry = new WeakMap<Registry, ConfiguredSeries>();

/**
 * Has the registry's bound metrics make no series for a tenant, or a tenant's route, that `configured`
 * says has left the config. Work still in flight then (a request waiting for Redis or its origin, an
 * answer its client is slow to read) counts into a series of its own that is never exported, instead of
 * bringing back one of the series removeTenantSeries took away, which nothing would remove again (or
 * not before the tenant's next change). Only a series' first lookup asks: counting into one that exists
 * costs nothing more.
 */
export function countOnlyTenantsIn(registry: Registry, configured: ConfiguredSeries): void {
  configuredSeriesByRegistry.set(registry, configured);
}

/**
 * Removes the tenant's series from every bound metric (and registered holder) of the registry: all of
 * them when the tenant left, or (with `routeIsLive`) those whose route the tenant no longer has. A
 * family without a route label keeps the tenant's series while the tenant stays.
 */
export function removeTenantSeries(registry: Registry, tenant: string, routeIsLive?: RouteIsLive): void {
  for (const holder of holdersByRegistry.get(registry) ?? []) holder.removeTenant(tenant, routeIsLive);
}

abstract class BoundMetric<S extends { readonly labels: Labels; exported: boolean }>
  implements TenantSeriesHolder
{
  readonly aggregator = 'sum';
  readonly #series = new Map<string, S>();
  readonly #labelNames: readonly string[];
  /** Series keys by tenant label, when there is one: a tenant's series are found without a scan. */
  readonly #keysByTenant: Map<string, Set<string>> | undefined;
  readonly #registry: Registry;

  constructor(
    readonly name: string,
    readonly help: string,
    labelNames: readonly string[],
    registry: Registry,
  ) {
    this.#registry = registry;
    this.#labelNames = labelNames;
    this.#keysByTenant = labelNames.includes('tenant') ? new Map() : undefined;
    registry.registerMetric(this as never);
    registerTenantSeries(registry, this);
  }

  /**
   * The series for these label values (in labelNames order); created on first request. One of a tenant
   * or route no longer in the config (countOnlyTenantsIn) counts, but is neither kept nor exported.
   */
  series(values: readonly string[]): S {
    const key = values.join('\u0000');
    let series = this.#series.get(key);
    if (series === undefined) {
      const labels: Labels = {};
      this.#labelNames.forEach((name, i) => {
        labels[name] = values[i] ?? '';
      });
      series = this.create(labels);
      if (this.#keysByTenant !== undefined) {
        const tenant = labels.tenant!;
        if (configuredSeriesByRegistry.get(this.#registry)?.(tenant, labels.route) === false) return series;
        let keys = this.#keysByTenant.get(tenant);
        if (keys === undefined) {
          keys = new Set();
          this.#keysByTenant.set(tenant, keys);
        }
        keys.add(key);
      }
      this.#series.set(key, series);
      series.exported = true;
    }
    return series;
  }

  /** See removeTenantSeries. A holder of a removed series may still count into it: it is no longer exported. */
  removeTenant(tenant: string, routeIsLive?: RouteIsLive): void {
    const keys = this.#keysByTenant?.get(tenant);
    if (keys === undefined) return;
    for (const key of keys) {
      const route = this.#series.get(key)?.labels.route;
      if (routeIsLive !== undefined && (route === undefined || routeIsLive(route))) continue;
      this.#series.get(key)!.exported = false;
      this.#series.delete(key);
      keys.delete(key);
    }
    if (keys.size === 0) this.#keysByTenant!.delete(tenant);
  }

  protected abstract create(labels: Labels): S;
  protected abstract export(series: S, into: ExportedValue[]): void;
  protected abstract zero(series: S): void;
  abstract readonly type: 'histogram' | 'counter';

  async getForPromString(): Promise<ExportedMetric> {
    const values: ExportedValue[] = [];
    for (const series of this.#series.values()) this.export(series, values);
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  async get(): Promise<ExportedMetric> {
    const metric = await this.getForPromString();
    metric.values = metric.values.map(({ sharedLabels, labels, ...rest }) => ({
      ...rest,
      labels: { ...sharedLabels, ...labels },
    }));
    return metric;
  }

  reset(): void {
    for (const series of this.#series.values()) this.zero(series);
  }
}

export class HistogramSeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  /** See CounterSeries.exported. */
  exported = false;

  constructor(
    readonly labels: Labels,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    if (i < bounds.length) this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

export class BoundHistogram extends BoundMetric<HistogramSeries> {
  readonly type = 'histogram';
  readonly #bounds: readonly number[];

  constructor(options: {
    name: string;
    help: string;
    labelNames: readonly string[];
    buckets: readonly number[];
    registry: Registry;
  }) {
    super(options.name, options.help, options.labelNames, options.registry);
    this.#bounds = [...options.buckets].sort((a, b) => a - b);
  }

  protected create(labels: Labels): HistogramSeries {
    return new HistogramSeries(labels, this.#bounds);
  }

  protected export(series: HistogramSeries, into: ExportedValue[]): void {
    const bucket = `${this.name}_bucket`;
    let cumulative = 0;
    this.#bounds.forEach((le, i) => {
      cumulative += series.counts[i]!;
      into.push({
        labels: { le },
        value: cumulative,
        metricName: bucket,
        sharedLabels: series.labels,
        exemplar: null,
      });
    });
    into.push(
      {
        labels: { le: '+Inf' },
        value: series.count,
        metricName: bucket,
        sharedLabels: series.labels,
        exemplar: null,
      },
      { labels: {}, value: series.sum, metricName: `${this.name}_sum`, sharedLabels: series.labels },
      { labels: {}, value: series.count, metricName: `${this.name}_count`, sharedLabels: series.labels },
    );
  }

  protected zero(series: HistogramSeries): void {
    series.counts.fill(0);
    series.sum = 0;
    series.count = 0;
  }
}

export class CounterSeries {
  value = 0;
  /**
   * Whether /metrics shows the series: not when made for a tenant or route no longer in the config, nor
   * once its tenant or route left (removeTenantSeries). A holder keeping a series beyond its tenant's
   * removal looks it up again when it is not.
   */
  exported = false;

  constructor(readonly labels: Labels) {}

  inc(amount = 1): void {
    this.value += amount;
  }
}

export class BoundCounter extends BoundMetric<CounterSeries> {
  readonly type = 'counter';

  constructor(options: { name: string; help: string; labelNames: readonly string[]; registry: Registry }) {
    super(options.name, options.help, options.labelNames, options.registry);
  }

  protected create(labels: Labels): CounterSeries {
    return new CounterSeries(labels);
  }

  protected export(series: CounterSeries, into: ExportedValue[]): void {
    into.push({ labels: series.labels, value: series.value });
  }

  protected zero(series: CounterSeries): void {
    series.value = 0;
  }
}
