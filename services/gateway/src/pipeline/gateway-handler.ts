import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Authenticator } from '../auth/authenticator.js';
import type { AuthResult } from '../auth/identity.js';
import type { CompiledTenant } from '../config/compiled-tenant.js';
import { type EncodedSlashPolicy, isAcceptableQuery, normalizePath } from '../config/normalize-path.js';
import { AmbiguousPath } from '../config/route-matcher.js';
import { singleHeader } from '../http/header-values.js';
import type { AccessLog } from '../observability/access-log.js';
import type { GatewayMetrics } from '../observability/gateway-metrics.js';
import { RequestTracing, traceIdFromHeader } from '../observability/request-tracing.js';
import { ClientAddressResolver } from '../proxy/client-address.js';
import { CookieDomainGuard } from '../proxy/cookie-domains.js';
import { upstreamRequestHeaders } from '../proxy/forwarded-headers.js';
import { proxyRequest } from '../proxy/proxy-request.js';
import { writeError } from './errors.js';
import { GatewayExchange, type RequestStage } from './exchange.js';

export interface TenantResolver {
  resolveHost(hostHeader: string | undefined): CompiledTenant | undefined;
}

export interface GatewayHandlerOptions {
  store: TenantResolver;
  authenticator: Authenticator;
  maxBodyBytes: number;
  encodedSlashes?: EncodedSlashPolicy;
  /** PLATFORM_BASE_DOMAINS: an origin's cookie may never be scoped to one of them (or a parent). */
  baseDomains?: readonly string[];
  /** CIDR ranges of the proxies in front of the gateway (GATEWAY_TRUSTED_PROXIES); default none. */
  trustedProxies?: readonly string[];
  /** Between auth and the proxy, in order (rate limit, then cache). */
  stages?: readonly RequestStage[];
  metrics?: GatewayMetrics;
  accessLog?: AccessLog;
  tracing?: RequestTracing;
}

export type GatewayHandler = (req: IncomingMessage, res: ServerResponse) => void;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const EXCHANGE = Symbol('vantageedge.exchange');
type ResponseWithExchange = ServerResponse & { [EXCHANGE]?: GatewayExchange; [FINISH]?: Finisher };
const FINISH = Symbol('vantageedge.finish');
type Finisher = (exchange: GatewayExchange) => void;

/** Runs once per response, when the socket is done with it (finished or aborted). */
function onResponseClose(this: ResponseWithExchange): void {
  const exchange = this[EXCHANGE];
  if (exchange !== undefined) this[FINISH]?.(exchange);
}

/**
 * The request pipeline as a plain node:http `(req, res)` handler:
 * tenant (Host) → path normalisation → route → body limit → auth → stages (rate limit, cache) →
 * balance (UpstreamSet.acquire) → proxy (undici, streaming).
 */
