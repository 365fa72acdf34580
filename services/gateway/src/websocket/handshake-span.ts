import type { OutgoingHttpHeaders } from 'node:http';
import type { Span } from '@opentelemetry/api';
import { RequestTracing } from '../observability/request-tracing.js';
import type { GatewayExchange } from '../pipeline/exchange.js';
import type { UpstreamTarget } from '../upstream/types.js';

/**
 * The CLIENT span of an upgrade's handshake with its origin, a child of the upgrade's SERVER span as a
 * plain request's attempt is. It ends once, with whichever outcome comes first: the origin's 101 (at
 * the switch: the WebSocket that follows is no span, it may stay open for hours), the origin's refusal
 * (a 4xx or 5xx an error), or no answer the client could be given (the gateway's error code as
 * `error.type`). Later outcomes of the same handshake (the client leaving after it failed) are ignored.
 */
export interface HandshakeSpan {
  /** The origin answered the handshake with `status`: 101 at the switch, else its refusal. */
  answered(status: number): void;
  /** The handshake failed with `errorType`; `originStatus` when the origin answered what could not be relayed. */
  failed(errorType: string, originStatus?: number): void;
}

const UNTRACED: HandshakeSpan = { answered: () => {}, failed: () => {} };

/**
 * Starts the handshake's span when the upgrade is traced, and writes its context into the headers the
 * origin gets (in place of the client's), so the origin continues the handshake's span.
 */
export function startHandshakeSpan(
  tracing: RequestTracing | undefined,
  exchange: GatewayExchange,
  target: UpstreamTarget,
  headers: OutgoingHttpHeaders,
): HandshakeSpan {
  if (tracing === undefined || exchange.span === undefined) return UNTRACED;
  const span: Span = tracing.startUpstreamSpan(exchange.span, 'GET', target.url);
  span.setAttribute('vantageedge.upstream.target', target.label);
  tracing.inject(span, headers);
  let ended = false;
  const end = (status: number, errorType?: string) => {
    if (ended) return;
    ended = true;
    RequestTracing.endUpstream(span, status, errorType);
  };
  return {
    answered: (status) => end(status),
    failed: (errorType, originStatus) => {
      if (!ended && originStatus !== undefined && originStatus >= 100 && originStatus <= 599)
        span.setAttribute('http.response.status_code', originStatus);
      end(0, errorType);
    },
  };
}
