import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { withoutMethodOverride } from '@vantageedge/shared/gateway-policies/method-override-parameter';
import { singleHeader } from '@vantageedge/shared/http/header-values';
import { answerLastOnConnection, followsLastAnswer } from '@vantageedge/shared/http/last-on-connection';
import { methodRefusal } from '@vantageedge/shared/http/request-method';
import { claimsUnspokenVersion } from '@vantageedge/shared/http/request-version';
import { ClientAddressResolver } from '@vantageedge/shared/net/client-address';
import type { ClientSlots } from '@vantageedge/shared/net/client-slots';
import {
  type EncodedSlashPolicy,
  normalizePath,
  queryBytesEncoded,
  queryRefusal,
} from '@vantageedge/shared/routing/normalize-path';
import {
  AmbiguousPath,
  AmbiguousQuery,
  ambiguousQueryMessage,
} from '@vantageedge/shared/routing/route-matcher';
import type { Authenticator } from '../auth/authenticator.js';
import { FillBudget } from '../cache/fill-budget.js';
import type { CompiledOrigin, CompiledRoute, CompiledTenant } from '../config/compiled-tenant.js';
import type { RoutePipeline } from '../config/gateway-config-store.js';
import {
  createCorsOriginHeadersPolicy,
  createCorsPolicy,
  createCorsVaryPolicy,
  setRouteCorsHeaders,
} from '../cors/cors-stage.js';
import { createFixedResponsePolicy } from '../fixed-response/fixed-response-stage.js';
import { type AttemptOptions, forwardWithPolicy, NO_TARGET } from '../forwarding/forward-with-policy.js';
import { createUpstreamPolicy } from '../forwarding/upstream-policy.js';
import { readAbsoluteForm } from '../http/absolute-form.js';
import { answeredInstead } from '../http/body-bytes.js';
import { DEFAULT_MAX_LOOP_HOPS, LOOP_DETECTED_MESSAGE, platformPasses } from '../http/cdn-loop.js';
import { headerLineCount } from '../http/header-count.js';
import { listenerAnswerOf, recordedByPipeline } from '../http/listener-answers.js';
import { isMisdirected, MISDIRECTED_MESSAGE } from '../http/misdirected-request.js';
import {
  MISSING_HOST_MESSAGE,
  namesConflictingHosts,
  namesMalformedHost,
  omitsRequiredHost,
  requestAuthority,
} from '../http/request-authority.js';
import { doubtfulTransferEncoding, requestBodyFraming } from '../http/request-body.js';
import { schemeRefusal } from '../http/request-scheme.js';
import { ignoredUpgradeOffer } from '../http/upgrade-offer.js';
import type { ViaEntries } from '../http/via.js';
import {
  createIpRulesPolicy,
  IP_DENIED_MESSAGE,
  refusedByIpRulesOfAll,
  refusedByTenantIpRules,
} from '../ip-rules/ip-rules-stage.js';
import { createMaxForwardsPolicy } from '../max-forwards/max-forwards-stage.js';
import type { AccessLog } from '../observability/access-log.js';
import type { GatewayMetrics } from '../observability/gateway-metrics.js';
import { beginRequestTrace, RequestTracing } from '../observability/request-tracing.js';
import { ClientResponseWriter, type ResponseBodySink } from '../proxy/client-response-writer.js';
import { CookieDomainGuard } from '../proxy/cookie-domains.js';
import { type ProxyFailure, type ProxyResult, proxyRequest } from '../proxy/proxy-request.js';
import { createRequestLimitsPolicy } from '../request-limits/request-limits-stage.js';
import { createTrafficSplitPolicy } from '../traffic-split/traffic-split-stage.js';
import {
  createPerRequestResponseHeadersPolicy,
  createRequestTransformPolicy,
  createResponseHeadersPolicy,
} from '../transforms/transform-stages.js';
import type { UpstreamLease } from '../upstream/types.js';
import { acquireTarget } from './acquire-target.js';
import { createAuthPolicy } from './auth-stage.js';
import { failExchange } from './errors.js';
import { CLIENT_CLOSED_REQUEST, GatewayExchange } from './exchange.js';
import { originPath, originRequestHeaders } from './origin-request.js';
import { recordExchange, type UsageSink } from './record-exchange.js';
import type { BodyTap, ResponseHead, RoutePolicy, RouteStage, StageResult } from './stage.js';
import { unknownHostAnswer } from './unknown-host.js';

