import { STATUS_CODES } from 'node:http';
import { Counter, Gauge, type Registry } from 'prom-client';
import {
  BoundCounter,
  BoundHistogram,
  type CounterSeries,
  type HistogramSeries,
  removeTenantSeries,
} from './bound-metrics.js';
import { OTHER_ROUTES, RouteLabelBudget } from './route-label-budget.js';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const STATUS_CLASS = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'];

/** Why a request went to another connection of its target (see vantageedge_gateway_upstream_resends_total). */
export type UpstreamResendReason = 'unsent' | 'closed_before_answer';

/** The route label of a request that matched no route of its tenant (or no tenant). */
export const NO_ROUTE = 'none';
/** The tenant label of a request answered before its tenant was known (never a tenant id: those are UUIDs). */
export const NO_TENANT = 'unknown';

/**
 * A route label naming no one route (empty with per-route metrics off, `none`, `other`): its series
 * stay while their tenant does.
 */
export function namesNoRoute(route: string): boolean {
  return route === '' || route === NO_ROUTE || route === OTHER_ROUTES;
}

/** The bandwidth counter's directions: from the clients (their requests' bodies), to them (the responses'). */
export type BandwidthDirection = 'ingress' | 'egress';

/** Statuses with a registered name; an origin's other statuses are counted by class (see errorStatusLabel). */
const NAMED_STATUSES = new Set(Object.keys(STATUS_CODES));

/**
 * The gateway's own errors keep their status (a fixed set, one per error code). An origin can answer any
 * three-digit status, so one that has no registered name is counted as its class (`4xx`, `5xx`, …):
 * otherwise each origin could mint hundreds of series per tenant.
 */
export function errorStatusLabel(status: number, errorCode: string | undefined): string {
  const label = String(status);
  return errorCode !== undefined || NAMED_STATUSES.has(label) ? label : `${label[0]}xx`;
}

export interface GatewayMetricsOptions {
  /**
   * Label the latency histograms by route as well as tenant (GATEWAY_METRICS_PER_ROUTE, default true).
   * Off, the route label is empty: one series set per tenant instead of per tenant × route.
   */
  perRoute?: boolean;
  /**
   * Route ids that may be route labels on this replica at once (GATEWAY_METRICS_MAX_ROUTE_SERIES);
   * further routes are labelled `other` in their tenant. Unset: no bound.
   */
  maxRouteSeries?: number;
  /** The part of maxRouteSeries one tenant may hold (GATEWAY_METRICS_ROUTE_SERIES_TENANT_SHARE). */
  routeSeriesTenantShare?: number;
}

/**
 * One route's series, made when the route is compiled (a snapshot arrives): each series is looked up
 * once, at the route's first response of its status class, and counted directly from then on.
 */
export class RouteMetrics {
  readonly #byStatusClass: Array<HistogramSeries | undefined> = [];
  #upstream: HistogramSeries | undefined;
  #ingress: CounterSeries | undefined;
  #egress: CounterSeries | undefined;
  #retired = false;

  constructor(
    private readonly metrics: GatewayMetrics,
    readonly tenant: string,
    /** The route's label in the latency and retry series: `label`, or empty with per-route metrics off. */
    readonly route: string,
    /** The route's label in every other route-labelled series: its id, or `other` past the bound. */
    readonly label: string = route,
  ) {}

