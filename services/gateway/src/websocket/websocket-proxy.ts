import { randomUUID } from 'node:crypto';
import {
  type ClientRequest,
  request as httpRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';
import { type Duplex, pipeline } from 'node:stream';
import { MAX_ORIGIN_CONNECT_TIMEOUT_MS } from '@vantageedge/shared/domain/gateway-config';
import { isInternalListenerResponse } from '@vantageedge/shared/http/internal-listener';
import { ClientAddressResolver } from '@vantageedge/shared/net/client-address';
import {
  DEFAULT_ORIGIN_BLOCKED_CIDRS,
  OriginAddressPolicy,
} from '@vantageedge/shared/net/origin-address-policy';
import type { Logger } from '@vantageedge/shared/observability/logger';
import type { SlicedWork } from '@vantageedge/shared/process/event-loop-slices';
import {
  type EncodedSlashPolicy,
  isAcceptableQuery,
  normalizePath,
} from '@vantageedge/shared/routing/normalize-path';
import { AmbiguousPath } from '@vantageedge/shared/routing/route-matcher';
import { LRUCache } from 'lru-cache';
import type { buildConnector } from 'undici';
import type { Authenticator } from '../auth/authenticator.js';
import type { CompiledTenant } from '../config/compiled-tenant.js';
import { DEFAULT_MAX_LOOP_HOPS, LOOP_DETECTED_MESSAGE, platformPasses } from '../http/cdn-loop.js';
import { GatewayServerResponse, writeLowerCaseHead } from '../http/gateway-server-response.js';
import { headerLineCount } from '../http/header-count.js';
import { followsLastAnswer } from '../http/last-on-connection.js';
import { isMisdirected, MISDIRECTED_MESSAGE } from '../http/misdirected-request.js';
import { frameNoContent, hasNoContent } from '../http/no-content.js';
import {
  MISSING_HOST_MESSAGE,
  namesConflictingHosts,
  namesMalformedHost,
  omitsRequiredHost,
  requestAuthority,
} from '../http/request-authority.js';
import { afterResponsesInFlight, responseInFlight } from '../http/responses-in-flight.js';
import type { AccessLog } from '../observability/access-log.js';
import type { GatewayMetrics } from '../observability/gateway-metrics.js';
import { beginRequestTrace, RequestTracing } from '../observability/request-tracing.js';
import { acquireTarget } from '../pipeline/acquire-target.js';
import { writeError } from '../pipeline/errors.js';
import { CLIENT_CLOSED_REQUEST, GatewayExchange, type WebSocketClose } from '../pipeline/exchange.js';
import type { TenantResolver } from '../pipeline/gateway-handler.js';
import { originPath, originRequestHeaders } from '../pipeline/origin-request.js';
import type { ExchangeRecordSinks, UsageSink } from '../pipeline/record-exchange.js';
import type { ResponseHead } from '../pipeline/stage.js';
import { CookieDomainGuard } from '../proxy/cookie-domains.js';
import { downstreamResponseHeaders } from '../proxy/forwarded-headers.js';
import { classifyProxyError, isConnectFailure } from '../proxy/proxy-request.js';
import { tenantDnsLookups } from '../upstream/dns-lookups.js';
import { createGuardedConnector, OriginAddressBlockedError } from '../upstream/guarded-connector.js';
import { DEFAULT_ORIGIN_TLS, originTlsErrorCode, reportingTlsFailures } from '../upstream/origin-tls.js';
import { createStateChangeLog } from '../upstream/state-change-log.js';
import type { UpstreamLease, UpstreamTarget } from '../upstream/types.js';
import { MAX_INTERIM_ANSWERS, TooManyInterimAnswersError } from '../upstream/unasked-continue.js';
import { upgradeCredentials } from './browser-token.js';
import { type ClientHandshake, readClientHandshake } from './client-handshake.js';
import { CLOSE_GOING_AWAY, closeFrame } from './close-frame.js';
import { DeadlineQueue } from './deadline-queue.js';
import { readUntilPaired } from './early-client-bytes.js';
import { FrameRelay } from './frame-relay.js';
import { startHandshakeSpan } from './handshake-span.js';
import { SigningKeyWatch } from './signing-key-watch.js';
import {
  acceptsKey,
  opensHttp2WebSocket,
  type ResponseScoping,
  switchedStreamHeaders,
  switchesToWebSocket,
  switchingProtocolsHead,
} from './switching-protocols.js';
import { TenantSweeps } from './tenant-sweeps.js';
import { TenantWebSocketLimit } from './tenant-websocket-limit.js';
import { type UpgradeRecorder, upgradeRecorder } from './upgrade-record.js';
import {
  TenantAdmissions,
  verifiedByAnotherKeySet,
  type WebSocketAdmission,
  WITHDRAWAL_CLOSE,
  type WithdrawalReason,
} from './websocket-admission.js';
import type { WebSocketMetrics } from './websocket-metrics.js';

export interface WebSocketProxyOptions {
  /**
   * `get`: whether an upgrade's tenant is still in the config (series of a removed tenant are not
   * brought back). `watchTenants`: after each snapshot, the open WebSockets of the tenants it changed
   * are closed where it withdrew what admitted them.
   */
  store: TenantResolver & {
    get(tenantId: string): CompiledTenant | undefined;
    watchTenants?(listener: (tenantIds: ReadonlySet<string>) => void): () => void;
  };
  authenticator: Authenticator;
  encodedSlashes: EncodedSlashPolicy;
  /** GATEWAY_TRUSTED_PROXIES: whose forwarding headers are kept (as for every request). */
  trustedProxies: readonly string[];
  /** A connection with no frame either way for this long is closed (1001); 0 = never. */
  idleTimeoutMs: number;
  /**
   * GATEWAY_WEBSOCKET_CREDENTIAL_GRACE_SECONDS: how long past the moment its credentials stop being
   * accepted (a token's `exp`, an API key's `expires_at`) an open WebSocket is closed with 1008; null:
   * never (only a snapshot withdrawing its admission closes it).
   */
  credentialGraceMs: number | null;
  /** GATEWAY_MAX_HEADERS_COUNT: an upgrade with more header lines is refused 431, as any request. */
  maxHeaders: number;
  /** GATEWAY_MAX_LOOP_HOPS: an upgrade that passed the platform this often already is refused 508. */
  maxLoopHops?: number;
  /**
   * GATEWAY_MAX_WEBSOCKETS_PER_TENANT: open WebSockets (and upgrades waiting for their origin) one
   * tenant may hold on this replica; past it an upgrade is refused 503 websocket_limit. 0 = no limit.
   */
  maxPerTenant: number;
  /** The platform base domains: an origin's Set-Cookie Domain is scoped as on every response. */
  baseDomains: readonly string[];
  /**
   * Which addresses the upgrade may connect to (ORIGIN_BLOCKED_CIDRS and the gateway's own listeners):
   * the policy the upstream sets connect through; default: the default blocked ranges.
   */
  addressPolicy?: OriginAddressPolicy | undefined;
  metrics?: WebSocketMetrics;
  /** Each upgrade request gets its line, as any request (a switched one when its connection ends). */
  accessLog?: AccessLog | undefined;
  /** The request metrics every request is counted in (an upgrade's refusal among the error responses). */
  requestMetrics?: Pick<GatewayMetrics, 'observe' | 'countBandwidth' | 'countTenantBandwidth'> | undefined;
  /** Usage: an upgrade counts once, as its 101 or its refusal. */
  usage?: UsageSink | undefined;
  /**
   * OpenTelemetry, as for any request: an upgrade gets a SERVER span (continuing a trusted proxy's
   * context only) and its origin handshake a CLIENT span (HandshakeSpan), whose traceparent the origin
   * gets, never an untrusted client's.
   */
  tracing?: RequestTracing | undefined;
  logger?: Logger;
}

type Refusal = (status: number, code: string, message: string, headers?: Record<string, string>) => void;

interface ProxiedConnection {
  readonly client: Duplex;
  readonly upstream: Socket;
  /** Each way's relay: the gateway's close frame goes only between two of its frames. */
  readonly toClient: FrameRelay;
  readonly toUpstream: FrameRelay;
  /** The gateway has begun closing it: sent its close frames (or is finishing a frame to send them). */
  closing: boolean;
  /** What admitted it; each snapshot that keeps it records its API key's expiry there. */
  admission: WebSocketAdmission;
  /** The tenant version the upgrade was admitted under. */
  readonly admittedVersion: bigint;
  readonly requestId: string;
  /** Its upgrade's record: the access-log line is written when the connection ends. */
  readonly record: UpgradeRecorder;
  /** Who ended it and with which close code: the first close frame either way, else 1006 (none). */
  ending: WebSocketClose | undefined;
}

/** RFC 6455 §7.4.1: a connection that ended without a close frame. */
const CLOSE_ABNORMAL = 1006;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** Route stages that may refuse an upgrade before authentication, as they do any request. */
const BEFORE_AUTH_STAGES = new Set(['request_limits', 'ip_rules']);
/**
 * The route stages that run at connect after authentication: a route in maintenance mode or one that
 * redirects answers the upgrade itself; the request transforms shape what the origin receives (path,
 * headers, query), as for any request, so a client cannot switch them off by asking for an upgrade; the
 * rate limit and the quota count it (a connection is a request); the traffic split chooses its origin
 * (weights, stickiness, overrides), as for any request; not the cache (a cached 101 makes no sense).
 */
const CONNECT_STAGES = new Set([
  'fixed_response',
  'redirect',
  'request_transform',
  'rate_limit',
  'quota',
  'traffic_split',
]);
/** The route's response hooks a refused upgrade's answer passes, as any origin answer of the route. */
const REFUSAL_RESPONSE_STAGES = new Set(['response_headers', 'response_headers_per_request']);
/**
 * How long a closing connection may take: a frame in flight finished, then the peers' answers to our
 * close frames; past it both sockets are destroyed.
 */
const CLOSE_GRACE_MS = 1_000;
/** Guarded connectors kept per tenant, connect timeout and origin TLS settings (the most recently used). */
const MAX_CONNECTORS = 32;
/** Retry-After of an upgrade refused because its tenant holds GATEWAY_MAX_WEBSOCKETS_PER_TENANT. */
const LIMIT_RETRY_AFTER_SECONDS = '5';

/**
 * WebSocket proxying by piping raw sockets: the upgrade request goes through the same steps as any
 * request — tenant by host, path normalisation, route match, the route's IP rules and the Origin its
 * CORS policy allows (RouteStage.onUpgrade), authentication (every mode; a route may
 * let browsers put the token in the query or a subprotocol), the rate limit at connect, the origin the
 * route's traffic split chooses (else its own), a lease from that origin's load balancer (held while the
 * connection is open, so least-connections counts it; health and circuit state decide the target, a
 * split falls back to its other origins) — and then the origin's 101 is relayed (once its
 * Sec-WebSocket-Accept answers the client's key) and bytes flow both ways untouched. At shutdown every
 * connection gets a close frame 1001 (going away) both ways.
 */
export class WebSocketProxy {
  readonly #options: WebSocketProxyOptions;
  /** Where each upgrade request is recorded, as any request. */
  readonly #records: ExchangeRecordSinks;
  readonly #open = new Set<ProxiedConnection>();
  /** The open connections of each tenant not yet told to close: a snapshot checks only its tenant's. */
  readonly #openByTenant = new Map<string, Set<ProxiedConnection>>();
  /** The open connections not yet told to close whose credentials expire, by when they are closed for it. */
  readonly #expiries = new DeadlineQueue<ProxiedConnection>((connection) =>
    this.#withdraw(connection, 'credentials_expired'),
  );
  /** The open connections admitted by user tokens, by the remote key set that verified them. */
  readonly #signingKeys = new SigningKeyWatch<ProxiedConnection>((connection) =>
    this.#withdraw(connection, 'signing_key_withdrawn'),
  );
  /** The checks of each changed tenant's open connections, in slices of the event loop. */
  readonly #sweeps = new TenantSweeps();
  readonly #unwatch: (() => void) | undefined;
  /** Client sockets of upgrades not yet switched: node's closeAllConnections no longer reaches them. */
  readonly #pending = new Set<Duplex>();
  /** The tenant slot (GATEWAY_MAX_WEBSOCKETS_PER_TENANT) each admitted upgrade's client socket holds. */
  readonly #slots = new WeakMap<Duplex, () => void>();
  readonly #clientAddresses: ClientAddressResolver;
  readonly #cookieDomains: CookieDomainGuard;
  readonly #addressPolicy: OriginAddressPolicy;
  readonly #perTenant: TenantWebSocketLimit;
  /** Only when tracing is on. */
  readonly #tracing: RequestTracing | undefined;
  /** Guarded connectors (the upstream pools' own connector) by connect timeout. */
  readonly #connectors = new LRUCache<string, buildConnector.connector>({ max: MAX_CONNECTORS });
  #closing = false;

  constructor(options: WebSocketProxyOptions) {
    this.#options = options;
    this.#records = { metrics: options.requestMetrics, accessLog: options.accessLog, usage: options.usage };
    this.#clientAddresses = new ClientAddressResolver(options.trustedProxies);
    this.#cookieDomains = new CookieDomainGuard(options.baseDomains, options.store);
    this.#addressPolicy = options.addressPolicy ?? new OriginAddressPolicy(DEFAULT_ORIGIN_BLOCKED_CIDRS);
    this.#tracing = options.tracing?.enabled ? options.tracing : undefined;
    this.#perTenant = new TenantWebSocketLimit(options.maxPerTenant);
    this.#unwatch = options.store.watchTenants?.((tenantIds) => {
      for (const tenantId of tenantIds) this.#recheckTenant(tenantId);
    });
  }

  get openConnections(): number {
    return this.#open.size;
  }

  /** As node's `upgrade` event listener (plain and TLS listeners). */
  readonly handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // Pipelined behind a request refused for its framing: the connection closes once that is answered.
    if (followsLastAnswer(req)) return;
    socket.on('error', () => socket.destroy());
    if (!responseInFlight(socket)) {
      this.#accept(req, socket, head);
      return;
    }
    // Pipelined behind requests still being answered (node hands the connection over at once): their
    // responses go out first, whole, as HTTP/1.1 orders answers; the upgrade's answer is written after.
    this.#pending.add(socket);
    socket.once('close', () => this.#pending.delete(socket));
    afterResponsesInFlight(socket, () => {
      if (!followsLastAnswer(req)) this.#accept(req, socket, head);
    });
  };

  /**
   * As the HTTP/2 listeners' extended CONNECT for `websocket` (RFC 8441): the stream is the client's
   * connection, answered 200 where an HTTP/1.1 upgrade is answered 101.
   */
  readonly handleExtendedConnect = (req: Http2ServerRequest, res: Http2ServerResponse): void => {
    const stream = req.stream;
    stream.on('error', () => stream.destroy());
    this.#pending.add(stream);
    this.#begin(
      req as unknown as IncomingMessage,
      res as unknown as ServerResponse,
      stream,
      readUntilPaired(stream, Buffer.alloc(0)),
    );
  };

  /** An upgrade whose connection carries no other answer: from here on the connection is the upgrade's. */
  #accept(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#pending.add(socket);
    const earlyBytes = readUntilPaired(socket, head);
    // The listeners' own response, so its line has the body bytes of a refusal as any request's.
    const res = new GatewayServerResponse(req);
    res.assignSocket(socket as Socket);
    res.shouldKeepAlive = false;
    this.#begin(req, res, socket, earlyBytes);
  }

  /** The upgrade request on `socket` (an HTTP/1.1 connection or an HTTP/2 stream), answered on `res`. */
  #begin(req: IncomingMessage, res: ServerResponse, socket: Duplex, earlyBytes: () => Buffer): void {
    const incomingId = req.headers['x-request-id'];
    const requestId =
      typeof incomingId === 'string' && REQUEST_ID.test(incomingId) ? incomingId : randomUUID();
    res.setHeader('x-request-id', requestId);
    const address = this.#clientAddresses.resolve(req);
    const exchange = new GatewayExchange(req, res, requestId, address.clientIp);
    exchange.peerIp = address.peerIp;
    exchange.peerTrusted = address.peerTrusted;
    beginRequestTrace(this.#tracing, exchange);
    const record = upgradeRecorder(exchange, this.#records);
    // Whichever comes first: the answer is out, or the client left before it (a 101 is recorded at the
    // switch and, its line, at the connection's end).
    res.once('finish', () => record.answered());
    // One listener for everything the upgrade holds until its client connection closes.
    socket.once('close', () => {
      this.#pending.delete(socket);
      this.#slots.get(socket)?.();
      record.answered();
    });
    const refuse: Refusal = (status, code, message, headers) => {
      exchange.errorCode = code;
      this.#countUpgrade(exchange.tenant, status, code);
      res.once('finish', () => socket.destroy());
      writeError(res, status, code, message, headers);
    };
    this.#upgrade(exchange, socket, earlyBytes, refuse, record).catch((error: unknown) => {
      this.#options.logger?.warn('websocket upgrade failed', { error: String(error) });
      refuse(500, 'internal_error', 'the gateway failed to handle the request');
    });
  }

  async #upgrade(
    exchange: GatewayExchange,
    socket: Duplex,
    earlyBytes: () => Buffer,
    refuse: Refusal,
    record: UpgradeRecorder,
  ): Promise<void> {
    const { store, authenticator } = this.#options;
    const req = exchange.req;

    // GATEWAY_MAX_HEADERS_COUNT, as for every request (the request handler checks it first).
    const { maxHeaders } = this.#options;
    if (headerLineCount(req) > maxHeaders)
      return refuse(431, 'too_many_headers', `a request may have at most ${maxHeaders} header lines`);
    if (this.#closing) return refuse(503, 'shutting_down', 'the gateway is shutting down');
    const handshake = readClientHandshake(req);
    if (!handshake.ok) return refuse(400, handshake.code, handshake.message);
    const { webSocketKey } = handshake;
    if (namesConflictingHosts(req))
      return refuse(400, 'invalid_host', 'the request names more than one host');
    if (omitsRequiredHost(req)) return refuse(400, 'invalid_host', MISSING_HOST_MESSAGE);
    const host = requestAuthority(req.headers);
    const tenant = store.resolveHost(host);
    if (tenant === undefined) {
      return namesMalformedHost(req.headers)
        ? refuse(400, 'invalid_host', 'the Host header is not a host name with an optional port')
        : refuse(404, 'tenant_not_found', 'no tenant is served on this host');
    }
    if (isMisdirected(req, tenant.id)) return refuse(421, 'misdirected_request', MISDIRECTED_MESSAGE);
    exchange.tenant = tenant;
    exchange.span?.setAttribute('vantageedge.tenant.id', tenant.id);

    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    const normalized = normalizePath(queryAt < 0 ? url : url.slice(0, queryAt), this.#options.encodedSlashes);
    if (!normalized.ok) {
      return refuse(400, 'invalid_path', `the request path is not acceptable (${normalized.reason})`);
    }
    exchange.path = normalized.path;
    const query = queryAt < 0 ? '' : url.slice(queryAt);
    if (queryAt >= 0 && !isAcceptableQuery(query)) {
      return refuse(
        400,
        'invalid_query',
        'the query string contains a character that must be percent-encoded',
      );
    }
    // The routes' `match` conditions (hosts, headers, query) hold for an upgrade as for any request.
    const route = tenant.router.resolve('GET', normalized.path, { facts: { req, query }, preflight: false });
    if (route === undefined) return refuse(404, 'route_not_found', 'no route matches this method and path');
    if (route instanceof AmbiguousPath) {
      return refuse(
        403,
        'ambiguous_path',
        'an origin could read this path as the path of a differently protected route; use its exact spelling',
      );
    }
    exchange.route = route;
    if (exchange.span !== undefined) {
      exchange.span.setAttribute('vantageedge.route.id', route.config.id);
      RequestTracing.routed(exchange.span, 'GET', route.config.path_pattern);
    }
    if (platformPasses(req.headers) >= (this.#options.maxLoopHops ?? DEFAULT_MAX_LOOP_HOPS))
      return refuse(508, 'loop_detected', LOOP_DETECTED_MESSAGE);
    if (await this.#runStages(exchange, socket, BEFORE_AUTH_STAGES)) return;
    if (this.#refusedByUpgradeStage(exchange, socket)) return;

    const credentials = upgradeCredentials(route.config, req.headers, query);
    exchange.query = credentials.query;
    const auth = await authenticator.authenticate(tenant, route, credentials.headers, exchange.clientIp);
    if (!auth.ok) {
      const headers: Record<string, string> = { 'www-authenticate': auth.challenge };
      if (auth.retryAfterSeconds !== undefined) headers['retry-after'] = String(auth.retryAfterSeconds);
      return refuse(auth.status, auth.code, auth.message, headers);
    }
    exchange.identity = auth.identity;
    // The client's request as the origin may see it (a token offered as a subprotocol removed), which
    // the route's request transform works on.
    if (credentials.protocols === undefined) delete req.headers['sec-websocket-protocol'];
    else req.headers['sec-websocket-protocol'] = credentials.protocols;
    if (await this.#runStages(exchange, socket, CONNECT_STAGES)) return;

    // The traffic split's choice, else the route's own origin.
    const chosen = exchange.origin ?? route.origin;
    if (chosen === undefined) return refuse(503, 'origin_unavailable', 'the route has no origin configured');
    // The client left while the upgrade was authenticated (recorded at its close): no origin for it.
    if (socket.destroyed) return;
    if (!this.#admit(tenant.id, socket)) {
      this.#options.metrics?.refusedAtLimit(tenant.id);
      return refuse(
        503,
        'websocket_limit',
        `the tenant holds its limit of ${this.#perTenant.limit} open WebSockets on this gateway; try again later`,
        { 'retry-after': LIMIT_RETRY_AFTER_SECONDS },
      );
    }
    // As for any request: a split route whose chosen origin has no available target falls back to the
    // split's other origins (exchange.origin becomes the one that gave the target).
    const lease = acquireTarget(exchange, chosen, undefined);
    if (lease === undefined) return refuse(503, 'no_healthy_upstream', 'no origin target is available');
    const origin = exchange.origin ?? chosen;
    // What a later snapshot of the tenant must still allow for the connection to stay open.
    const oidc = auth.identity.issuer === 'oidc' ? tenant.auth.oidc : null;
    const admission: WebSocketAdmission = {
      tenantId: tenant.id,
      host,
      clientIp: exchange.clientIp,
      page: req.headers.origin,
      routeId: route.config.id,
      originId: origin.config.id,
      originTls:
        lease.target.url.protocol === 'https:' ? (lease.target.tls ?? DEFAULT_ORIGIN_TLS).key : undefined,
      identity: auth.identity,
      oidcProvider: oidc === null ? undefined : { issuer: oidc.issuer, audience: oidc.audience },
      credentialsExpireAtMs: auth.expiresAtMs,
      verifiedWith: auth.verifiedWith,
    };

    // As for any request: rewrite_path, else strip_prefix; the client's headers after the route's transform.
    const { path, stripped } = originPath(exchange);
    const headers: OutgoingHttpHeaders = originRequestHeaders(exchange, lease, stripped);
    headers['connection'] = 'Upgrade';
    headers['upgrade'] = 'websocket';
    // The origin's Sec-WebSocket-Accept is checked against the client's key (a transform cannot change it).
    headers['sec-websocket-key'] = webSocketKey;
    // A token that came in the query or a subprotocol authenticated the upgrade; it is not the origin's.
    if (credentials.headers !== req.headers && !exchange.routeRequestHeaders?.includes('authorization'))
      delete headers['authorization'];

    this.#forward(
      exchange,
      admission,
      socket,
      earlyBytes,
      lease,
      path + exchange.query,
      headers,
      handshake,
      origin.timeoutMs,
      refuse,
      record,
    );
  }

  /**
   * Takes one of the tenant's GATEWAY_MAX_WEBSOCKETS_PER_TENANT slots until the client connection
   * closes, whichever way it ends (a refusal, the origin's non-101 answer, either side closing the
   * WebSocket, the client leaving first): every ending destroys the client socket, which is still open
   * here. False at the limit.
   */
  #admit(tenantId: string, socket: Duplex): boolean {
    const release = this.#perTenant.admit(tenantId);
    if (release === undefined) return false;
    this.#slots.set(socket, release);
    return true;
  }

  /**
   * Counts an upgrade's answer: `errorCode` when the gateway answered, none when the origin did. Not
   * once the tenant left the config (an upgrade still in flight then): its series are gone with it.
   */
  #countUpgrade(tenant: CompiledTenant | undefined, status: number, errorCode: string | undefined): void {
    const metrics = this.#options.metrics;
    if (metrics === undefined) return;
    if (tenant !== undefined && this.#options.store.get(tenant.id) === undefined) return;
    metrics.upgrade(tenant?.id ?? 'unknown', status, errorCode);
  }

  /** Runs the route's request stages named in `names`, in order; true when one answered the upgrade. */
  async #runStages(exchange: GatewayExchange, socket: Duplex, names: ReadonlySet<string>): Promise<boolean> {
    for (const stage of exchange.route?.stages.request ?? []) {
      if (!names.has(stage.name)) continue;
      if ((await stage.onRequest!(exchange)) === 'handled') {
        this.#answeredByStage(exchange, socket);
        return true;
      }
    }
    return false;
  }

  /** The route's upgrade checks (a CORS route's Origin); true when one refused the upgrade. */
  #refusedByUpgradeStage(exchange: GatewayExchange, socket: Duplex): boolean {
    for (const stage of exchange.route?.stages.upgrade ?? []) {
      if (stage.onUpgrade!(exchange) === 'handled') {
        this.#answeredByStage(exchange, socket);
        return true;
      }
    }
    return false;
  }

  #answeredByStage(exchange: GatewayExchange, socket: Duplex): void {
    this.#countUpgrade(exchange.tenant, exchange.res.statusCode, exchange.errorCode);
    // The answer may already be out (a stage that answers synchronously, before any await).
    if (exchange.res.writableFinished) socket.destroy();
    else exchange.res.once('finish', () => socket.destroy());
  }

  /**
   * A connection to `target` through the guarded connector the upstream pools use: the address is
   * checked after DNS resolution and the replica's own listeners are refused (OriginAddressBlockedError).
   */
  #connect(
    tenantId: string,
    target: UpstreamTarget,
    timeoutMs: number,
    callback: (error: Error | null, socket: Socket) => void,
  ): void {
    const connectMs = Math.min(timeoutMs, MAX_ORIGIN_CONNECT_TIMEOUT_MS);
    const tls = target.tls ?? DEFAULT_ORIGIN_TLS;
    const key = `${tenantId} ${connectMs} ${tls.key}`;
    let connector = this.#connectors.get(key);
    if (connector === undefined) {
      // Names are looked up in the tenant's turn, as its pools' are (TenantDnsLookups).
      const resolve = tenantDnsLookups.forTenant(tenantId);
      const log = createStateChangeLog(this.#options.logger, () => performance.now());
      connector = reportingTlsFailures(
        createGuardedConnector(this.#addressPolicy, { timeout: connectMs }, resolve, tls),
        (reason, error, hostname) =>
          log('warn', 'origin TLS handshake failed', {
            tenant_id: tenantId,
            target: hostname,
            reason,
            // The reason is the code; the message (the certificate's names, bounded) says what did not match.
            error: error.message.slice(0, 300),
            during: 'websocket_upgrade',
          }),
      );
      this.#connectors.set(key, connector);
    }
    const { hostname, host, protocol, port } = target.url;
    connector(
      {
        // An IPv6 literal without its brackets, as undici's own pools pass it.
        hostname: hostname.startsWith('[') ? hostname.slice(1, -1) : hostname,
        host,
        protocol,
        port: port || (protocol === 'https:' ? '443' : '80'),
      },
      (error, socket) => callback(error, socket as Socket),
    );
  }

  #forward(
    exchange: GatewayExchange,
    admission: WebSocketAdmission,
    client: Duplex,
    earlyBytes: () => Buffer,
    lease: UpstreamLease,
    pathAndQuery: string,
    headers: OutgoingHttpHeaders,
    { webSocketKey, overHttp2 }: ClientHandshake & { ok: true },
    timeoutMs: number,
    refuse: Refusal,
    record: UpgradeRecorder,
  ): void {
    const target = lease.target;
    const tenant = exchange.tenant as CompiledTenant;
    const tenantId = tenant.id;
    const hostHeader = requestAuthority(exchange.req.headers);
    const scoping: ResponseScoping = {
      cookie: (value) => this.#cookieDomains.scope(value, hostHeader, tenant) as string,
      clearSiteData: (value) => this.#cookieDomains.scopeClearSiteData(value, hostHeader),
    };
    let released = false;
    const release = (outcome: Parameters<UpstreamLease['release']>[0]) => {
      if (released) return;
      released = true;
      lease.release(outcome);
    };
    const handshakeSpan = startHandshakeSpan(this.#tracing, exchange, target, headers);
    const upstreamRequest: ClientRequest = httpRequest({
      path: target.basePath + pathAndQuery,
      method: 'GET',
      headers,
      // No agent (`agent: false` would make one, which connects by itself): the connection below.
      // Never a plain connect: the origin address policy is checked as for every upstream exchange
      // (TLS included for https targets).
      createConnection: (_options, oncreate) => {
        this.#connect(tenantId, target, timeoutMs, oncreate);
        return undefined;
      },
    });
    const timedOut = () => {
      clearTimeout(answerDeadline);
      release({ kind: 'timeout' });
      upstreamRequest.destroy();
      handshakeSpan.failed('upstream_timeout');
      refuse(504, 'upstream_timeout', 'the origin did not answer the upgrade in time');
    };
    // Not the `timeout` option: node only listens for the socket's timeout and leaves setting it to the
    // agent or createConnection, so an origin that never answered the upgrade held it for ever. The
    // socket's idle timeout bounds a relayed refusal's body; the answer's head has a deadline of its own,
    // which bytes cannot push back (1xx answers, a 101 sent a byte at a time).
    upstreamRequest.setTimeout(timeoutMs);
    const answerDeadline = setTimeout(timedOut, timeoutMs);
    exchange.upstreamTarget = target.label;
    const sentAt = performance.now();
    const answered = () => {
      clearTimeout(answerDeadline);
      exchange.upstreamMs = performance.now() - sentAt;
    };
    client.once('close', () => {
      clearTimeout(answerDeadline);
      // The client left before the origin answered: nothing to say about the origin.
      if (!released) {
        release({ kind: 'cancelled' });
        upstreamRequest.destroy();
        handshakeSpan.failed(CLIENT_CLOSED_REQUEST);
      }
    });

    upstreamRequest.once('timeout', timedOut);
    /** 502 origin_address_blocked / origin_tls_error / upstream_error, 504 upstream_timeout, as the HTTP path answers them. */
    const failAs = (error: Error) => {
      const failure = classifyProxyError(error);
      release(failure.outcome);
      handshakeSpan.failed(failure.code);
      refuse(failure.status, failure.code, failure.message);
    };
    /**
     * The origin is one of the platform's internal listeners (its answer is marked): nothing of the
     * answer reaches the client, the upgrade fails as a refused address does.
     */
    const refuseInternal = (response: IncomingMessage, upstream?: Socket): boolean => {
      if (!isInternalListenerResponse(response.headers)) return false;
      response.on('error', () => {}); // cut short below: its body is never read
      response.resume();
      upstream?.destroy();
      upstreamRequest.destroy();
      failAs(new OriginAddressBlockedError('the origin is one of the platform’s internal listeners'));
      return true;
    };
    /**
     * An answer the client cannot be given: a 101 that is not a switch to WebSocket (the connection is
     * in no state to relay), a 2xx to an HTTP/2 client (it would open the WebSocket), or a status outside
     * 100–599 (as the proxy answers one).
     */
    const refuseUnrelayable = (
      response: IncomingMessage,
      upstream?: Socket,
      message = 'the origin answered the upgrade with 101 without switching to WebSocket',
    ) => {
      response.on('error', () => {});
      response.resume();
      upstream?.destroy();
      upstreamRequest.destroy();
      release({ kind: 'reset' });
      handshakeSpan.failed('upstream_error', response.statusCode);
      refuse(502, 'upstream_error', message);
    };
    upstreamRequest.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(answerDeadline);
      if (released) return;
      if (
        error.code === 'ORIGIN_ADDRESS_BLOCKED' ||
        error.code === 'UND_ERR_CONNECT_TIMEOUT' ||
        originTlsErrorCode(error) !== undefined ||
        isConnectFailure(error)
      ) {
        failAs(error);
        return;
      }
      release({ kind: 'reset' });
      handshakeSpan.failed('upstream_error');
      refuse(502, 'upstream_error', 'the origin connection failed');
    });
    // As on the HTTP path (MAX_INTERIM_ANSWERS): an origin flooding the upgrade with 1xx answers is cut.
    // Its final answer may come in the same read, after the refusal: it is dropped (see `cut`).
    let interimAnswers = 0;
    let cut = false;
    const countInterim = () => {
      if (++interimAnswers <= MAX_INTERIM_ANSWERS || released) return;
      cut = true;
      clearTimeout(answerDeadline);
      upstreamRequest.off('information', countInterim);
      upstreamRequest.destroy();
      failAs(new TooManyInterimAnswersError());
    };
    upstreamRequest.on('information', countInterim);
    upstreamRequest.once('response', (response: IncomingMessage) => {
      if (cut) return void response.on('error', () => {}).resume();
      answered();
      if (refuseInternal(response)) return;
      if (response.statusCode === 101) return refuseUnrelayable(response);
      // A 2xx to an extended CONNECT opens the WebSocket (RFC 8441 §5): relayed, an origin that ignored
      // the upgrade and served a page would have the client read that page as its frames.
      if (overHttp2 && opensHttp2WebSocket(response.statusCode))
        return refuseUnrelayable(
          response,
          undefined,
          `the origin answered the upgrade with ${response.statusCode} without switching to WebSocket`,
        );
      // Not an HTTP status (RFC 9110 §15): node's HTTP/2 response throws on one, out of this listener.
      if ((response.statusCode ?? 0) > 599)
        return refuseUnrelayable(
          response,
          undefined,
          `the origin answered the upgrade with status ${response.statusCode}, outside 100-599`,
        );
      // The origin answered without switching protocols (e.g. 403): relay its answer. Its head is out, so
      // a body that stalls past the origin's timeout only cuts the connection: the answer stays the origin's.
      upstreamRequest.off('timeout', timedOut);
      upstreamRequest.once('timeout', () => upstreamRequest.destroy());
      release({ kind: 'response', status: response.statusCode ?? 502 });
      handshakeSpan.answered(response.statusCode ?? 502);
      this.#countUpgrade(tenant, response.statusCode ?? 502, undefined);
      const res = exchange.res;
      const outHeaders = downstreamResponseHeaders(
        response.headers as Record<string, string | string[] | undefined>,
      );
      const setCookie = outHeaders['set-cookie'];
      if (setCookie !== undefined)
        outHeaders['set-cookie'] = this.#cookieDomains.scope(setCookie, hostHeader, tenant);
      const clearSiteData = outHeaders['clear-site-data'];
      if (clearSiteData !== undefined) {
        const scoped = scoping.clearSiteData(String(clearSiteData));
        if (scoped === undefined) delete outHeaders['clear-site-data'];
        else outHeaders['clear-site-data'] = scoped;
      }
      const status = response.statusCode ?? 502;
      const head: ResponseHead = { statusCode: status, headers: outHeaders, checkedHeaders: undefined };
      for (const stage of exchange.route?.stages.response ?? []) {
        if (REFUSAL_RESPONSE_STAGES.has(stage.name)) stage.onResponse!(exchange, head);
      }
      res.once('finish', () => client.destroy());
      if (hasNoContent(status)) {
        // A 204, 205 or 304 goes out without content, whatever the origin sent with it (an HTTP/2
        // client resets a 204 stream that announces some).
        frameNoContent(status, outHeaders);
        writeLowerCaseHead(res, status, outHeaders, head.checkedHeaders);
        response.on('error', () => {});
        response.resume();
        upstreamRequest.destroy();
        res.end();
        return;
      }
      writeLowerCaseHead(res, status, outHeaders, head.checkedHeaders);
      // An answer the origin cuts short ends the client's connection too (pipeline destroys `res`).
      pipeline(response, res, () => {});
    });
    upstreamRequest.once('upgrade', (response: IncomingMessage, upstream: Socket, upstreamHead: Buffer) => {
      if (cut) return upstream.destroy();
      answered();
      if (refuseInternal(response, upstream)) return;
      if (!switchesToWebSocket(response)) return refuseUnrelayable(response, upstream);
      if (!acceptsKey(response, webSocketKey)) {
        return refuseUnrelayable(
          response,
          upstream,
          'the origin’s 101 has no Sec-WebSocket-Accept for the client’s Sec-WebSocket-Key',
        );
      }
      if (client.destroyed) {
        upstream.destroy();
        release({ kind: 'cancelled' });
        handshakeSpan.failed(CLIENT_CLOSED_REQUEST);
        return;
      }
      // The origin switched, whatever the gateway then does with the connection.
      handshakeSpan.answered(101);
      // Switched after closeAll told the open ones to go away: nothing would ever close this one.
      if (this.#closing) {
        upstream.destroy();
        release({ kind: 'cancelled' });
        refuse(503, 'shutting_down', 'the gateway is shutting down');
        return;
      }
      upstream.setTimeout(0); // the origin's answer timeout; an open WebSocket has the idle timeout
      lease.responseStarted?.(101);
      this.#countUpgrade(tenant, 101, undefined);
      if (overHttp2)
        exchange.res.writeHead(200, switchedStreamHeaders(response, exchange.requestId, scoping));
      else client.write(switchingProtocolsHead(response, exchange.requestId, scoping));
      record.switched();
      const connection: ProxiedConnection = {
        client,
        upstream,
        toClient: new FrameRelay(upstream, client, (code) => endedBy(connection, 'origin', code)),
        toUpstream: new FrameRelay(client, upstream, (code) => endedBy(connection, 'client', code)),
        closing: false,
        admission,
        admittedVersion: tenant.version,
        requestId: exchange.requestId,
        record,
        ending: undefined,
      };
      connection.toClient.sent(upstreamHead);
      connection.toUpstream.sent(earlyBytes());
      this.#pair(connection, () => release({ kind: 'response', status: 101 }));
    });
    upstreamRequest.end();
  }

  #pair(connection: ProxiedConnection, onClose: () => void): void {
    const { client, upstream } = connection;
    const { tenantId } = connection.admission;
    this.#pending.delete(client);
    this.#open.add(connection);
    this.#tenantConnections(tenantId).add(connection);
    this.#options.metrics?.opened(tenantId);
    upstream.setNoDelay(true);
    (client as Socket).setNoDelay?.(true);
    upstream.on('error', () => upstream.destroy());
    let closed = false;
    const finish = (side: 'client' | 'origin') => {
      if (closed) return;
      closed = true;
      const ending = endedBy(connection, side, CLOSE_ABNORMAL);
      connection.record.ended(ending, connection.toUpstream.bytes, connection.toClient.bytes);
      // Its frames count in the tenant's bandwidth now, unless the tenant left (its series are gone).
      if (this.#options.store.get(tenantId) !== undefined)
        this.#options.requestMetrics?.countTenantBandwidth(
          tenantId,
          connection.toUpstream.bytes,
          connection.toClient.bytes,
        );
      this.#open.delete(connection);
      this.#forget(connection);
      this.#options.metrics?.closed(tenantId, this.#options.store.get(tenantId) === undefined);
      // While the gateway closes it, the other side may still be getting the rest of a frame or its close
      // frame: each relay cuts its side if that can no longer come, the close grace bounds the rest.
      if (!connection.closing) {
        client.destroy();
        upstream.destroy();
      }
      onClose();
    };
    client.once('close', () => finish('client'));
    upstream.once('close', () => finish('origin'));
    const idle = this.#options.idleTimeoutMs;
    if (idle > 0 && 'setTimeout' in client) {
      (client as Socket).setTimeout(idle, () => this.#goAway(connection, 'idle timeout'));
    }
    connection.toUpstream.start();
    connection.toClient.start();
    this.#closeOnExpiry(connection, connection.admission.credentialsExpireAtMs);
    const { verifiedWith } = connection.admission;
    // Withdrawn while the origin was answering: the set's refresh came before the connection was watched.
    if (verifiedWith !== undefined && !this.#signingKeys.watch(connection, verifiedWith)) {
      this.#withdraw(connection, 'signing_key_withdrawn');
      return;
    }
    this.#recheckAdmittedDuringChange(connection);
  }

  /** Closes the connection (1008) once its credentials expire, plus the grace; never without an expiry. */
  #closeOnExpiry(connection: ProxiedConnection, expiresAtMs: number | undefined): void {
    const grace = this.#options.credentialGraceMs;
    if (expiresAtMs === undefined || grace === null) this.#expiries.delete(connection);
    else this.#expiries.set(connection, expiresAtMs + grace);
  }

  #tenantConnections(tenantId: string): Set<ProxiedConnection> {
    let connections = this.#openByTenant.get(tenantId);
    if (connections === undefined) {
      connections = new Set();
      this.#openByTenant.set(tenantId, connections);
    }
    return connections;
  }

  #forget(connection: ProxiedConnection): void {
    this.#expiries.delete(connection);
    this.#signingKeys.forget(connection);
    const { tenantId } = connection.admission;
    const connections = this.#openByTenant.get(tenantId);
    if (connections === undefined) return;
    connections.delete(connection);
    if (connections.size === 0) this.#openByTenant.delete(tenantId);
  }

  /**
   * A snapshot changed the tenant (or gave one of its hosts to another tenant): every open WebSocket of
   * the tenant whose admission it withdrew is closed. The snapshot is indexed once; each connection is
   * checked from what it recorded at its upgrade, its credentials never verified again — but tokens
   * verified by a key set the tenant no longer names are judged by the one it names now, fetched first
   * if the replica has not yet. The connections are checked in slices of the event loop.
   */
  #recheckTenant(tenantId: string): void {
    const connections = this.#openByTenant.get(tenantId);
    if (connections === undefined) return;
    const keys = this.#options.store.get(tenantId)?.auth.oidc?.keys;
    const loadKeys =
      keys !== undefined && [...connections].some(({ admission }) => verifiedByAnotherKeySet(admission, keys))
        ? () => keys.load()
        : undefined;
    this.#sweeps
      .run(tenantId, loadKeys, () => this.#rechecking(tenantId))
      .catch((error: unknown) =>
        this.#options.logger?.error('websocket recheck failed', {
          tenant_id: tenantId,
          error: String(error),
        }),
      );
  }

  /** The tenant's open connections checked against its version now, one step each. */
  *#rechecking(tenantId: string): SlicedWork<void> {
    const store = this.#options.store;
    const tenant = store.get(tenantId);
    const admissions = tenant && new TenantAdmissions(tenant, (host) => store.resolveHost(host));
    const now = Date.now();
    for (const connection of [...(this.#openByTenant.get(tenantId) ?? [])]) {
      // Closed, or told to close, since the sweep listed it.
      if (connection.closing || !this.#open.has(connection)) continue;
      if (admissions === undefined) this.#withdraw(connection, 'tenant_removed');
      else this.#recheck(connection, admissions, now);
      yield;
    }
  }

  /** A connection whose origin switched after a snapshot changed its tenant: that snapshot's check missed it. */
  #recheckAdmittedDuringChange(connection: ProxiedConnection): void {
    const { tenantId, host } = connection.admission;
    // A sweep waiting for the tenant's key set checks it with the others.
    if (this.#sweeps.preparing(tenantId)) return;
    const store = this.#options.store;
    const tenant = store.get(tenantId);
    if (tenant === undefined) {
      this.#withdraw(connection, 'tenant_removed');
      return;
    }
    if (tenant.version === connection.admittedVersion && store.resolveHost(host)?.id === tenantId) return;
    this.#recheck(connection, new TenantAdmissions(tenant, (name) => store.resolveHost(name)), Date.now());
  }

  /** Closes the connection if `admissions` withdraws it; else it closes when its credentials expire there. */
  #recheck(connection: ProxiedConnection, admissions: TenantAdmissions, nowMs: number): void {
    const reason = admissions.withdrawal(connection.admission, nowMs);
    if (reason !== undefined) {
      this.#withdraw(connection, reason);
      return;
    }
    connection.admission = admissions.withKeyExpiry(connection.admission);
    this.#closeOnExpiry(connection, admissions.credentialsExpireAtMs(connection.admission));
    const held = admissions.withCurrentKeySet(connection.admission);
    if (held === connection.admission || held.verifiedWith === undefined) return;
    // The tenant's new key set lists its signing key: that set's withdrawals close it from now on.
    connection.admission = held;
    this.#signingKeys.forget(connection);
    if (!this.#signingKeys.watch(connection, held.verifiedWith))
      this.#withdraw(connection, 'signing_key_withdrawn');
  }

  #withdraw(connection: ProxiedConnection, reason: WithdrawalReason): void {
    this.#forget(connection);
    const close = WITHDRAWAL_CLOSE[reason];
    const { tenantId, routeId } = connection.admission;
    this.#options.logger?.info('websocket closed', {
      tenant_id: tenantId,
      route_id: routeId,
      request_id: connection.requestId,
      reason,
      close_code: close.code,
    });
    // A removed tenant's series left /metrics with it.
    if (reason !== 'tenant_removed') this.#options.metrics?.closedOnWithdrawal(tenantId, reason);
    this.#close(connection, close.code, close.reason);
  }

  #goAway(connection: ProxiedConnection, reason: string): void {
    this.#forget(connection);
    this.#close(connection, CLOSE_GOING_AWAY, reason);
  }

  /**
   * A close frame to both sides on a frame boundary (a frame in flight finished first), then the sockets
   * end; destroyed if that and the peers' closing take longer than the grace.
   */
  #close(connection: ProxiedConnection, code: number, reason: string): void {
    if (connection.closing) return;
    connection.closing = true;
    endedBy(connection, 'gateway', code);
    const { client, upstream } = connection;
    connection.toClient.stop();
    connection.toUpstream.stop();
    connection.toClient.closeWith(closeFrame(code, reason, false));
    connection.toUpstream.closeWith(closeFrame(code, reason, true));
    setTimeout(() => {
      client.destroy();
      upstream.destroy();
    }, CLOSE_GRACE_MS).unref();
  }

  /** Shutdown: new upgrades are refused; every open connection is closed with 1001. */
  async closeAll(timeoutMs = CLOSE_GRACE_MS + 500): Promise<void> {
    this.#closing = true;
    this.#unwatch?.();
    this.#sweeps.stopAll();
    this.#expiries.clear();
    for (const connection of this.#open) this.#goAway(connection, 'gateway shutting down');
    const deadline = Date.now() + timeoutMs;
    while (this.#open.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }

  /** The shutdown deadline: upgrades still waiting for their origin are cut (their leases cancelled). */
  cutPendingUpgrades(): void {
    for (const socket of this.#pending) socket.destroy();
  }
}

/** Records the first ending of the connection: a close frame either way, the gateway's own, or a side's connection closing. */
function endedBy(connection: ProxiedConnection, by: WebSocketClose['by'], code: number): WebSocketClose {
  connection.ending ??= { by, code };
  return connection.ending;
}