/**
 * The request lifecycle as a plain node:http `(req, res)` handler, one named function per step, in the
 * order a request passes them:
 *
 *   handleRequest → checkHeaderCount → checkVersion → checkScheme → checkFraming → resolveTenant → checkMethod → normalizeRequestPath → matchRoute
 *   → checkClientAddress (the route's IP rules) → checkLoop → checkDeclaredBodySize
 *   → runRequestStages (the route's other compiled stages: CORS, limits, auth, rate limit, cache, …)
 *   → forwardToOrigin (origin, balance, proxy, retries) → onOriginResponse (the stages' response hooks)
 *   → finishExchange (stage end hooks, metrics, access log, span) when the response is done.
 *
 * The stages are compiled onto each route when a snapshot is applied (see stage.ts); per request the
 * handler only walks the route's arrays. A stage that returns synchronously costs no promise.
 */

export interface TenantResolver {
  resolveHost(hostHeader: string | undefined): CompiledTenant | undefined;
}

/** Where the handler installs its route policies: the config store compiles them onto every route. */
export interface PipelineTarget extends TenantResolver {
  setPipeline(pipeline: RoutePipeline): void;
}

export interface GatewayHandlerOptions {
  store: PipelineTarget;
  authenticator: Authenticator;
  maxBodyBytes: number;
  /** GATEWAY_MAX_HEADERS_COUNT: a request with more header lines is refused (431); default no bound. */
  maxHeaders?: number;
  encodedSlashes?: EncodedSlashPolicy;
  /** PLATFORM_BASE_DOMAINS: an origin's cookie may never be scoped to one of them (or a parent). */
  baseDomains?: readonly string[];
  /** CIDR ranges of the proxies in front of the gateway (GATEWAY_TRUSTED_PROXIES); default none. */
  trustedProxies?: readonly string[];
  /**
   * Route policies that need the replica's stores, in order (rate limit, then cache); the handler
   * places them among its own policies (see routePolicies).
   */
  stages?: readonly RoutePolicy[];
  metrics?: GatewayMetrics;
  accessLog?: AccessLog;
  tracing?: RequestTracing;
  /** Counts every answered request for GET /api/v1/usage. */
  usage?: UsageSink;
  /**
   * Bytes that retryable requests' bodies, read so they can be sent again, may hold together
   * (GATEWAY_RETRY_BUFFER_BYTES; a quarter per tenant); default 64 MiB.
   */
  retryBufferBytes?: number;
  /** GATEWAY_MAX_LOOP_HOPS: a request that passed the platform this often already is refused (508). */
  maxLoopHops?: number;
  /** GATEWAY_VIA: the Via entries appended to the requests forwarded to origins; default none. */
  via?: ViaEntries | undefined;
  /**
   * Whether every tenant's config was read (the config plane caught up once); until then a host no tenant
   * holds is answered 503 config_loading, not 404 (see unknownHostAnswer). Default: always.
   */
  configLoaded?: (() => boolean) | undefined;
}

export type { UsageSink } from './record-exchange.js';

export type GatewayHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** Everything the lifecycle functions need that is the same for every request. */
interface PipelineContext {
  readonly store: TenantResolver;
  readonly maxBodyBytes: number;
  readonly maxHeaders: number;
  readonly encodedSlashes: EncodedSlashPolicy;
  readonly clientAddresses: ClientAddressResolver;
  readonly cookieDomains: CookieDomainGuard;
  readonly metrics: GatewayMetrics | undefined;
  readonly accessLog: AccessLog | undefined;
  readonly usage: UsageSink | undefined;
  /** Only when tracing is on. */
  readonly tracing: RequestTracing | undefined;
  /** What retryable requests' buffered bodies hold, per tenant and in all. */
  readonly retryBodies: FillBudget;
  readonly maxLoopHops: number;
  readonly via: ViaEntries | undefined;
  readonly configLoaded: () => boolean;
}

const DEFAULT_RETRY_BUFFER_BYTES = 64 * 1024 * 1024;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const EXCHANGE = Symbol('vantageedge.exchange');
const CONTEXT = Symbol('vantageedge.pipeline');
type TrackedResponse = ServerResponse & { [EXCHANGE]?: GatewayExchange; [CONTEXT]?: PipelineContext };

/**
 * The pipeline: every route policy (routePolicies), compiled onto every route of the store (now and
 * for every snapshot applied later).
 */
export function createGatewayHandler(options: GatewayHandlerOptions): GatewayHandler {
  const policies = routePolicies(options);
  options.store.setPipeline({ policies, metrics: options.metrics });
  const context: PipelineContext = {
    store: options.store,
    maxBodyBytes: options.maxBodyBytes,
    maxHeaders: options.maxHeaders ?? Number.POSITIVE_INFINITY,
    encodedSlashes: options.encodedSlashes ?? 'reject',
    clientAddresses: new ClientAddressResolver(options.trustedProxies ?? []),
    cookieDomains: new CookieDomainGuard(options.baseDomains ?? [], options.store),
    metrics: options.metrics,
    accessLog: options.accessLog,
    usage: options.usage,
    tracing: options.tracing?.enabled ? options.tracing : undefined,
    retryBodies: new FillBudget(options.retryBufferBytes ?? DEFAULT_RETRY_BUFFER_BYTES),
    maxLoopHops: options.maxLoopHops ?? DEFAULT_MAX_LOOP_HOPS,
    via: options.via,
    configLoaded: options.configLoaded ?? (() => true),
  };
  return (req, res) => {
    try {
      handleRequest(context, req, res);
    } catch {
      // Last resort: an exception out of a request listener is an uncaught exception, which stops the
      // replica (every tenant's traffic) for one client's request.
      res.destroy();
    }
  };
}