  observe(
    status: number,
    seconds: number,
    upstreamSeconds: number | undefined,
    errorCode: string | undefined,
  ) {
    // A request still in flight when its route left the config: counting would bring its series back.
    if (this.#retired) return;
    const statusClass = status >= 0 && status < 600 ? Math.floor(status / 100) : 0;
    let series = this.#byStatusClass[statusClass];
    if (series === undefined) {
      series = this.metrics.requestSeries(this.tenant, this.route, STATUS_CLASS[statusClass]!);
      this.#byStatusClass[statusClass] = series;
    }
    series.observe(seconds);
    if (upstreamSeconds !== undefined) {
      this.#upstream ??= this.metrics.upstreamSeries(this.tenant, this.route);
      this.#upstream.observe(upstreamSeconds);
    }
    if (status >= 400) this.metrics.countError(this.tenant, status, errorCode);
  }

  /** The body bytes one of the route's exchanges read and sent, where its request and response count them. */
  countBandwidth(received: number | undefined, sent: number | undefined): void {
    if (this.#retired) return;
    if (received !== undefined) {
      this.#ingress ??= this.metrics.bandwidthSeries(this.tenant, 'ingress');
      this.#ingress.inc(received);
    }
    if (sent !== undefined) {
      this.#egress ??= this.metrics.bandwidthSeries(this.tenant, 'egress');
      this.#egress.inc(sent);
    }
  }

  /** Only on a failed upstream attempt. */
  countRetry(outcome: 'retried' | 'budget_exhausted', reason: string): void {
    if (this.#retired) return;
    this.metrics.countRetry(this.tenant, this.route, outcome, reason);
  }

  /** The route (or its tenant) left the config and its series were removed. */
  retire(): void {
    this.#retired = true;
  }
}

/** A level that goes up and down per request: two additions instead of a gauge update per request. */
export class LevelCounter {
  value = 0;

  inc(): void {
    this.value++;
  }

  dec(): void {
    this.value--;
  }
}

/** The gateway's own series; the upstream module registers per-target series in the same Registry. */
export class GatewayMetrics {
  readonly #requestDuration: BoundHistogram;
  readonly #upstreamDuration: BoundHistogram;
  readonly #registry: Registry;
  readonly #errors: BoundCounter;
  readonly #retries: BoundCounter;
  readonly #upstreamLimitRefusals: BoundCounter;
  readonly #upstreamResends: BoundCounter;
  readonly #clientUpstreamLimitRefusals: BoundCounter;
  readonly #bandwidth: BoundCounter;
  readonly activeConnections: Gauge;
  readonly droppedConnections: Counter;
  readonly droppedClientConnections: Counter;
  readonly refusedClientRequests: Counter;
  /** Counted per request as a plain number, read by the gauge at scrape time. */
  readonly requestsInFlight: LevelCounter;
  readonly #perRoute: boolean;
  /** Requests that matched no route (unknown host, no route): by tenant and route label. */
  readonly #unrouted = new Map<string, RouteMetrics>();
  readonly #routeLabels: RouteLabelBudget | undefined;

  constructor(registry: Registry, options: GatewayMetricsOptions = {}) {
    this.#registry = registry;
    this.#perRoute = options.perRoute ?? true;
    const routeLabels =
      options.maxRouteSeries === undefined
        ? undefined
        : new RouteLabelBudget({
            maxRoutes: options.maxRouteSeries,
            tenantShare: options.routeSeriesTenantShare ?? 1,
          });
    this.#routeLabels = routeLabels;
    this.#requestDuration = new BoundHistogram({
      name: 'vantageedge_gateway_request_duration_seconds',
      help: 'Time from request arrival to response end, by tenant, route and status class',
      labelNames: ['tenant', 'route', 'status_class'],
      buckets: LATENCY_BUCKETS,
      registry,
    });
    this.#upstreamDuration = new BoundHistogram({
      name: 'vantageedge_gateway_upstream_duration_seconds',
      help: 'Time from sending a request upstream to receiving the response headers',
      labelNames: ['tenant', 'route'],
      buckets: LATENCY_BUCKETS,
      registry,
    });
    this.#errors = new BoundCounter({
      name: 'vantageedge_gateway_error_responses_total',
      help: 'Responses with status >= 400, by status and error code (code "origin" when the origin sent it, "fixed_response" when the route answers itself; an origin status without a registered name is counted as its class, e.g. 4xx)',
      labelNames: ['tenant', 'status', 'code'],
      registry,
    });
    this.#retries = new BoundCounter({
      name: 'vantageedge_gateway_upstream_retries_total',
      help: 'Upstream retries (outcome retried) and retries the retry budget refused (outcome budget_exhausted), by reason: connect_error, reset, 502, 503, 504',
      labelNames: ['tenant', 'route', 'outcome', 'reason'],
      registry,
    });
    this.#upstreamResends = new BoundCounter({
      name: 'vantageedge_gateway_upstream_resends_total',
      help: 'Requests sent once more on another connection of the same target, not as retries, because the origin closed the pooled connection they were given: before any of the request was written (reason unsent), or as the request arrived, before any answer (reason closed_before_answer: the keep-alive race)',
      labelNames: ['tenant', 'reason'],
      registry,
    });
    this.#upstreamLimitRefusals = new BoundCounter({
      name: 'vantageedge_gateway_tenant_upstream_limit_refusals_total',
      help: 'Requests refused 503 tenant_upstream_limit because the tenant had GATEWAY_MAX_UPSTREAM_REQUESTS_PER_TENANT requests in flight to its origins on this replica',
      labelNames: ['tenant'],
      registry,
    });
    this.#clientUpstreamLimitRefusals = new BoundCounter({
      name: 'vantageedge_gateway_client_upstream_limit_refusals_total',
      help: "Requests refused 429 client_upstream_limit because their client address had its share (GATEWAY_UPSTREAM_CLIENT_SHARE) of an origin target's connections in flight",
      labelNames: ['tenant'],
      registry,
    });
    this.#bandwidth = new BoundCounter({
      name: 'vantageedge_gateway_bandwidth_bytes_total',
      help: "Body bytes read from the tenant's clients (direction ingress) and sent to them (egress), as the access log's bytes_received and bytes_sent; a WebSocket's frames each way once it ended",
      labelNames: ['tenant', 'direction'],
      registry,
    });
    this.activeConnections = new Gauge({
      name: 'vantageedge_gateway_active_connections',
      help: 'Open client connections on the traffic listener',
      registers: [registry],
    });
    this.droppedConnections = new Counter({
      name: 'vantageedge_gateway_dropped_connections_total',
      help: 'Client connections closed on arrival because GATEWAY_MAX_CONNECTIONS were open',
      registers: [registry],
    });
    this.droppedClientConnections = new Counter({
      name: 'vantageedge_gateway_dropped_client_connections_total',
      help: 'Client connections closed on arrival because their address held GATEWAY_MAX_CONNECTIONS_PER_CLIENT',
      registers: [registry],
    });
    this.refusedClientRequests = new Counter({
      name: 'vantageedge_gateway_refused_client_requests_total',
      help: 'HTTP/2 requests answered 429 client_limit because their address held GATEWAY_MAX_CONNECTIONS_PER_CLIENT connections and requests',
      registers: [registry],
    });
    new Gauge({
      name: 'vantageedge_gateway_metrics_folded_routes',
      help: 'Routes counted under route="other" in their tenant because the replica held GATEWAY_METRICS_MAX_ROUTE_SERIES route labels or the tenant its share of them',
      labelNames: ['tenant'],
      registers: [registry],
      collect() {
        // Rebuilt from the config's routes: a removed tenant's series goes with it.
        this.reset();
        for (const [tenant, folded] of routeLabels?.foldedRoutes() ?? []) this.set({ tenant }, folded);
      },
    });
    const inFlight = new LevelCounter();
    this.requestsInFlight = inFlight;
    new Gauge({
      name: 'vantageedge_gateway_requests_in_flight',
      help: 'Requests being handled',
      registers: [registry],
      collect() {
        this.set(inFlight.value);
      },
    });
  }

  /** A route's series, bound when the route is compiled (its label is settled then, not per request). */
  forRoute(tenant: string, routeId: string): RouteMetrics {
    const label = this.#routeLabels?.labelFor(tenant, routeId) ?? routeId;
    return new RouteMetrics(this, tenant, this.#perRoute ? label : '', label);
  }

  /**
   * The series of the tenant's requests no route took, bound when the tenant is compiled: a request
   * ending after its tenant left the config counts nothing (tenantRetired stops them).
   */
  forUnrouted(tenant: string): RouteMetrics {
    return this.#unroutedMetrics(tenant, NO_ROUTE);
  }

  /**
   * The tenant's routes are being compiled from a snapshot with these ids: the route labels of routes
   * it no longer has are free for the routes it adds (their series leave at the swap, tenantRetired).
   */
  routesCompiling(tenant: string, routeIds: ReadonlySet<string>): void {
    this.#routeLabels?.release(tenant, routeIds);
  }

  /**
   * A response of a request its route's or tenant's own RouteMetrics does not cover (no tenant known,
   * or metrics bound after the route or tenant was compiled).
   */
  observe(
    tenant: string,
    route: string,
    status: number,
    seconds: number,
    upstreamSeconds: number | undefined,
    errorCode: string | undefined,
  ): void {
    this.#unroutedMetrics(tenant, route).observe(status, seconds, upstreamSeconds, errorCode);
  }

  /** The body bytes of an exchange the route's own RouteMetrics does not cover (see observe). */
  countBandwidth(
    tenant: string,
    route: string,
    received: number | undefined,
    sent: number | undefined,
  ): void {
    this.#unroutedMetrics(tenant, route).countBandwidth(received, sent);
  }

  /**
   * Bytes counted once per connection or refusal, not per request (a WebSocket's frames once it ended, a
   * listener's refusal): the series is looked up each time. Never for a tenant that left the config,
   * whose series would come back.
   */
  countTenantBandwidth(tenant: string, received: number | undefined, sent: number | undefined): void {
    if (received !== undefined) this.bandwidthSeries(tenant, 'ingress').inc(received);
    if (sent !== undefined) this.bandwidthSeries(tenant, 'egress').inc(sent);
  }

  #unroutedMetrics(tenant: string, route: string): RouteMetrics {
    const key = `${tenant}\u0000${route}`;
    let bound = this.#unrouted.get(key);
    if (bound === undefined) {
      bound = new RouteMetrics(this, tenant, this.#perRoute ? route : '');
      this.#unrouted.set(key, bound);
    }
    return bound;
  }

  bandwidthSeries(tenant: string, direction: BandwidthDirection): CounterSeries {
    return this.#bandwidth.series([tenant, direction]);
  }

  requestSeries(tenant: string, route: string, statusClass: string): HistogramSeries {
    return this.#requestDuration.series([tenant, route, statusClass]);
  }

  upstreamSeries(tenant: string, route: string): HistogramSeries {
    return this.#upstreamDuration.series([tenant, route]);
  }

  countError(tenant: string, status: number, errorCode: string | undefined): void {
    this.#errors.series([tenant, errorStatusLabel(status, errorCode), errorCode ?? 'origin']).inc();
  }

  /** Only on a failed upstream attempt: the label lookup is not on the hot path. */
  countRetry(tenant: string, route: string, outcome: 'retried' | 'budget_exhausted', reason: string): void {
    this.#retries.series([tenant, this.#perRoute ? route : '', outcome, reason]).inc();
  }

  /** Only when a connection closed under a request: the label lookup is not on the hot path. */
  countUpstreamResend(tenant: string, reason: UpstreamResendReason): void {
    this.#upstreamResends.series([tenant, reason]).inc();
  }

  /** Only on a refusal: the label lookup is not on the hot path. */
  countUpstreamLimitRefusal(tenant: string): void {
    this.#upstreamLimitRefusals.series([tenant]).inc();
  }

  countClientUpstreamLimitRefusal(tenant: string): void {
    this.#clientUpstreamLimitRefusals.series([tenant]).inc();
  }

  /**
   * A tenant's config was replaced (`liveRoutes`: the route ids it has now) or removed (no
   * `liveRoutes`): every bound series of the registry labelled with the tenant and a route it no longer
   * has, or all of the tenant's, is removed; `previousRoutes` (the replaced version's) whose series
   * went stop counting. Series of routes that stay are kept, so their counters go on from where they were.
   */
  tenantRetired(
    tenant: string,
    previousRoutes: Iterable<RouteMetrics | undefined>,
    liveRoutes?: ReadonlySet<string>,
  ): void {
    const routeIsLive =
      liveRoutes === undefined ? undefined : (route: string) => namesNoRoute(route) || liveRoutes.has(route);
    removeTenantSeries(this.#registry, tenant, routeIsLive);
    this.#routeLabels?.release(tenant, liveRoutes);
    for (const route of previousRoutes) {
      if (route !== undefined && !routeIsLive?.(route.route)) route.retire();
    }
    if (liveRoutes !== undefined) return;
    for (const [key, unrouted] of this.#unrouted) {
      if (unrouted.tenant !== tenant) continue;
      unrouted.retire();
      this.#unrouted.delete(key);
    }
  }
}
