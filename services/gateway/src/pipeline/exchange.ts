import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Span } from '@opentelemetry/api';
import { ANONYMOUS, type Identity } from '../auth/identity.js';
import type { CacheEntry } from '../cache/cache-entry.js';
import type { CacheFill, FillBody } from '../cache/response-cache.js';
import type { CompiledOrigin, CompiledRoute, CompiledTenant } from '../config/compiled-tenant.js';
import type { UpstreamPolicy } from '../forwarding/upstream-policy.js';
import type { ViaEntries } from '../http/via.js';
import { clientProto, connectionProto } from '../proxy/forwarded-headers.js';
import type { CompiledHeaderTransform } from '../transforms/header-transform.js';

/**
 * The typed per-request context every lifecycle step and stage reads and adds to, in order:
 * tenant → route → auth → rate limit → cache → balance → proxy. One object per request with a fixed
 * shape (all fields set in the constructor); a stage that keeps per-request state has a field here.
 */
export class GatewayExchange {
  readonly startedAt = performance.now();
  tenant: CompiledTenant | undefined = undefined;
  route: CompiledRoute | undefined = undefined;
  identity: Identity = ANONYMOUS;
  /** Normalised path (what was matched and what is forwarded, before strip_prefix). */
  path = '';
  /** The raw query string including its leading "?", or ''. */
  query = '';
  /** Set when the gateway itself answered with an error (`client_closed_request`: nothing was answered). */
  errorCode: string | undefined = undefined;
  upstreamTarget: string | undefined = undefined;
  upstreamMs: number | undefined = undefined;
  /** Filled in by the rate-limit and cache stages for the access log ("allowed", "limited", "hit", …). */
  rateLimitOutcome: string | undefined = undefined;
  cacheOutcome: string | undefined = undefined;
  /** The cache stage's right to store this request's origin response (a MISS leader), until used. */
  cacheFill: CacheFill | undefined = undefined;
  /**
   * The client's own conditional headers (If-None-Match, If-Modified-Since) while the cache revalidates
   * a stale entry with its validators instead: a 304 from the origin is answered against them.
   */
  cacheClientConditional: IncomingHttpHeaders | undefined = undefined;
  /**
   * The answer's Vary names Origin because the gateway merged its own in (a CORS route), not because the
   * origin said it: the route's cache key holds Origin already, as the CORS policy reads it.
   */
  varyOriginByGateway = false;
  /** A stale entry the cache serves if the origin fails (stale-if-error), while the request is a MISS. */
  cacheStaleIfError: CacheEntry | undefined = undefined;
  /** The MISS leader's response body being collected for the cache, until complete. */
  cacheFillBody: FillBody | undefined = undefined;
  span: Span | undefined = undefined;
  traceId: string | undefined = undefined;
  /** A CORS preflight matched by the method it announces (Access-Control-Request-Method). */
  corsPreflight = false;
  /** The route's body limit when it has one below the gateway's (chunked bodies are counted). */
  maxBodyBytes: number | undefined = undefined;
  /** The path the origin sees, when rewrite_path changed it (strip_prefix is not applied then). */
  forwardPath: string | undefined = undefined;
  /** The request headers the route's transform set or added: forwarded as the route wrote them. */
  routeRequestHeaders: readonly string[] | undefined = undefined;
  /**
   * The route's response header writes whose values are this request's (client address, request id,
   * consumer): written on every answer of the origin's, also one the cache replays, and never stored.
   */
  perRequestResponseHeaders: CompiledHeaderTransform | undefined = undefined;
  /** The origin the traffic split chose (else the route's own). */
  origin: CompiledOrigin | undefined = undefined;
  /** Tried in order when the chosen origin has no available target (the split's other origins). */
  fallbackOrigins: readonly CompiledOrigin[] | undefined = undefined;
  /** The route's timeouts and retries, when it has any. */
  upstreamPolicy: UpstreamPolicy | undefined = undefined;
  /** False when the exchange closed before its response went out whole (client gone, body cut short). */
  responseComplete = true;
  /**
   * Why the origin's answer was cut after its head went out, when the origin's doing (upstream_timeout:
   * silent past the idle timeout; upstream_error: its connection failed): the access log's error_code,
   * beside the status that went out. A client that left or stopped reading leaves it unset.
   */
  upstreamCutCode: string | undefined = undefined;
  /** Upstream attempts after the first (retries), for the access log. */
  retries = 0;
  /**
   * Times the request went to another connection of the same target because the origin closed the one
   * it was given before answering (not retries: see proxy/proxy-request.ts), for the access log.
   */
  resends = 0;
  /** How an upgraded connection (a WebSocket) ended, for its access-log line written at its end. */
  webSocketClose: WebSocketClose | undefined = undefined;
  /** The tenant and route the access-log line names once the compiled config is let go (forgetCompiledConfig). */
  loggedTenantId: string | undefined = undefined;
  loggedRouteId: string | undefined = undefined;

  /** The socket's address, and whether it is one of the trusted proxies (GATEWAY_TRUSTED_PROXIES). */
  peerIp = '';
  peerTrusted = false;

  /**
   * Lets go of the config version the exchange ran under, keeping the ids its access-log line names: a
   * switched WebSocket's line is written when its connection ends, and an open WebSocket held its whole
   * compiled tenant version (≈ 8 KB a route) for as long as it stayed open, whatever came after — one
   * WebSocket per config change pinned gigabytes.
   */
  forgetCompiledConfig(): void {
    this.loggedTenantId = this.tenant?.id;
    this.loggedRouteId = this.route?.config.id;
    this.tenant = undefined;
    this.route = undefined;
    this.origin = undefined;
    this.fallbackOrigins = undefined;
    this.upstreamPolicy = undefined;
    this.perRequestResponseHeaders = undefined;
    this.cacheFill = undefined;
    this.cacheFillBody = undefined;
    this.cacheStaleIfError = undefined;
  }

  /** The client's scheme as the origin is told it (X-Forwarded-Proto): what `match.scheme` reads. */
  get scheme(): string {
    return clientProto(this.req.headers, connectionProto(this.req), this.peerTrusted);
  }

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly requestId: string,
    readonly clientIp: string,
    /** The Via entries the gateway appends to the requests it forwards (GATEWAY_VIA); none when off. */
    readonly via: ViaEntries | undefined = undefined,
  ) {}
}

/**
 * How a WebSocket ended: the status code of the first close frame either side sent (1005 for one
 * without a code), the gateway's own when it closed the connection, 1006 when a side's connection ended
 * without any; and who sent it.
 */
export interface WebSocketClose {
  readonly code: number;
  readonly by: 'client' | 'origin' | 'gateway';
}

/** Why an exchange (or its attempt at an origin) got no answer out: nginx's 499. */
export const CLIENT_CLOSED_REQUEST = 'client_closed_request';

/**
 * The exchange closed before any answer went out (the client closed its connection or reset its
 * stream): logged and counted as nginx's 499, never as res.statusCode's default 200.
 */
export function closedBeforeAnswer(exchange: GatewayExchange): number {
  exchange.errorCode ??= CLIENT_CLOSED_REQUEST;
  exchange.responseComplete = false;
  return 499;
}
