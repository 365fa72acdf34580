import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const STATUS_CLASS = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'];

export interface GatewayMetricsOptions {
  /**
   * Label the latency histograms by route as well as tenant (GATEWAY_METRICS_PER_ROUTE, default true).
   * Off, the route label is empty: one series set per tenant instead of per tenant × route.
   */
  perRoute?: boolean;
}

/** The gateway's own series; the upstream module registers per-target series in the same Registry. */
export class GatewayMetrics {
  readonly #requestDuration: Histogram<'tenant' | 'route' | 'status_class'>;
  readonly #upstreamDuration: Histogram<'tenant' | 'route'>;
  readonly #errors: Counter<'tenant' | 'status' | 'code'>;
  readonly activeConnections: Gauge;
  readonly droppedConnections: Counter;
  readonly requestsInFlight: Gauge;
  readonly #perRoute: boolean;

  constructor(registry: Registry, options: GatewayMetricsOptions = {}) {
    this.#perRoute = options.perRoute ?? true;
    this.#requestDuration = new Histogram({
      name: 'vantageedge_gateway_request_duration_seconds',
      help: 'Time from request arrival to response end, by tenant, route and status class',
      labelNames: ['tenant', 'route', 'status_class'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    });
    this.#upstreamDuration = new Histogram({
      name: 'vantageedge_gateway_upstream_duration_seconds',
      help: 'Time from sending a request upstream to receiving the response headers',
      labelNames: ['tenant', 'route'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    });
    this.#errors = new Counter({
      name: 'vantageedge_gateway_error_responses_total',
      help: 'Responses with status >= 400, by status and error code (code "origin" when the origin sent it)',
      labelNames: ['tenant', 'status', 'code'],
      registers: [registry],
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
    this.requestsInFlight = new Gauge({
      name: 'vantageedge_gateway_requests_in_flight',
      help: 'Requests being handled',
      registers: [registry],
    });
  }

  observe(
    tenant: string,
    route: string,
    status: number,
    seconds: number,
    upstreamSeconds: number | undefined,
    errorCode: string | undefined,
  ): void {
    if (!this.#perRoute) route = '';
    this.#requestDuration
      .labels(tenant, route, STATUS_CLASS[Math.floor(status / 100)] ?? '0xx')
      .observe(seconds);
    if (upstreamSeconds !== undefined) this.#upstreamDuration.labels(tenant, route).observe(upstreamSeconds);
    if (status >= 400) this.#errors.labels(tenant, String(status), errorCode ?? 'origin').inc();
  }
}
