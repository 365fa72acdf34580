import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import {
  type Attributes,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { targetWithoutCredentials } from '@vantageedge/shared/http/request-target';
import {
  endHttpSpan,
  hostWithoutPort,
  nameSpanByRoute,
  semconvMethod,
  spanValue,
  startServerSpan,
} from '@vantageedge/shared/observability/http-server-span';
import { SPAN_ATTRIBUTE_VALUE_MAX } from '@vantageedge/shared/observability/span-limits';
import { requestAuthority } from '../http/request-authority.js';
import { recordedMethod } from '../http/request-method.js';
import type { GatewayExchange } from '../pipeline/exchange.js';

/**
 * OpenTelemetry spans for the request path, following the HTTP semantic conventions: a SERVER span
 * named `GET` until a route matches and then `GET <route template>` (e.g. `GET /api/users/*`), child
 * spans per stage (auth, rate limit, cache), and a CLIENT span for the upstream call. When tracing is
 * off nothing is created and the client's traceparent is forwarded untouched.
 *
 * The SERVER span continues the caller's trace context only when the peer is a trusted proxy
 * (GATEWAY_TRUSTED_PROXIES), whose sampling decision it then follows. Any other client is untrusted:
 * the gateway starts a new trace, sampled by the operator's sampler (OTEL_TRACES_SAMPLER), and links
 * the client's context, so a client can neither hide its requests (`-00`) nor force trace volume
 * (`-01`, or trace ids picked to pass a ratio sampler) nor add spans to someone else's trace.
 */
export class RequestTracing {
  readonly enabled: boolean;
  readonly #tracer: Tracer;

  constructor(enabled: boolean) {
    this.enabled = enabled;
    this.#tracer = trace.getTracer('vantageedge-gateway');
  }

  startServerSpan(req: IncomingMessage, peerTrusted: boolean): Span {
    const method = semconvMethod(req.method);
    const target = req.url ?? '/';
    const authority = requestAuthority(req.headers) ?? '';
    const attributes: Record<string, string> & { 'http.request.method': string } = {
      'http.request.method': method,
      'url.path': spanValue(targetWithoutCredentials(target, SPAN_ATTRIBUTE_VALUE_MAX), target),
      'url.scheme': 'encrypted' in req.socket && req.socket.encrypted ? 'https' : 'http',
      'server.address': spanValue(hostWithoutPort(authority), authority),
    };
    if (method === '_OTHER' && req.method !== undefined)
      attributes['http.request.method_original'] = recordedMethod(req.method);
    return startServerSpan(this.#tracer, req.headers as IncomingHttpHeaders, attributes, peerTrusted);
  }

  /** Once a route matched: the span takes the route template as its name and `http.route`. */
  static routed(span: Span | undefined, method: string | undefined, routeTemplate: string): void {
    if (span !== undefined) nameSpanByRoute(span, method, routeTemplate);
  }

  startChild(parent: Span, name: string, kind: SpanKind = SpanKind.INTERNAL): Span {
    return this.#tracer.startSpan(name, { kind }, trace.setSpan(context.active(), parent));
  }

  /**
   * The CLIENT span of one attempt to call an origin target: a retried request has one per attempt,
   * each a child of the SERVER span, a retry's with `http.request.resend_count` (`resendCount` > 0).
   */
  startUpstreamSpan(parent: Span, method: string | undefined, target: URL, resendCount = 0): Span {
    const name = semconvMethod(method);
    const defaultPort = target.protocol === 'https:' ? 443 : 80;
    const attributes: Attributes = {
      'http.request.method': name,
      'server.address': target.hostname,
      'server.port': target.port === '' ? defaultPort : Number(target.port),
      'url.scheme': target.protocol.slice(0, -1),
    };
    if (resendCount > 0) attributes['http.request.resend_count'] = resendCount;
    return this.#tracer.startSpan(
      name,
      { kind: SpanKind.CLIENT, attributes },
      trace.setSpan(context.active(), parent),
    );
  }

  /** See propagateTraceContext. */
  inject(span: Span, headers: OutgoingHttpHeaders): void {
    propagateTraceContext(span, headers);
  }

  /** Ends a SERVER span with its response status (5xx, or no response at all, is an error). */
  static end(span: Span | undefined, status: number, errorType?: string): void {
    if (span !== undefined) endHttpSpan(span, status, errorType);
  }

  /** Ends an attempt's CLIENT span with the origin's status (4xx, 5xx or none at all is an error). */
  static endUpstream(span: Span, status: number, errorType?: string): void {
    endHttpSpan(span, status, errorType, SpanKind.CLIENT);
  }
}

/**
 * Writes the span's traceparent (and tracestate, when it has one) into headers sent upstream, in place
 * of the client's. Every request to an origin made for a traced exchange goes through here: the proxied
 * call, the WebSocket upgrade and a stale cache entry's background refresh.
 */
export function propagateTraceContext(span: Span, headers: OutgoingHttpHeaders): void {
  // An untrusted client's tracestate belongs to the trace the gateway did not continue.
  delete headers['tracestate'];
  propagation.inject(trace.setSpan(ROOT_CONTEXT, span), headers);
}

/**
 * The request's SERVER span when tracing is on (`tracing` only then), and the trace id its access-log
 * line carries: the gateway's, else a valid client traceparent's. Plain requests and WebSocket upgrades alike.
 */
export function beginRequestTrace(tracing: RequestTracing | undefined, exchange: GatewayExchange): void {
  if (tracing === undefined) {
    exchange.traceId = traceIdFromHeader(exchange.req.headers.traceparent);
    return;
  }
  exchange.span = tracing.startServerSpan(exchange.req, exchange.peerTrusted);
  exchange.traceId = exchange.span.spanContext().traceId;
}

/** version-trace id-parent id-flags; versions after 00 may append `-` and more fields. */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?$/;
const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_PARENT_ID = '0'.repeat(16);

/**
 * The trace id from a W3C traceparent header (for log correlation when tracing is off), or undefined
 * when the header is not a valid traceparent: the client writes it, so nothing else reaches the log.
 */
export function traceIdFromHeader(traceparent: string | string[] | undefined): string | undefined {
  if (typeof traceparent !== 'string') return undefined;
  const match = TRACEPARENT.exec(traceparent);
  if (match === null) return undefined;
  const [, version, traceId, parentId, more] = match;
  if (version === 'ff' || (version === '00' && more !== undefined)) return undefined;
  if (traceId === ZERO_TRACE_ID || parentId === ZERO_PARENT_ID) return undefined;
  return traceId;
}