/**
 * Every route policy, in pipeline order. IP rules first (a refused address is told nothing about the
 * route, checkClientAddress), then CORS (a preflight is answered before authentication, and every later
 * refusal carries the route's CORS headers, as the origin's answers do), the route's limits,
 * authentication, the answers that need no origin
 * (a route's fixed response, then TRACE and OPTIONS whose Max-Forwards is spent),
 * request transforms (before the cache, which keys on what the origin receives), the response headers
 * with the request's own values (their hook runs after the cache's, which never stores them), the
 * traffic split (before the cache, which keys on the origin it chose, and reading the transformed
 * headers), the given stages (rate limit, cache), then response headers (its response hook runs before
 * the cache's, so the cache stores transformed headers) with the origin's CORS fields dropped before them
 * and Vary: Origin kept after them on a CORS route, and how the origin is called (timeouts and retries).
 */
function routePolicies(options: GatewayHandlerOptions): RoutePolicy[] {
  return [
    createIpRulesPolicy(),
    createCorsPolicy(),
    createRequestLimitsPolicy(options.maxBodyBytes),
    createAuthPolicy(options.authenticator),
    createFixedResponsePolicy(),
    createMaxForwardsPolicy(),
    createRequestTransformPolicy(),
    createPerRequestResponseHeadersPolicy(),
    createTrafficSplitPolicy(),
    ...(options.stages ?? []),
    createCorsVaryPolicy(),
    createResponseHeadersPolicy(),
    createCorsOriginHeadersPolicy(),
    createUpstreamPolicy(),
  ];
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
    if (options.store.resolveHost(requestAuthority(req.headers)) === undefined) {
      next();
      return;
    }
    handle(req, res);
  };
}

// ---- the lifecycle, in order ----

function handleRequest(context: PipelineContext, req: IncomingMessage, res: ServerResponse): void {
  // Pipelined behind a request refused for its framing: these bytes may be that request's body.
  if (followsLastAnswer(req)) return;
  if (ignoredUpgradeOffer(req)) answerLastOnConnection(req, res);
  const incomingId = singleHeader(req.headers['x-request-id']);
  const requestId = incomingId !== undefined && REQUEST_ID.test(incomingId) ? incomingId : randomUUID();
  const address = context.clientAddresses.resolve(req);
  const exchange = new GatewayExchange(req, res, requestId, address.clientIp, context.via);
  exchange.peerIp = address.peerIp;
  exchange.peerTrusted = address.peerTrusted;
  const tracked = res as TrackedResponse;
  tracked[EXCHANGE] = exchange;
  tracked[CONTEXT] = context;
  recordedByPipeline(res);
  res.on('close', onResponseClose); // emitted once per response
  context.metrics?.requestsInFlight.inc();
  res.setHeader('x-request-id', requestId);
  beginRequestTrace(context.tracing, exchange);
  try {
    if (
      checkHeaderCount(context, exchange) &&
      checkVersion(exchange) &&
      checkScheme(exchange) &&
      checkFraming(exchange) &&
      resolveTenant(context, exchange) &&
      checkMethod(exchange) &&
      normalizeRequestPath(context, exchange) &&
      matchRoute(exchange) &&
      checkClientAddress(context, exchange) &&
      checkLoop(context, exchange)
    ) {
      if (checkDeclaredBodySize(context, exchange)) runRequestStages(context, exchange, 0);
    }
  } catch (error) {
    internalError(exchange, error);
  }
}

/**
 * More header lines than GATEWAY_MAX_HEADERS_COUNT (header-count.ts): 431, never forwarded half-read.
 * Checked before the host is read, so it is recorded without a tenant, as every refusal before that.
 */
function checkHeaderCount(context: PipelineContext, exchange: GatewayExchange): boolean {
  const { req, res } = exchange;
  if (headerLineCount(req) <= context.maxHeaders) return true;
  // HTTP/1.1: the connection is not reused after a refused head (HTTP/2 only ends the stream).
  if (req.httpVersionMajor === 1) res.shouldKeepAlive = false;
  failExchange(
    exchange,
    431,
    'too_many_headers',
    `a request may have at most ${context.maxHeaders} header lines`,
  );
  return false;
}

