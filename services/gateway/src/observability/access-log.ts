import type { Logger } from '@vantageedge/shared/observability/logger';
import type { GatewayExchange } from '../pipeline/exchange.js';

/**
 * One JSON line per request (winston), sampled: `sampleRate` of the requests below 500, and every
 * 5xx (the lines an operator needs are never sampled away).
 */
export class AccessLog {
  constructor(
    private readonly logger: Logger,
    private readonly sampleRate: number,
  ) {}

  record(exchange: GatewayExchange, status: number, latencyMs: number): void {
    if (status < 500 && (this.sampleRate <= 0 || (this.sampleRate < 1 && Math.random() >= this.sampleRate)))
      return;
    this.logger.info('request', {
      kind: 'access',
      request_id: exchange.requestId,
      trace_id: exchange.traceId,
      tenant_id: exchange.tenant?.id,
      route_id: exchange.route?.config.id,
      method: exchange.req.method,
      path: exchange.path || exchange.req.url,
      status,
      latency_ms: Math.round(latencyMs * 1000) / 1000,
      upstream_target: exchange.upstreamTarget,
      upstream_ms:
        exchange.upstreamMs === undefined ? undefined : Math.round(exchange.upstreamMs * 1000) / 1000,
      auth: exchange.identity.kind,
      rate_limit: exchange.rateLimitOutcome,
      cache: exchange.cacheOutcome,
      error_code: exchange.errorCode,
      client_ip: exchange.clientIp,
    });
  }
}
