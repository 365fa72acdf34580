import type { AccessLog } from './access-log.js';
import { type GatewayMetrics, NO_TENANT } from './gateway-metrics.js';

/**
 * A request a listener answered itself before the pipeline saw it: node's parser refused its head (400
 * malformed_request, 431 headers_too_large) or it was not received in time (408 request_timeout), it
 * expected something but 100-continue (417), it was a CONNECT (405, 400). No tenant is known for it: its
 * Host was not read, or cannot be trusted yet.
 */
export interface ListenerRefusal {
  readonly status: number;
  readonly code: string;
  /** The connection's peer address (a trusted proxy's forwarded address is not read this early). */
  readonly clientIp: string | undefined;
  /** What was read of the request, when its head was. */
  readonly method?: string | undefined;
  readonly target?: string | undefined;
}

/** Where a listener records a request it refused. */
export type RecordListenerRefusal = (refusal: ListenerRefusal) => void;

/**
 * Records each listener refusal as the pipeline records its own refusals before a tenant is found:
 * in vantageedge_gateway_error_responses_total with tenant="unknown" (a label no tenant id, a UUID, can
 * be) and its status and code, both from a fixed set, and as an access-log line with tenant_id null.
 */
export function listenerRefusalRecorder(sinks: {
  readonly metrics: Pick<GatewayMetrics, 'countError'>;
  readonly accessLog?: AccessLog | undefined;
}): RecordListenerRefusal {
  return (refusal) => {
    sinks.metrics.countError(NO_TENANT, refusal.status, refusal.code);
    sinks.accessLog?.recordRefusal(refusal);
  };
}