/**
 * An HTTP/1.x request line that claims another version (request-version.ts): 400, and the connection
 * closes without handling anything sent after the request, whose framing was read by the other rules.
 */
function checkVersion(exchange: GatewayExchange): boolean {
  if (!claimsUnspokenVersion(exchange.req)) return true;
  answerLastOnConnection(exchange.req, exchange.res);
  failExchange(
    exchange,
    400,
    'invalid_http_version',
    `the request line must name HTTP/1.1 or HTTP/1.0 (it names HTTP/${exchange.req.httpVersion})`,
  );
  return false;
}

/** An HTTP/2 `:scheme` its connection does not carry (request-scheme.ts): 400. */
function checkScheme(exchange: GatewayExchange): boolean {
  const refused = schemeRefusal(exchange.req);
  if (refused === undefined) return true;
  failExchange(exchange, 400, 'invalid_scheme', refused);
  return false;
}

/**
 * A Transfer-Encoding that leaves the end of the body in doubt (request-body.ts): 400, and the connection
 * closes without handling anything sent after the request.
 */
function checkFraming(exchange: GatewayExchange): boolean {
  const doubt = doubtfulTransferEncoding(exchange.req);
  if (doubt === undefined) return true;
  answerLastOnConnection(exchange.req, exchange.res);
  failExchange(
    exchange,
    400,
    'invalid_transfer_encoding',
    doubt === 'http/1.0'
      ? 'an HTTP/1.0 request cannot have a Transfer-Encoding header'
      : 'the Transfer-Encoding header must be chunked alone',
  );
  return false;
}

/**
 * Host → tenant (an absolute-form target read as the request it names first: absolute-form.ts). 404 when
 * no tenant is served on this host (503 while the replica is still loading the tenants' config: see
 * unknownHostAnswer); 400 when the request names two hosts (its target another than Host included) or a
 * malformed one, or (HTTP/1.1) none; 421 when the host is not one the TLS connection's certificate covers.
 */
function resolveTenant(context: PipelineContext, exchange: GatewayExchange): boolean {
  if (!readAbsoluteForm(exchange.req) || namesConflictingHosts(exchange.req)) {
    refuseConflictingHosts(exchange);
    return false;
  }
  if (omitsRequiredHost(exchange.req)) {
    failExchange(exchange, 400, 'invalid_host', MISSING_HOST_MESSAGE);
    return false;
  }
  const tenant = context.store.resolveHost(requestAuthority(exchange.req.headers));
  if (tenant === undefined) {
    if (namesMalformedHost(exchange.req.headers))
      failExchange(exchange, 400, 'invalid_host', 'the Host header is not a host name with an optional port');
    else {
      const answer = unknownHostAnswer(context.configLoaded());
      failExchange(exchange, answer.status, answer.code, answer.message, answer.headers);
    }
    return false;
  }
  if (isMisdirected(exchange.req, tenant.id)) {
    failExchange(exchange, 421, 'misdirected_request', MISDIRECTED_MESSAGE);
    return false;
  }
  exchange.tenant = tenant;
  exchange.span?.setAttribute('vantageedge.tenant.id', tenant.id);
  return true;
}

/**
 * A method an origin may read as another one (see hasLowerCaseLetters), or one HTTP/1.1 clients cannot
 * send (see isUnknownMethod): 400.
 */
function checkMethod(exchange: GatewayExchange): boolean {
  const refusal = methodRefusal(exchange.req.method ?? 'GET');
  if (refusal === undefined) return true;
  failExchange(exchange, 400, 'invalid_method', refusal);
  return false;
}

/** One spelling per path (dot segments, duplicate slashes, encoded slashes per policy). 400 otherwise. */
function normalizeRequestPath(context: PipelineContext, exchange: GatewayExchange): boolean {
  const url = exchange.req.url ?? '/';
  const queryAt = url.indexOf('?');
  const normalized = normalizePath(queryAt < 0 ? url : url.slice(0, queryAt), context.encodedSlashes);
  if (!normalized.ok) {
    failExchange(exchange, 400, 'invalid_path', `the request path is not acceptable (${normalized.reason})`);
    return false;
  }
  exchange.path = normalized.path;
  if (queryAt < 0) return true;
  const query = url.slice(queryAt);
  const refusal = queryRefusal(query);
  if (refusal !== undefined) {
    failExchange(exchange, 400, 'invalid_query', refusal);
    return false;
  }
  exchange.query = withoutMethodOverride(queryBytesEncoded(query));
  return true;
}

