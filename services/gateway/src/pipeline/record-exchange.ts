import { bodyBytesOf } from '../http/body-bytes.js';
import type { AccessLog } from '../observability/access-log.js';
import { type GatewayMetrics, NO_ROUTE, NO_TENANT } from '../observability/gateway-metrics.js';
import { RequestTracing } from '../observability/request-tracing.js';
import { closedBeforeAnswer, type GatewayExchange } from './exchange.js';

/** Where finished exchanges are counted (the usage recorder). */
export interface UsageSink {
  record(exchange: GatewayExchange, status: number): void;
}

/** Where an exchange that ended is recorded: every request's, and every WebSocket upgrade's. */
export interface ExchangeRecordSinks {
  readonly metrics?: Pick<GatewayMetrics, 'observe' | 'countBandwidth'> | undefined;
  readonly accessLog?: AccessLog | undefined;
  readonly usage?: UsageSink | undefined;
}

/**
 * An exchange that ended, recorded once: its request metrics (duration by status class, upstream time,
 * an answer of 400 or more as an error response, its body bytes each way), its access-log line, its usage count and its SERVER
 * span. `answered` is the status the client got, 0 when nothing was answered: logged and counted as 499
 * (closedBeforeAnswer), never counted in usage.
 */
export function recordExchange(
  exchange: GatewayExchange,
  answered: number,
  sinks: ExchangeRecordSinks,
): void {
  const status = answered === 0 ? closedBeforeAnswer(exchange) : answered;
  const elapsedMs = performance.now() - exchange.startedAt;
  const metrics = sinks.metrics;
  if (metrics !== undefined) {
    const upstreamSeconds = exchange.upstreamMs === undefined ? undefined : exchange.upstreamMs / 1000;
    const received = bodyBytesOf(exchange.req);
    const sent = bodyBytesOf(exchange.res);
    const route = exchange.route;
    // A tenant's request no route took counts on the tenant's own series, which stop when it leaves.
    const bound = route === undefined ? exchange.tenant?.unroutedMetrics : route.metrics;
    if (bound !== undefined) {
      bound.observe(status, elapsedMs / 1000, upstreamSeconds, exchange.errorCode);
      bound.countBandwidth(received, sent);
    } else {
      const tenant = exchange.tenant?.id ?? NO_TENANT;
      const routeId = route?.config.id ?? NO_ROUTE;
      metrics.observe(tenant, routeId, status, elapsedMs / 1000, upstreamSeconds, exchange.errorCode);
      metrics.countBandwidth(tenant, routeId, received, sent);
    }
  }
  sinks.accessLog?.record(exchange, status, elapsedMs);
  sinks.usage?.record(exchange, answered);
  RequestTracing.end(exchange.span, answered, exchange.errorCode);
}
