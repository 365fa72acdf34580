import { type Attributes, type Span, SpanKind, SpanStatusCode, type Tracer, trace } from '@opentelemetry/api';

/**
 * CLIENT spans for a service's own calls to PostgreSQL and Kafka, made by hand at the adapters (no
 * OpenTelemetry instrumentation patches our ES modules). One is made only under a recording span — an
 * admin request's SERVER span, a projector's batch or publication — so a statement or send nobody
 * asked about (a projector polling, a LISTEN connection, a request not sampled) makes no trace of its
 * own. With tracing off no SDK is registered and the check is a lookup of the no-op context: callers
 * check it before they build anything for a span.
 */
export function underRecordingSpan(): boolean {
  return trace.getActiveSpan()?.isRecording() === true;
}

/** A CLIENT span, child of the active span. */
export function startClientSpan(tracer: Tracer, name: string, attributes: Attributes): Span {
  return tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes });
}

/**
 * Ends a CLIENT span whose call failed, with `error.type` (errorType) and an error status. The error's
 * message is not recorded: a database's or broker's can quote the values sent (a duplicate key's).
 */
export function endFailedClientSpan(span: Span, error: unknown, attributes?: Attributes): void {
  span.setAttribute('error.type', errorType(error));
  if (attributes) span.setAttributes(attributes);
  span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}

/** The error's code (a SQLSTATE, a node errno) when it has one as text, else its class name. */
export function errorType(error: unknown): string {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  if (typeof code === 'string' && code !== '') return code;
  return error instanceof Error ? error.name : '_OTHER';
}