/**
 * Method + path (+ the routes' hosts / headers / query conditions) → the tenant's route (with its
 * compiled stages). 404 when none matches; 403 when another reading of the path (case, trailing slash,
 * ;params), or of a repeated query parameter (its first or last value), would reach a differently
 * protected route; 403 `ip_denied` instead to an address the IP rules refuse there (the tenant's, or
 * those of every route the readings reach). A CORS preflight is matched by the method it
 * announces, so the route with the CORS policy answers it.
 */
function matchRoute(exchange: GatewayExchange): boolean {
  const method = exchange.req.method ?? 'GET';
  const router = exchange.tenant!.router;
  let route = method === 'OPTIONS' ? matchPreflight(exchange) : undefined;
  route ??= router.resolve(method, exchange.path, { facts: exchange, preflight: false });
  if (route === undefined) {
    // A refused address learns nothing of the tenant's paths (checkClientAddress).
    if (refusedByTenantIpRules(exchange.tenant!, exchange.clientIp))
      failExchange(exchange, 403, 'ip_denied', IP_DENIED_MESSAGE);
    else failExchange(exchange, 404, 'route_not_found', 'no route matches this method and path');
    return false;
  }
  if (route instanceof AmbiguousPath && refusedByIpRulesOfAll(route.routes, exchange.clientIp)) {
    failExchange(exchange, 403, 'ip_denied', IP_DENIED_MESSAGE);
    return false;
  }
  if (route instanceof AmbiguousQuery) {
    failExchange(exchange, 403, 'ambiguous_query', ambiguousQueryMessage(route.parameter));
    return false;
  }
  if (route instanceof AmbiguousPath) {
    failExchange(
      exchange,
      403,
      'ambiguous_path',
      'an origin could read this path as the path of a differently protected route; use its exact spelling',
    );
    return false;
  }
  exchange.route = route;
  if (exchange.span !== undefined) {
    exchange.span.setAttribute('vantageedge.route.id', route.config.id);
    RequestTracing.routed(exchange.span, exchange.req.method, route.config.path_pattern);
  }
  return true;
}

/**
 * The route's IP rules (RouteStages.clientAddress), before the refusals that depend on the route (a
 * loop, a body over the limit, the route's own limits): a refused address is answered 403 `ip_denied`
 * whatever it sends, as on a path no route takes (matchRoute), so it cannot tell the tenant's routes
 * from paths without one.
 */
function checkClientAddress(context: PipelineContext, exchange: GatewayExchange): boolean {
  const stage = exchange.route!.stages.clientAddress;
  if (stage === undefined) return true;
  // The IP rules stage answers synchronously.
  const result =
    context.tracing === undefined
      ? stage.onRequest!(exchange)
      : tracedStage(context.tracing, exchange, stage);
  return result === 'continue';
}

/**
 * A request that has come back through the platform GATEWAY_MAX_LOOP_HOPS times (CDN-Loop) is
 * answered 508 before its route's stages: each pass would cost every stage and an origin call again.
 * After the route match only so that the access log names the looping route.
 */
function checkLoop(context: PipelineContext, exchange: GatewayExchange): boolean {
  if (platformPasses(exchange.req.headers) < context.maxLoopHops) return true;
  setRouteCorsHeaders(exchange);
  failExchange(exchange, 508, 'loop_detected', LOOP_DETECTED_MESSAGE);
  return false;
}

/**
 * The CORS route a browser's preflight is for (OPTIONS + Origin + Access-Control-Request-Method): the
 * route the announced method reaches with header conditions skipped (the preflight carries none of the
 * actual request's headers), or, when that one has no CORS, the route it reaches with the preflight's
 * own headers (where the actual request goes without the headers that route's conditions ask for).
 */
function matchPreflight(exchange: GatewayExchange): CompiledRoute | AmbiguousPath<CompiledRoute> | undefined {
  const { headers } = exchange.req;
  const announced = singleHeader(headers['access-control-request-method']);
  if (announced === undefined || headers.origin === undefined) return undefined;
  for (const preflight of PREFLIGHT_READINGS) {
    const route = exchange.tenant!.router.resolve(announced.toUpperCase(), exchange.path, {
      facts: exchange,
      preflight,
    });
    if (route !== undefined && !(route instanceof AmbiguousPath) && (route.config.cors ?? null) !== null) {
      exchange.corsPreflight = true;
      return route;
    }
  }
  return undefined;
}

/** Header conditions skipped, then tested on the preflight's own headers. */
const PREFLIGHT_READINGS = [true, false] as const;

/** A declared Content-Length over the limit is refused before anything else runs (413). */
function checkDeclaredBodySize(context: PipelineContext, exchange: GatewayExchange): boolean {
  const contentLength = singleHeader(exchange.req.headers['content-length']);
  if (contentLength !== undefined && Number(contentLength) > context.maxBodyBytes) {
    setRouteCorsHeaders(exchange);
    failExchange(
      exchange,
      413,
      'payload_too_large',
      `the request body exceeds ${context.maxBodyBytes} bytes`,
    );
    return false;
  }
  return true;
}

