import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import {
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';

/**
 * OpenTelemetry spans for the request path: a SERVER span continuing the caller's traceparent, and
 * child spans per stage (auth, rate limit, cache, upstream). When tracing is off nothing is created
 * and the client's traceparent is forwarded untouched.
 */
export class RequestTracing {
  readonly enabled: boolean;
  readonly #tracer: Tracer;

  constructor(enabled: boolean) {
    this.enabled = enabled;
    this.#tracer = trace.getTracer('vantageedge-gateway');
  }

  startServerSpan(headers: IncomingHttpHeaders, method: string): Span {
    const parent = propagation.extract(ROOT_CONTEXT, headers);
    return this.#tracer.startSpan(`${method} gateway`, { kind: SpanKind.SERVER }, parent);
  }

  startChild(parent: Span, name: string, kind: SpanKind = SpanKind.INTERNAL): Span {
    return this.#tracer.startSpan(name, { kind }, trace.setSpan(context.active(), parent));
  }

  /** Writes the span's traceparent into the headers sent upstream. */
  inject(span: Span, headers: OutgoingHttpHeaders): void {
    propagation.inject(trace.setSpan(ROOT_CONTEXT, span), headers);
  }

  static end(span: Span | undefined, status: number): void {
    if (span === undefined) return;
    span.setAttribute('http.response.status_code', status);
    if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  }
}

/** The trace id from a W3C traceparent header (for log correlation when tracing is off). */
export function traceIdFromHeader(traceparent: string | string[] | undefined): string | undefined {
  if (typeof traceparent !== 'string' || traceparent.length < 55 || traceparent.charCodeAt(2) !== 45)
    return undefined;
  return traceparent.slice(3, 35);
}
