import { targetWithoutCredentials } from '@vantageedge/shared/http/request-target';
import { ClientAddressResolver } from '@vantageedge/shared/net/client-address';
import {
  endHttpSpan,
  hostWithoutPort,
  nameSpanByRoute,
  semconvMethod,
  serverTracer,
  spanValue,
  startServerSpan,
  withActiveSpan,
} from '@vantageedge/shared/observability/http-server-span';
import { SPAN_ATTRIBUTE_VALUE_MAX } from '@vantageedge/shared/observability/span-limits';
import type express from 'express';
import type { RequestHandler } from 'express';
import { routeTemplates } from './route-table.js';

export interface RequestTracingOptions {
  /** CONTROL_PLANE_TRUSTED_PROXIES: only their trace context is continued. */
  trustedProxies: readonly string[];
}

/**
 * One SERVER span per admin API request (mounted first, with OTEL_ENABLED only), following the HTTP
 * semantic conventions as the gateway's: named `POST /api/v1/routes` by the route template the request
 * matched, or by its method alone when none did (404, 405, OPTIONS). The caller's `traceparent` is
 * continued only from a trusted proxy, else linked to a new trace (startServerSpan). The span is the
 * active one while the request is handled, so log lines carry its trace id.
 *
 * Its own spans rather than OpenTelemetry's HTTP instrumentation: that patches `node:http` only when it
 * is required after the SDK started, and the control plane is an ES module (bundled for production)
 * whose imports load node:http first, so it never recorded a request.
 */
export function traceRequests(app: express.Express, options: RequestTracingOptions): RequestHandler {
  const tracer = serverTracer('vantageedge-control-plane');
  const peers = new ClientAddressResolver(options.trustedProxies);
  const templateOf = routeTemplates(app);
  return (req, res, next) => {
    const method = semconvMethod(req.method);
    const target = req.url;
    const host = req.headers.host ?? '';
    const attributes: Record<string, string> & { 'http.request.method': string } = {
      'http.request.method': method,
      'url.path': spanValue(targetWithoutCredentials(target, SPAN_ATTRIBUTE_VALUE_MAX), target),
      'url.scheme': 'http',
      'server.address': spanValue(hostWithoutPort(host), host),
    };
    // node's HTTP/1.1 parser takes only the methods it knows, all short.
    if (method === '_OTHER') attributes['http.request.method_original'] = req.method;
    const span = startServerSpan(tracer, req.headers, attributes, peers.resolve(req).peerTrusted);
    // 'close' follows the response, or ends a request whose client left before it was answered.
    res.once('close', () => {
      const template = templateOf(req.route);
      if (template !== undefined) nameSpanByRoute(span, req.method, template);
      endHttpSpan(span, res.writableFinished ? res.statusCode : 0);
    });
    withActiveSpan(span, next);
  };
}
