import type { ClientAddressResolver } from '@vantageedge/shared/net/client-address';
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
  /**
   * The connection's peer address (socketPeerAddress); the recorder replaces it with the client address
   * `forwardedFor` gives behind a trusted proxy, as the pipeline resolves it.
   */
  readonly clientIp: string | undefined;
  /** The request's X-Forwarded-For, when its head was read. */
  readonly forwardedFor?: string | string[] | undefined;
  /** What was read of the request, when its head was. */
  readonly method?: string | undefined;
  readonly target?: string | undefined;
  readonly userAgent?: string | undefined;
  /** The request body bytes read before the refusal, when counted (none when its head was not read). */
  readonly bytesReceived?: number | undefined;
  /** The body bytes of the refusal's answer. */
  readonly bytesSent?: number | undefined;
}

/** Where a listener records a request it refused. */
export type RecordListenerRefusal = (refusal: ListenerRefusal) => void;

/**
 * Records each listener refusal as the pipeline records its own refusals before a tenant is found:
 * in vantageedge_gateway_error_responses_total with tenant="unknown" (a label no tenant id, a UUID, can
 * be) and its status and code, both from a fixed set, its answer's body bytes in
 * vantageedge_gateway_bandwidth_bytes_total under the same tenant, and as an access-log line with
 * tenant_id null.
 */
export function listenerRefusalRecorder(sinks: {
  readonly metrics: Pick<GatewayMetrics, 'countError' | 'countTenantBandwidth'>;
  readonly accessLog?: AccessLog | undefined;
  /** The pipeline's resolver (GATEWAY_TRUSTED_PROXIES): a line names the client the pipeline would. */
  readonly clientAddresses?: ClientAddressResolver | undefined;
}): RecordListenerRefusal {
  return (refusal) => {
    sinks.metrics.countError(NO_TENANT, refusal.status, refusal.code);
    sinks.metrics.countTenantBandwidth(NO_TENANT, refusal.bytesReceived, refusal.bytesSent);
    const { accessLog, clientAddresses } = sinks;
    if (accessLog === undefined) return;
    const clientIp =
      refusal.clientIp === undefined || clientAddresses === undefined
        ? refusal.clientIp
        : clientAddresses.fromPeer(refusal.clientIp, refusal.forwardedFor).clientIp;
    accessLog.recordRefusal(clientIp === refusal.clientIp ? refusal : { ...refusal, clientIp });
  };
}
