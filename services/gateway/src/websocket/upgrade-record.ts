import type { AccessLog } from '../observability/access-log.js';
import type { GatewayMetrics } from '../observability/gateway-metrics.js';
import { RequestTracing } from '../observability/request-tracing.js';
import { closedBeforeAnswer, type GatewayExchange } from '../pipeline/exchange.js';
import type { UsageSink } from '../pipeline/gateway-handler.js';

/** Where an upgrade request is recorded: the access log, request metrics and usage every request goes to. */
export interface UpgradeRecordSinks {
  accessLog?: AccessLog | undefined;
  requestMetrics?: Pick<GatewayMetrics, 'observe'> | undefined;
  usage?: UsageSink | undefined;
}

/**
 * Records one upgrade request exactly once, as the pipeline's finishExchange records every other
 * request: its access-log line, its request metrics (duration by status class, upstream time, an
 * answer of 400 or more as an error response) and its SERVER span. Call the returned function when the answer is out (a
 * refusal, a relayed origin answer) or the client left first; for a switched upgrade, with 101 at the
 * switch — the line is the upgrade request's, the connection's life is in the WebSocket gauges.
 */
export function upgradeRecorder(
  exchange: GatewayExchange,
  sinks: UpgradeRecordSinks,
): (switched?: 101) => void {
  let recorded = false;
  return (switched) => {
    if (recorded) return;
    recorded = true;
    const { res, route } = exchange;
    // 0: the client left before any answer, logged and counted as 499 (as finishExchange does).
    const answered = switched ?? (res.headersSent ? res.statusCode : 0);
    const status = answered === 0 ? closedBeforeAnswer(exchange) : answered;
    const elapsedMs = performance.now() - exchange.startedAt;
    const metrics = sinks.requestMetrics;
    if (metrics !== undefined) {
      const upstreamSeconds = exchange.upstreamMs === undefined ? undefined : exchange.upstreamMs / 1000;
      if (route?.metrics !== undefined) {
        route.metrics.observe(status, elapsedMs / 1000, upstreamSeconds, exchange.errorCode);
      } else {
        metrics.observe(
          exchange.tenant?.id ?? 'unknown',
          route?.config.id ?? 'none',
          status,
          elapsedMs / 1000,
          upstreamSeconds,
          exchange.errorCode,
        );
      }
    }
    sinks.accessLog?.record(exchange, status, elapsedMs);
    // Counted once, as its 101 or its refusal; an upgrade the client left before any answer is not.
    sinks.usage?.record(exchange, answered);
    RequestTracing.end(exchange.span, answered, exchange.errorCode);
  };
}
