import type { IncomingHttpHeaders } from 'node:http';
import {
  type Attributes,
  context,
  createTraceState,
  defaultTextMapGetter,
  isSpanContextValid,
  type Link,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { ownCopy } from '../text/own-copy.js';
import { SPAN_ATTRIBUTE_VALUE_MAX } from './span-limits.js';

/** Methods OpenTelemetry's HTTP conventions name as they are; any other is reported as `_OTHER`. */
const KNOWN_METHODS = new Set([
  'CONNECT',
  'DELETE',
  'GET',
  'HEAD',
  'OPTIONS',
  'PATCH',
  'POST',
  'PUT',
  'TRACE',
]);

/** The method as a span's name and `http.request.method` carry it. */
export function semconvMethod(method: string | undefined): string {
  return method !== undefined && KNOWN_METHODS.has(method) ? method : '_OTHER';
}

/** The host a client asked for, without the port (server.address). */
export function hostWithoutPort(host: string | undefined): string {
  if (host === undefined) return '';
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  const colon = host.indexOf(':');
  return colon < 0 ? host : host.slice(0, colon);
}

/**
 * `value`, taken from `source` (a string of the request), in at most SPAN_ATTRIBUTE_VALUE_MAX
 * characters. When `source` is longer it is copied out: V8 keeps the whole string a substring was cut
 * from alive, and a span can wait in the export queue (while the collector is slow or down) long after
 * its request ended, so a long target or Host would otherwise stay in memory with every queued span.
 */
export function spanValue(value: string, source: string): string {
  if (source.length <= SPAN_ATTRIBUTE_VALUE_MAX) return value;
  return ownCopy(value.slice(0, SPAN_ATTRIBUTE_VALUE_MAX));
}

/**
 * The caller's trace context (the header's, as the propagator parsed it), holding nothing of the
 * request's headers: a span keeps it (as its parent or its link) while it waits in the export queue.
 * The parsed ids are cuts of the traceparent, which a later version may continue after the flags up to
 * the header limit; the tracestate is kept unparsed and whole, though at most 32 members in 512
 * characters of it (W3C's limits) are ever sent. Here the ids are copied and the tracestate is what
 * would be sent.
 */
function detachedSpanContext(caller: SpanContext): SpanContext {
  const traceState = caller.traceState?.serialize();
  return {
    traceId: ownCopy(caller.traceId),
    spanId: ownCopy(caller.spanId),
    traceFlags: caller.traceFlags,
    isRemote: true,
    ...(traceState ? { traceState: createTraceState(ownCopy(traceState)) } : {}),
  };
}

/**
 * What a caller's headers are read for: its W3C trace context alone. The SDK registers the baggage
 * propagator beside it, which decodes up to 180 entries of a client's `baggage` on every request (about
 * 200 µs of the event loop for a header of a few KiB), though no span or service uses baggage.
 */
const callerTraceContext = new W3CTraceContextPropagator();

/** The caller's valid trace context from the request's headers (see detachedSpanContext), if any. */
function callerSpanContext(headers: IncomingHttpHeaders): SpanContext | undefined {
  const extracted = trace.getSpanContext(
    callerTraceContext.extract(ROOT_CONTEXT, headers, defaultTextMapGetter),
  );
  return extracted !== undefined && isSpanContextValid(extracted)
    ? detachedSpanContext(extracted)
    : undefined;
}

/** The tracer a service's SERVER spans start from (the API's no-op one while no SDK is registered). */
export function serverTracer(name: string): Tracer {
  return trace.getTracer(name);
}

/** Runs `handle` with `span` as the active span: what it logs carries the span's trace id. */
export function withActiveSpan<T>(span: Span, handle: () => T): T {
  return context.with(trace.setSpan(context.active(), span), handle);
}

/**
 * A request's SERVER span, named by its method (`semconvMethod`) until a route names it. It continues
 * the caller's trace context only when the peer is a trusted proxy, whose sampling decision it then
 * follows. Any other caller is untrusted: the span starts a new trace, sampled by the operator's sampler
 * (OTEL_TRACES_SAMPLER), and links the caller's context, so a caller can neither hide its requests
 * (`-00`) nor force trace volume (`-01`, or trace ids picked to pass a ratio sampler) nor add spans to
 * someone else's trace.
 */
export function startServerSpan(
  tracer: Tracer,
  headers: IncomingHttpHeaders,
  attributes: Attributes & { 'http.request.method': string },
  peerTrusted: boolean,
): Span {
  const caller = callerSpanContext(headers);
  const name = attributes['http.request.method'];
  if (peerTrusted) {
    const parent = caller === undefined ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, caller);
    return tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
  }
  const links: Link[] = caller === undefined ? [] : [{ context: caller }];
  return tracer.startSpan(name, { kind: SpanKind.SERVER, attributes, links, root: true }, ROOT_CONTEXT);
}

/** Once a route matched: the span takes the route template as its name and `http.route`. */
export function nameSpanByRoute(span: Span, method: string | undefined, routeTemplate: string): void {
  span.updateName(`${semconvMethod(method)} ${routeTemplate}`);
  span.setAttribute('http.route', routeTemplate);
}

/**
 * Ends a SERVER or CLIENT span with its response status. No response at all is an error, and so is a
 * 5xx; a 4xx only on a CLIENT span (the HTTP conventions: the request failed, where on the server side
 * it is the client's doing).
 */
export function endHttpSpan(
  span: Span,
  status: number,
  errorType?: string,
  kind: SpanKind.SERVER | SpanKind.CLIENT = SpanKind.SERVER,
): void {
  if (status > 0) span.setAttribute('http.response.status_code', status);
  if (status >= (kind === SpanKind.CLIENT ? 400 : 500) || status === 0) {
    span.setAttribute('error.type', errorType ?? (status === 0 ? 'no_response' : String(status)));
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
  span.end();
}