/**
 * The route's request stages after its IP rules (checkClientAddress) from `from` on, synchronously as
 * long as they answer synchronously; a stage that returns a promise suspends the walk, which resumes
 * after it with the next stage.
 */
function runRequestStages(context: PipelineContext, exchange: GatewayExchange, from: number): void {
  const stages = exchange.route!.stages.afterClientAddress;
  if (from === 0 && context.tracing !== undefined) traceAnonymousAuth(context.tracing, exchange);
  for (let i = from; i < stages.length; i++) {
    const stage = stages[i]!;
    const result =
      context.tracing === undefined
        ? stage.onRequest!(exchange)
        : tracedStage(context.tracing, exchange, stage);
    if (result === 'continue') continue;
    if (result === 'handled') return;
    result.then(
      (settled) => resumeRequestStages(context, exchange, settled, i + 1),
      (error: unknown) => internalError(exchange, error),
    );
    return;
  }
  forwardToOrigin(context, exchange).catch((error: unknown) => internalError(exchange, error));
}

function resumeRequestStages(
  context: PipelineContext,
  exchange: GatewayExchange,
  result: StageResult,
  next: number,
): void {
  if (result === 'handled') return;
  if (exchange.res.destroyed) {
    // The client left while the stage waited (a rate limit's Redis round trip, a key set being
    // fetched): the exchange is over, nothing more runs and nothing is sent. Its request may be cut
    // short (node ends the body of an HTTP/2 stream reset before its END_STREAM as if it were whole),
    // and an upstream exchange would never learn its client is gone: its response closed already.
    // What the resumed stage took for the request (the cache's fill) is given back: the end hooks
    // ran when the client left, before it took it.
    runEndHooks(exchange);
    return;
  }
  try {
    runRequestStages(context, exchange, next);
  } catch (error) {
    internalError(exchange, error);
  }
}

/**
 * Balance (pick a target), build the upstream request, proxy it; 503/502/504 when that fails. The
 * origin is the traffic split's choice or the route's; a route with timeouts or retries is forwarded
 * with them (forwarding/forward-with-policy.ts), any other exactly once. Once a split route has fallen
 * back to another origin (exchange.origin), every attempt (send, timeouts, retries) is that origin's.
 *
 * Within the tenant's bound on requests in flight to its origins (503 tenant_upstream_limit past it,
 * before any origin): the request counts from its first attempt until its last exchange with the origin
 * ended (answered, failed or cut), retries and their backoff included.
 */
async function forwardToOrigin(context: PipelineContext, exchange: GatewayExchange): Promise<void> {
  const origin = exchange.origin ?? exchange.route!.origin;
  if (origin === undefined) {
    failExchange(exchange, 503, 'origin_unavailable', 'the route has no origin configured');
    return;
  }
  const upstreamRequests = exchange.tenant!.upstreamRequests;
  if (!upstreamRequests.tryStart()) {
    refuseOverUpstreamLimit(context, exchange);
    return;
  }
  try {
    const policy = exchange.upstreamPolicy;
    if (policy !== undefined) {
      const failure = await forwardWithPolicy(
        exchange,
        policy,
        {
          acquire: (avoid) => acquireTarget(exchange, exchange.origin ?? origin, avoid),
          send: (lease, options) =>
            sendToTarget(context, exchange, exchange.origin ?? origin, lease, options),
        },
        context.retryBodies,
      );
      if (failure === NO_TARGET) {
        originFailed(exchange, 503, 'no_healthy_upstream', 'no origin target is available');
      } else if (failure !== undefined) {
        originFailed(exchange, failure.status, failure.code, failure.message, failure.headers);
      }
      return;
    }
    const lease = acquireTarget(exchange, origin, undefined);
    if (lease === undefined) {
      originFailed(exchange, 503, 'no_healthy_upstream', 'no origin target is available');
      return;
    }
    const failure = await sendToTarget(context, exchange, exchange.origin ?? origin, lease, undefined);
    if (failure !== undefined && !('retryStatus' in failure)) {
      originFailed(exchange, failure.status, failure.code, failure.message, failure.headers);
    }
  } finally {
    upstreamRequests.end();
  }
}

/** Retry-After of a request refused because its tenant has its limit of requests in flight to origins. */
const UPSTREAM_LIMIT_RETRY_AFTER = { 'retry-after': '1' };