export function createGatewayHandler(options: GatewayHandlerOptions): GatewayHandler {
  const encodedSlashes = options.encodedSlashes ?? 'reject';
  const clientAddresses = new ClientAddressResolver(options.trustedProxies ?? []);
  const cookieDomains = new CookieDomainGuard(options.baseDomains ?? []);
  const stages = options.stages ?? [];
  const tracing = options.tracing?.enabled ? options.tracing : undefined;
  const { metrics, accessLog, authenticator, maxBodyBytes } = options;

  const finish: Finisher = (exchange) => {
    const status = exchange.res.statusCode;
    const elapsedMs = performance.now() - exchange.startedAt;
    metrics?.requestsInFlight.dec();
    metrics?.observe(
      exchange.tenant?.id ?? 'unknown',
      exchange.route?.config.id ?? 'none',
      exchange.res.headersSent ? status : 0,
      elapsedMs / 1000,
      exchange.upstreamMs === undefined ? undefined : exchange.upstreamMs / 1000,
      exchange.errorCode,
    );
    accessLog?.record(exchange, status, elapsedMs);
    RequestTracing.end(exchange.span, exchange.res.headersSent ? status : 0, exchange.errorCode);
  };

  function fail(
    exchange: GatewayExchange,
    status: number,
    code: string,
    message: string,
    headers?: Record<string, string>,
  ) {
    exchange.errorCode = code;
    writeError(exchange.res, status, code, message, headers);
  }

  function authFailed(exchange: GatewayExchange, result: Exclude<AuthResult, { ok: true }>): void {
    const headers: Record<string, string> = { 'www-authenticate': result.challenge };
    if (result.retryAfterSeconds !== undefined) headers['retry-after'] = String(result.retryAfterSeconds);
    fail(exchange, result.status, result.code, result.message, headers);
  }

  async function afterAuth(exchange: GatewayExchange): Promise<void> {
    for (const stage of stages) {
      const span = tracing && exchange.span ? tracing.startChild(exchange.span, stage.name) : undefined;
      const pending = stage.run(exchange);
      const result = pending instanceof Promise ? await pending : pending;
      span?.end();
      if (result === 'handled') return;
    }
    await forward(exchange);
  }

  async function forward(exchange: GatewayExchange): Promise<void> {
    const { req, tenant, route } = exchange;
    const origin = route!.origin;
    if (origin === undefined)
      return fail(exchange, 503, 'origin_unavailable', 'the route has no origin configured');
    const lease = origin.upstreams.acquire({
      clientIp: exchange.clientIp,
      path: exchange.path,
      headers: req.headers,
    });
    if (lease === undefined)
      return fail(exchange, 503, 'no_healthy_upstream', 'no origin target is available');

    let path = exchange.path;
    const strip = route!.stripPrefix;
    let strippedPrefix: string | null = null;
    if (
      strip !== null &&
      path.startsWith(strip) &&
      (path.length === strip.length || path.charCodeAt(strip.length) === 47)
    ) {
      path = path.length === strip.length ? '/' : path.slice(strip.length);
      strippedPrefix = strip;
    }
    const address = clientAddresses.resolve(req);
    const headers = upstreamRequestHeaders(req.headers, {
      upstreamHost: lease.target.url.host,
      clientIp: exchange.clientIp,
      peerIp: address.peerIp,
      peerTrusted: address.peerTrusted,
      proto: 'encrypted' in req.socket && req.socket.encrypted ? 'https' : 'http',
      localPort: req.socket.localPort,
      strippedPrefix,
      requestId: exchange.requestId,
      tenantId: tenant!.id,
      routeId: route!.config.id,
      identity: exchange.identity,
    });
    const span =
      tracing && exchange.span
        ? tracing.startUpstreamSpan(exchange.span, req.method, lease.target.url)
        : undefined;
    if (span !== undefined) {
      span.setAttribute('vantageedge.upstream.target', lease.target.id);
      tracing!.inject(span, headers);
    }
    const contentLength = singleHeader(req.headers['content-length']);
    const chunked = req.headers['transfer-encoding'] !== undefined;
    const failure = await proxyRequest(exchange, {
      lease,
      origin,
      pathAndQuery: path + exchange.query,
      headers,
      hasBody: chunked || (contentLength !== undefined && contentLength !== '0'),
      unknownLengthLimit: chunked ? maxBodyBytes : undefined,
      cookieDomains,
    });
    RequestTracing.end(span, failure === undefined ? exchange.res.statusCode : 0, failure?.code);
    if (failure !== undefined) fail(exchange, failure.status, failure.code, failure.message);
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const incomingId = singleHeader(req.headers['x-request-id']);
    const requestId = incomingId !== undefined && REQUEST_ID.test(incomingId) ? incomingId : randomUUID();
    const exchange = new GatewayExchange(req, res, requestId, clientAddresses.resolve(req).clientIp);
    const tracked = res as ResponseWithExchange;
    tracked[EXCHANGE] = exchange;
    tracked[FINISH] = finish;
    res.once('close', onResponseClose);
    metrics?.requestsInFlight.inc();
    res.setHeader('x-request-id', requestId);
    if (tracing) {
      exchange.span = tracing.startServerSpan(req);
      exchange.traceId = exchange.span.spanContext().traceId;
    } else {
      exchange.traceId = traceIdFromHeader(req.headers.traceparent);
    }

    const tenant = options.store.resolveHost(singleHeader(req.headers.host));
    if (tenant === undefined) {
      fail(exchange, 404, 'tenant_not_found', 'no tenant is served on this host');
      return;
    }
    exchange.tenant = tenant;
    exchange.span?.setAttribute('vantageedge.tenant.id', tenant.id);

    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    const normalized = normalizePath(queryAt < 0 ? url : url.slice(0, queryAt), encodedSlashes);
    if (!normalized.ok) {
      fail(exchange, 400, 'invalid_path', `the request path is not acceptable (${normalized.reason})`);
      return;
    }
    exchange.path = normalized.path;
    exchange.query = queryAt < 0 ? '' : url.slice(queryAt);
    if (queryAt >= 0 && !isAcceptableQuery(exchange.query)) {
      fail(
        exchange,
        400,
        'invalid_query',
        'the query string contains a character that must be percent-encoded',
      );
      return;
    }

    const route = tenant.router.resolve(req.method ?? 'GET', normalized.path);
    if (route === undefined) {
      fail(exchange, 404, 'route_not_found', 'no route matches this method and path');
      return;
    }
    if (route instanceof AmbiguousPath) {
      fail(
        exchange,
        403,
        'ambiguous_path',
        'an origin could read this path as the path of a differently protected route; use its exact spelling',
      );
      return;
    }
    exchange.route = route;
    exchange.span?.setAttribute('vantageedge.route.id', route.config.id);
    RequestTracing.routed(exchange.span, req.method, route.config.path_pattern);

    const contentLength = singleHeader(req.headers['content-length']);
    if (contentLength !== undefined && Number(contentLength) > maxBodyBytes) {
      fail(exchange, 413, 'payload_too_large', `the request body exceeds ${maxBodyBytes} bytes`);
      return;
    }

    const authSpan = tracing && exchange.span ? tracing.startChild(exchange.span, 'auth') : undefined;
    const auth = authenticator.authenticate(tenant, route, req.headers, exchange.clientIp);
    if (auth instanceof Promise) {
      auth
        .then(
          (result) => {
            authSpan?.end();
            if (!result.ok) return authFailed(exchange, result);
            exchange.identity = result.identity;
            return afterAuth(exchange);
          },
          (error: unknown) => {
            authSpan?.end();
            internalError(exchange, error);
          },
        )
        .catch((error: unknown) => internalError(exchange, error));
      return;
    }
    authSpan?.end();
    if (!auth.ok) {
      authFailed(exchange, auth);
      return;
    }
    exchange.identity = auth.identity;
    afterAuth(exchange).catch((error: unknown) => internalError(exchange, error));
  }

  function internalError(exchange: GatewayExchange, error: unknown): void {
    exchange.span?.recordException(error instanceof Error ? error : String(error));
    fail(exchange, 500, 'internal_error', 'the gateway failed to handle the request');
  }

  return handle;
}

/**
 * The same pipeline as express middleware: requests for hosts that are no tenant's go to `next()`,
 * so the gateway can share an express app with other routes.
 */
export function createGatewayMiddleware(
  options: GatewayHandlerOptions,
): (req: IncomingMessage, res: ServerResponse, next: () => void) => void {
  const handle = createGatewayHandler(options);
  return (req, res, next) => {
    if (options.store.resolveHost(singleHeader(req.headers.host)) === undefined) {
      next();
      return;
    }
    handle(req, res);
  };
}
