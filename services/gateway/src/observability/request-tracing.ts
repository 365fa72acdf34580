import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
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
import { requestAuthority } from '../http/request-authority.js';

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

function semconvMethod(method: string | undefined): string {
  return method !== undefined && KNOWN_METHODS.has(method) ? method : '_OTHER';
}

/** The host a client asked for, without the port (server.address). */
function hostWithoutPort(host: string | undefined): string {
  if (host === undefined) return '';
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  const colon = host.indexOf(':');
  return colon < 0 ? host : host.slice(0, colon);
}

/**
 * OpenTelemetry spans for the request path, following the HTTP semantic conventions: a SERVER span
 * continuing the caller's traceparent, named `GET` until a route matches and then `GET <route
 * template>` (e.g. `GET /api/users/*`), child spans per stage (auth, rate limit, cache), and a CLIENT
 * span for the upstream call. When tracing is off nothing is created and the client's traceparent is
 * forwarded untouched.
 */
export class RequestTracing {
  readonly enabled: boolean;
  readonly #tracer: Tracer;

  constructor(enabled: boolean) {
    this.enabled = enabled;
    this.#tracer = trace.getTracer('vantageedge-gateway');
  }

  startServerSpan(req: IncomingMessage): Span {
    const parent = propagation.extract(ROOT_CONTEXT, req.headers as IncomingHttpHeaders);
    const method = semconvMethod(req.method);
    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    const attributes: Record<string, string> = {
      'http.request.method': method,
      'url.path': queryAt < 0 ? url : url.slice(0, queryAt),
      'url.scheme': 'encrypted' in req.socket && req.socket.encrypted ? 'https' : 'http',
      'server.address': hostWithoutPort(requestAuthority(req.headers)),
    };
    if (method === '_OTHER' && req.method !== undefined)
      attributes['http.request.method_original'] = req.method;
    return this.#tracer.startSpan(method, { kind: SpanKind.SERVER, attributes }, parent);
  }

  /** Once a route matched: the span takes the route template as its name and `http.route`. */
  static routed(span: Span | undefined, method: string | undefined, routeTemplate: string): void {
    if (span === undefined) return;
    span.updateName(`${semconvMethod(method)} ${routeTemplate}`);
    span.setAttribute('http.route', routeTemplate);
  }

  startChild(parent: Span, name: string, kind: SpanKind = SpanKind.INTERNAL): Span {
    return this.#tracer.startSpan(name, { kind }, trace.setSpan(context.active(), parent));
  }

  /** The CLIENT span of the call to an origin target. */
  startUpstreamSpan(parent: Span, method: string | undefined, target: URL): Span {
    const name = semconvMethod(method);
    const defaultPort = target.protocol === 'https:' ? 443 : 80;
    return this.#tracer.startSpan(
      name,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'http.request.method': name,
          'server.address': target.hostname,
          'server.port': target.port === '' ? defaultPort : Number(target.port),
          'url.scheme': target.protocol.slice(0, -1),
        },
      },
      trace.setSpan(context.active(), parent),
    );
  }

  /** Writes the span's traceparent into the headers sent upstream. */
  inject(span: Span, headers: OutgoingHttpHeaders): void {
    propagation.inject(trace.setSpan(ROOT_CONTEXT, span), headers);
  }

  /** Ends a SERVER or CLIENT span with its response status (5xx, or no response at all, is an error). */
  static end(span: Span | undefined, status: number, errorType?: string): void {
    if (span === undefined) return;
    if (status > 0) span.setAttribute('http.response.status_code', status);
    if (status >= 500 || status === 0) {
      span.setAttribute('error.type', errorType ?? (status === 0 ? 'no_response' : String(status)));
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
  }
}

/** The trace id from a W3C traceparent header (for log correlation when tracing is off). */
export function traceIdFromHeader(traceparent: string | string[] | undefined): string | undefined {
  if (typeof traceparent !== 'string' || traceparent.length < 55 || traceparent.charCodeAt(2) !== 45)
    return undefined;
  return traceparent.slice(3, 35);
}