/** The tenant has GATEWAY_MAX_UPSTREAM_REQUESTS_PER_TENANT requests in flight to its origins: 503. */
function refuseOverUpstreamLimit(context: PipelineContext, exchange: GatewayExchange): void {
  const tenant = exchange.tenant!;
  context.metrics?.countUpstreamLimitRefusal(tenant.id);
  failExchange(
    exchange,
    503,
    'tenant_upstream_limit',
    `the tenant has its limit of ${tenant.upstreamRequests.limit} requests in flight to its origins on this gateway; try again later`,
    UPSTREAM_LIMIT_RETRY_AFTER,
  );
}

/**
 * One upstream attempt, within the client's share of the target's connections (429
 * client_upstream_limit past it, before the origin): the attempt counts until its exchange ended.
 * Not an async function: without a share the attempt's own promise is returned as it is, no promise
 * and no microtask turns more per request. Callers await it inside async functions, where an error
 * thrown before the attempt starts fails the forwarding as a rejection would.
 */
function sendToTarget(
  context: PipelineContext,
  exchange: GatewayExchange,
  origin: CompiledOrigin,
  lease: UpstreamLease,
  options: AttemptOptions | undefined,
): Promise<ProxyResult> {
  const share = lease.target.clientSlots;
  // Counted by client address (an IPv6 one by its /64); a trusted proxy's own address holds no share.
  const client = share?.clientOf(exchange.clientIp);
  if (share === undefined || client === undefined) {
    return proxyAttempt(context, exchange, origin, lease, options);
  }
  return sendWithinShare(context, exchange, origin, lease, options, share, client);
}

async function sendWithinShare(
  context: PipelineContext,
  exchange: GatewayExchange,
  origin: CompiledOrigin,
  lease: UpstreamLease,
  options: AttemptOptions | undefined,
  share: ClientSlots,
  client: string,
): Promise<ProxyResult> {
  if (!share.take(client)) {
    lease.release(NOT_SENT);
    context.metrics?.countClientUpstreamLimitRefusal(exchange.tenant!.id);
    return overClientShare(share.limit);
  }
  try {
    return await proxyAttempt(context, exchange, origin, lease, options);
  } finally {
    share.release(client);
  }
}

/** Refused before the origin: says nothing about the target (a half-open probe slot is given back). */
const NOT_SENT = { kind: 'cancelled' } as const;

function overClientShare(limit: number): ProxyFailure {
  return {
    status: 429,
    code: 'client_upstream_limit',
    message: `this client has its share of ${limit} requests in flight to the origin; try again later`,
    outcome: NOT_SENT,
    headers: UPSTREAM_LIMIT_RETRY_AFTER,
  };
}

/**
 * The request as the origin sees it, through the target's pool. `origin` is the one the lease's target
 * belongs to; its timeout_seconds applies where the route sets none.
 */
function proxyAttempt(
  context: PipelineContext,
  exchange: GatewayExchange,
  origin: CompiledOrigin,
  lease: UpstreamLease,
  options: AttemptOptions | undefined,
): Promise<ProxyResult> {
  const { req } = exchange;
  const { path, stripped } = originPath(exchange);
  const headers = originRequestHeaders(exchange, lease, stripped);
  const tracing = context.tracing;
  const span =
    tracing && exchange.span
      ? tracing.startUpstreamSpan(exchange.span, req.method, lease.target.url, exchange.retries)
      : undefined;
  if (span !== undefined) {
    span.setAttribute('vantageedge.upstream.target', lease.target.label);
    tracing!.inject(span, headers);
  }
  const bodyFraming = requestBodyFraming(req);
  const connectMs = options?.connectMs;
  const result = proxyRequest(exchange, {
    lease,
    origin,
    pathAndQuery: path + exchange.query,
    headers,
    hasBody: bodyFraming !== 'none',
    unknownLengthLimit:
      bodyFraming === 'unknown' ? (exchange.maxBodyBytes ?? context.maxBodyBytes) : undefined,
    replayedBody: options?.replayedBody,
    bodyReadAlready: options?.bodyReadAlready,
    onAnswered: options?.onAnswered,
    dispatcher: connectMs === undefined ? undefined : lease.target.dispatcherWithConnectTimeout?.(connectMs),
    headersTimeoutMs: options?.headersTimeoutMs ?? origin.timeoutMs,
    bodyTimeoutMs: options?.bodyTimeoutMs ?? origin.timeoutMs,
    exactHeadersTimeout: options?.headersTimeoutMs !== undefined,
    exactBodyTimeout: options?.bodyTimeoutMs !== undefined,
    retryOnStatus: options?.retryOnStatus,
    resetRetried: options?.resetRetried,
    resends: context.metrics,
    cookieDomains: context.cookieDomains,
    onResponse: onOriginResponse,
  });
  if (span === undefined) return result;
  return result.then((outcome) => {
    RequestTracing.endUpstream(span, ...attemptOutcome(exchange, outcome));
    return outcome;
  });
}

/**
 * What an attempt's CLIENT span ends with: the status the origin answered (the one the client got, or
 * one dropped for a retry), else no status and why none came. A client that left before the head went
 * out got nothing: res.statusCode is then only its default, 200.
 */
function attemptOutcome(
  exchange: GatewayExchange,
  result: ProxyResult,
): [status: number, errorType?: string] {
  if (result === undefined) {
    const { res } = exchange;
    return res.headersSent ? [res.statusCode] : [0, CLIENT_CLOSED_REQUEST];
  }
  if ('retryStatus' in result) return [result.retryStatus];
  return [0, result.code];
}

/**
 * The origin gave no response (unreachable, timed out, its breaker open): a stage may answer instead
 * (the cache's stale-if-error), else the gateway's error.
 */
function originFailed(
  exchange: GatewayExchange,
  status: number,
  code: string,
  message: string,
  headers?: Readonly<Record<string, string>>,
): void {
  for (const stage of exchange.route!.stages.all) {
    if (stage.onOriginFailure?.(exchange, status) === true) return;
  }
  failExchange(exchange, status, code, message, headers);
}

/**
 * The origin answered: the route's response hooks run (reverse order), then the body streams to the
 * client (the head goes out with its first byte) through the taps of stages that asked to see it.
 */
function onOriginResponse(exchange: GatewayExchange, head: ResponseHead): ResponseBodySink {
  const { res } = exchange;
  const hooks = exchange.route!.stages.response;
  let taps: BodyTap[] | undefined;
  for (const stage of hooks) {
    const tap = stage.onResponse!(exchange, head);
    if (tap === undefined) continue;
    if (taps === undefined) taps = [tap];
    else taps.push(tap);
  }
  return new ClientResponseWriter(res, head.statusCode, head.headers, taps, head.checkedHeaders);
}

/** Runs once per response, when the socket is done with it (finished or aborted). */
function onResponseClose(this: TrackedResponse): void {
  const exchange = this[EXCHANGE];
  const context = this[CONTEXT];
  if (exchange !== undefined && context !== undefined) finishExchange(context, exchange);
}

/** The stages' end hooks, then the metrics, the access-log line and the server span. */
function finishExchange(context: PipelineContext, exchange: GatewayExchange): void {
  const { res } = exchange;
  runEndHooks(exchange);
  // The listener answered instead (the request's body malformed or late): what its client got.
  const listenerAnswer = listenerAnswerOf(res);
  if (listenerAnswer !== undefined) {
    exchange.errorCode = listenerAnswer.code;
    answeredInstead(res, listenerAnswer.bodyBytes);
  } else if (!res.writableFinished) exchange.responseComplete = false; // cut short: the client left, or the origin
  context.metrics?.requestsInFlight.dec();
  recordExchange(exchange, listenerAnswer?.status ?? (res.headersSent ? res.statusCode : 0), context);
}

/** The route's stages release their per-request state (each end hook may run more than once). */
function runEndHooks(exchange: GatewayExchange): void {
  for (const stage of exchange.route?.stages.end ?? []) {
    try {
      stage.onEnd!(exchange);
    } catch {
      // A stage's cleanup must not keep the others, the metrics or the log line from running.
    }
  }
}

// ---- helpers ----

function refuseConflictingHosts(exchange: GatewayExchange): void {
  // HTTP/1.1: the client's framing is not to be trusted further; the connection is not reused.
  answerLastOnConnection(exchange.req, exchange.res);
  failExchange(exchange, 400, 'invalid_host', 'the request names more than one host');
}

function internalError(exchange: GatewayExchange, error: unknown): void {
  exchange.span?.recordException(error instanceof Error ? error : String(error));
  failExchange(exchange, 500, 'internal_error', 'the gateway failed to handle the request');
}

/** A stage inside its own child span (tracing on). */
function tracedStage(
  tracing: RequestTracing,
  exchange: GatewayExchange,
  stage: RouteStage,
): StageResult | Promise<StageResult> {
  if (exchange.span === undefined) return stage.onRequest!(exchange);
  const span = tracing.startChild(exchange.span, stage.name);
  let result: StageResult | Promise<StageResult>;
  try {
    result = stage.onRequest!(exchange);
  } catch (error) {
    span.end();
    throw error;
  }
  if (typeof result === 'string') {
    span.end();
    return result;
  }
  return result.finally(() => span.end());
}

/** A public route has no auth stage; with tracing on its (anonymous) auth decision still gets a span. */
function traceAnonymousAuth(tracing: RequestTracing, exchange: GatewayExchange): void {
  if (exchange.span === undefined || exchange.route!.authMode !== 'public') return;
  tracing.startChild(exchange.span, 'auth').end();
}
