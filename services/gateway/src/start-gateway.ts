import { createServer, type Server } from 'node:http';
import type { Http2SecureServer } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { closeConnectionsAfterResponses, closeGracefully } from '@vantageedge/shared/http/graceful-close';
import { limitIdleKeepAlive } from '@vantageedge/shared/http/idle-keep-alive';
import { requestsInTurn } from '@vantageedge/shared/http/one-request-at-a-time';
import { limitSendTime } from '@vantageedge/shared/http/send-timeout';
import { ClientAddressResolver } from '@vantageedge/shared/net/client-address';
import { limitConnectionsPerClient } from '@vantageedge/shared/net/client-connection-limit';
import { ClientSlots } from '@vantageedge/shared/net/client-slots';
import type { OriginAddressPolicy } from '@vantageedge/shared/net/origin-address-policy';
import type { Logger, StructuredLogger } from '@vantageedge/shared/observability/logger';
import { createScrapeListener } from '@vantageedge/shared/observability/metrics-server';
import { clerkIssuerOf } from '@vantageedge/shared/settings/clerk-issuer';
import { platformBaseDomains } from '@vantageedge/shared/settings/common-settings';
import { keyRingFromSettings } from '@vantageedge/shared/tls/settings';
import type { Registry } from 'prom-client';
import { createAdminApp, type Readiness, type SnapshotFeedStatus } from './admin/admin-app.js';
import { AuthFailureLimiter } from './auth/auth-failure-limiter.js';
import { Authenticator } from './auth/authenticator.js';
import { type JwksFetchPolicy, RemoteJwksRegistry } from './auth/jwks.js';
import type { GatewayConfigStore } from './config/gateway-config-store.js';
import { GatewayIncomingMessage } from './http/body-bytes.js';
import { answerClientError, TIMEOUT_CHECK_INTERVAL_MS } from './http/client-errors.js';
import { answerContinueOnRead } from './http/expect-continue.js';
import { GatewayServerResponse } from './http/gateway-server-response.js';
import { PARSER_MAX_HEADER_LINES } from './http/header-count.js';
import { limitRequestsPerConnection } from './http/requests-per-connection.js';
import { readOnlySmallRests } from './http/unread-body-rest.js';
import { asksForWebSocket } from './http/upgrade-offer.js';
import { viaEntries } from './http/via.js';
import { answerConnect } from './listeners/connect-requests.js';
import { startEdgeProtocols } from './listeners/edge-protocols.js';
import { limitHttp2RequestsPerClient } from './listeners/http2-requests-per-client.js';
import { requireProxyProtocol } from './listeners/proxy-protocol.js';
import { refuseExpectation } from './listeners/refuse-expectation.js';
import { watchedByTheGateway } from './listeners/watched-connections.js';
import { AccessLog } from './observability/access-log.js';
import { fileDescriptorSink, type LineSink } from './observability/batched-line-writer.js';
import { countOnlyTenantsIn } from './observability/bound-metrics.js';
import { GatewayMetrics, NO_TENANT, namesNoRoute } from './observability/gateway-metrics.js';
import { listenerRefusalRecorder } from './observability/listener-refusals.js';
import { RequestTracing } from './observability/request-tracing.js';
import { createGatewayHandler, type UsageSink } from './pipeline/gateway-handler.js';
import type { RoutePolicy } from './pipeline/stage.js';
import { trustedProxiesFromSettings } from './proxy/client-address.js';
import { type GatewaySettings, webSocketCredentialGraceMs, webSocketsPerTenant } from './settings.js';
import { TenantCertificates } from './tls/tenant-certificates.js';
import type { OriginTlsBudget } from './upstream/origin-tls-budget.js';
import { WebSocketMetrics } from './websocket/websocket-metrics.js';
import { WebSocketProxy } from './websocket/websocket-proxy.js';

export interface StartGatewayOptions {
  config: GatewaySettings;
  store: GatewayConfigStore;
  registry: Registry;
  logger: Logger;
  /** Route policies after authentication (rate limit, cache), compiled onto every route of the store. */
  stages?: readonly RoutePolicy[];
  readiness?: () => Readiness;
  /** The config plane's view of the snapshot topic, on the admin port's /status. */
  snapshots?: () => SnapshotFeedStatus;
  /**
   * Whether every tenant's config was read (the config plane caught up with the topic once, which a
   * replica serving its snapshot file while the bus is unreachable has not); until then a host no
   * tenant holds is answered 503 config_loading, not 404. Default: always.
   */
  configLoaded?: () => boolean;
  /** True when the OpenTelemetry SDK was started (OTEL_ENABLED). */
  tracingEnabled?: boolean;
  /** Where access-log lines go; default stdout (tests read them back). */
  accessLogSink?: LineSink;
  /** The policy the upstream sets connect through: both listeners are registered as never-a-target. */
  addressPolicy?: OriginAddressPolicy;
  /** The replica's budget of each tenant's origin TLS handshakes (WebSocket upgrades are charged to it). */
  originTlsBudget?: OriginTlsBudget;
  /** The replica's remote key sets (shared with the config store's OIDC key sets). */
  remoteJwks?: RemoteJwksRegistry;
  /** Counts every answered request (usage); none when not given. */
  usage?: UsageSink;
}

export interface RunningGateway {
  readonly trafficServer: Server;
  readonly adminServer: Server;
  readonly trafficPort: number;
  readonly adminPort: number;
  /** The TLS listener (HTTPS and HTTP/2), when GATEWAY_TLS_PORT is set. */
  readonly tlsServer: Http2SecureServer | undefined;
  readonly tlsPort: number | undefined;
  /** True once draining began: /readyz answers 503 and every response closes its connection. */
  readonly draining: boolean;
  /**
   * Begins the drain: /readyz answers 503 at once, the traffic listener keeps accepting, and each
   * response from now on closes its connection so clients and load balancers reconnect elsewhere.
   */
  startDraining(): void;
  /**
   * Stops accepting, lets requests in flight finish for up to `timeoutMs` (default
   * GATEWAY_SHUTDOWN_TIMEOUT_SECONDS), then closes the connections that remain. Drains first.
   */
  close(options?: { timeoutMs?: number }): Promise<void>;
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/**
 * The replica's remote key sets under GATEWAY_JWKS_COOLDOWN_SECONDS, with their fetch counter. The
 * other fetch bounds are fixed; `policy` (tests only) replaces some of them.
 */
export function remoteJwksFromConfig(
  config: GatewaySettings,
  registry: Registry,
  logger: StructuredLogger,
  addressPolicy?: OriginAddressPolicy,
  policy: Partial<JwksFetchPolicy> = {},
): RemoteJwksRegistry {
  return new RemoteJwksRegistry({
    policy: { cooldownMs: config.GATEWAY_JWKS_COOLDOWN_SECONDS * 1000, ...policy },
    registry,
    logger,
    ...(addressPolicy ? { addressPolicy } : {}),
  });
}

/** Starts the traffic listener (node:http + the pipeline) and the admin listener (express). */
export async function startGateway(options: StartGatewayOptions): Promise<RunningGateway> {
  const { config, store, registry, logger } = options;
  const metrics = new GatewayMetrics(registry, {
    perRoute: config.GATEWAY_METRICS_PER_ROUTE,
    maxRouteSeries: config.GATEWAY_METRICS_MAX_ROUTE_SERIES,
    routeSeriesTenantShare: config.GATEWAY_METRICS_ROUTE_SERIES_TENANT_SHARE,
  });
  // A removed tenant's or route's series left /metrics with it; what it still had in flight brings none back.
  countOnlyTenantsIn(
    registry,
    (tenant, route) =>
      tenant === NO_TENANT ||
      (route === undefined || namesNoRoute(route) ? store.holds(tenant) : store.holdsRoute(tenant, route)),
  );
  // Access lines are info-level lines of their own writer: LOG_LEVEL=warn turns them off, as before.
  const accessLog = logger.isInfoEnabled()
    ? new AccessLog({
        sink: options.accessLogSink ?? fileDescriptorSink(1),
        sampleRate: config.GATEWAY_ACCESS_LOG_SAMPLE_RATE,
        maxBufferedChars: config.GATEWAY_ACCESS_LOG_BUFFER_BYTES,
        registry,
      })
    : undefined;
  // Requests the listeners refuse before the pipeline (parse errors, timeouts, Expect, CONNECT).
  const trustedProxies = trustedProxiesFromSettings(config);
  if (trustedProxies.warning !== undefined) logger.warn(trustedProxies.warning);
  const recordRefusal = listenerRefusalRecorder({
    metrics,
    accessLog,
    clientAddresses: new ClientAddressResolver(trustedProxies.ranges),
  });
  const authenticator = new Authenticator({
    apiKeyPepper: config.API_KEY_PEPPER,
    clerk: {
      jwtKey: config.CLERK_JWT_KEY,
      secretKey: config.CLERK_SECRET_KEY,
      apiUrl: config.CLERK_API_URL,
      authorizedParties: config.CLERK_AUTHORIZED_PARTIES,
      issuer: clerkIssuerOf(config),
    },
    tokenCacheSize: config.GATEWAY_TOKEN_CACHE_SIZE,
    tokenCacheBytes: config.GATEWAY_TOKEN_CACHE_BYTES,
    tokenCacheTenantShare: config.GATEWAY_TOKEN_CACHE_TENANT_SHARE,
    apiKeyCacheSize: config.GATEWAY_API_KEY_CACHE_SIZE,
    allowDevTokens: config.VANTAGEEDGE_DEV_MODE,
    remoteJwks: options.remoteJwks ?? remoteJwksFromConfig(config, registry, logger, options.addressPolicy),
    failureLimiter: new AuthFailureLimiter({
      maxPerMinute: config.GATEWAY_AUTH_FAILURES_PER_MINUTE,
      maxPerMinuteAllTenants: config.GATEWAY_AUTH_FAILURES_PER_MINUTE_ALL_TENANTS,
      ipv6Prefix: config.GATEWAY_CLIENT_IPV6_PREFIX,
      registry,
    }),
  });
  // Tenant certificates follow the snapshots the store applies (a policy without route stages), served by SNI.
  const tenantCertificates = new TenantCertificates({
    keyRing: keyRingFromSettings(config),
    onWarning: (tenantId, problem) => logger.warn('certificate problem', { tenant_id: tenantId, problem }),
  });
  const tracing = new RequestTracing(options.tracingEnabled ?? false);
  const via = viaEntries(config.GATEWAY_VIA);
  const handler = createGatewayHandler({
    store,
    authenticator,
    maxBodyBytes: config.GATEWAY_MAX_BODY_BYTES,
    // Every listener (HTTP/1.1, HTTPS/1.1, HTTP/2 and h2c) answers too many header lines the same way.
    maxHeaders: config.GATEWAY_MAX_HEADERS_COUNT,
    encodedSlashes: config.GATEWAY_ENCODED_SLASHES,
    trustedProxies: trustedProxies.ranges,
    baseDomains: platformBaseDomains(config),
    stages: [...(options.stages ?? []), tenantCertificates],
    metrics,
    ...(accessLog ? { accessLog } : {}),
    ...(options.usage ? { usage: options.usage } : {}),
    tracing,
    retryBufferBytes: config.GATEWAY_RETRY_BUFFER_BYTES,
    maxLoopHops: config.GATEWAY_MAX_LOOP_HOPS,
    via,
    configLoaded: options.configLoaded,
  });

  // What one client address holds on both ports: its connections, and its HTTP/2 requests beside the
  // first of each session.
  const clientSlots = new ClientSlots({
    limit: config.GATEWAY_MAX_CONNECTIONS_PER_CLIENT,
    trustedProxies: trustedProxies.ranges,
    ipv6Prefix: config.GATEWAY_CLIENT_IPV6_PREFIX,
  });
  const limitPerClient = limitHttp2RequestsPerClient(clientSlots, () => metrics.refusedClientRequests.inc());
  // The listeners' events that hand over a connection's requests take turns in one queue per connection,
  // then count in its request budget as their turn comes: those past it wait within the queue's bounds.
  const perConnection = limitRequestsPerConnection(config.GATEWAY_MAX_REQUESTS_PER_CONNECTION);
  const inTurn = requestsInTurn();
  const admitted = inTurn(perConnection(readOnlySmallRests(limitPerClient(handler))));
  const trafficServer = createServer(
    {
      IncomingMessage: GatewayIncomingMessage,
      ServerResponse: GatewayServerResponse,
      maxHeaderSize: config.GATEWAY_MAX_HEADER_BYTES,
      // The handler refuses an HTTP/1.1 request without Host itself, with an error code (omitsRequiredHost).
      requireHostHeader: false,
      shouldUpgradeCallback: asksForWebSocket,
      headersTimeout: config.GATEWAY_HEADERS_TIMEOUT_MS,
      requestTimeout: config.GATEWAY_REQUEST_TIMEOUT_MS,
      keepAliveTimeout: config.GATEWAY_KEEP_ALIVE_TIMEOUT_MS,
      connectionsCheckingInterval: Math.min(TIMEOUT_CHECK_INTERVAL_MS, config.GATEWAY_HEADERS_TIMEOUT_MS),
    },
    admitted,
  );
  // Node 24's parser turns a count overflow into a parse error that cannot say which limit was hit, so the
  // parser's bound sits above the largest allowed setting and the handler answers `too_many_headers` itself.
  trafficServer.maxHeadersCount = PARSER_MAX_HEADER_LINES;
  trafficServer.maxConnections = config.GATEWAY_MAX_CONNECTIONS;
  // The request budget is the handler's (requests-per-connection.ts): node's answers requests past it 503.
  trafficServer.maxRequestsPerSocket = 0;
  trafficServer.on('connection', (socket: Socket) => {
    watchedByTheGateway(socket);
    metrics.activeConnections.inc();
    socket.once('close', () => metrics.activeConnections.dec());
  });
  trafficServer.on('drop', () => metrics.droppedConnections.inc());
  trafficServer.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) =>
    answerClientError(error, socket, recordRefusal),
  );
  limitIdleKeepAlive(trafficServer, {
    keepAliveTimeoutMs: config.GATEWAY_KEEP_ALIVE_TIMEOUT_MS,
    headersTimeoutMs: config.GATEWAY_HEADERS_TIMEOUT_MS,
  });
  const websockets = new WebSocketProxy({
    store,
    authenticator,
    encodedSlashes: config.GATEWAY_ENCODED_SLASHES,
    trustedProxies: trustedProxies.ranges,
    idleTimeoutMs: config.GATEWAY_WEBSOCKET_IDLE_TIMEOUT_SECONDS * 1000,
    sendTimeoutMs: config.GATEWAY_SEND_TIMEOUT_MS,
    credentialGraceMs: webSocketCredentialGraceMs(config),
    maxHeaders: config.GATEWAY_MAX_HEADERS_COUNT,
    maxLoopHops: config.GATEWAY_MAX_LOOP_HOPS,
    via,
    configLoaded: options.configLoaded,
    maxPerTenant: webSocketsPerTenant(config),
    clientShare: config.GATEWAY_WEBSOCKET_CLIENT_SHARE,
    clientIpv6Prefix: config.GATEWAY_CLIENT_IPV6_PREFIX,
    baseDomains: platformBaseDomains(config),
    addressPolicy: options.addressPolicy,
    originTlsBudget: options.originTlsBudget,
    metrics: new WebSocketMetrics(registry),
    accessLog,
    requestMetrics: metrics,
    usage: options.usage,
    tracing,
    logger,
  });
  trafficServer.on('upgrade', websockets.handleUpgrade);
  // CONNECT is not tunnelled; over HTTP/2 an extended CONNECT for `websocket` is a WebSocket, whose
  // stream counts in its client's limit as the session's other requests do.
  const connect = answerConnect(limitPerClient(websockets.handleExtendedConnect), recordRefusal);
  // HTTP/2: the TLS listener (ALPN h2 and HTTPS/1.1) and cleartext h2c, with the same handler.
  const edge = await startEdgeProtocols({
    config,
    handler: admitted,
    plainServer: trafficServer,
    store,
    registry,
    logger,
    tenantCertificates,
    onConnection: (socket) => {
      watchedByTheGateway(socket);
      metrics.activeConnections.inc();
      socket.once('close', () => metrics.activeConnections.dec());
    },
    onDrop: () => metrics.droppedConnections.inc(),
    onConnect: connect,
    recordRefusal,
    configLoaded: options.configLoaded,
  });
  edge.tlsServer?.on('upgrade', websockets.handleUpgrade);
  limitSendTime(
    edge.tlsServer ? [trafficServer, edge.tlsServer] : [trafficServer],
    config.GATEWAY_SEND_TIMEOUT_MS,
    { takesUpgrades: true },
  );
  limitConnectionsPerClient(
    edge.tlsServer ? [trafficServer, edge.tlsServer] : [trafficServer],
    {
      limit: config.GATEWAY_MAX_CONNECTIONS_PER_CLIENT,
      trustedProxies: trustedProxies.ranges,
      onDrop: () => metrics.droppedClientConnections.inc(),
    },
    clientSlots,
  );
  // Off, nothing stands between node's accept and the listeners.
  if (config.GATEWAY_PROXY_PROTOCOL === 'on') {
    requireProxyProtocol(edge.tlsServer ? [trafficServer, edge.tlsServer] : [trafficServer], {
      trustedProxies: trustedProxies.ranges,
      timeoutMs: config.GATEWAY_HEADERS_TIMEOUT_MS,
      recordRefusal,
      onAccepted: edge.connectionBudget?.hold,
    });
  }
  trafficServer.on('connect', connect);
  edge.tlsServer?.on('connect', connect); // HTTPS/1.1 and HTTP/2 over TLS
  const expectationRefused = inTurn(perConnection(refuseExpectation(recordRefusal)));
  trafficServer.on('checkExpectation', expectationRefused);
  edge.tlsServer?.on('checkExpectation', expectationRefused);
  answerContinueOnRead(trafficServer);
  if (edge.tlsServer) answerContinueOnRead(edge.tlsServer);

  let draining = false;
  // Scrapes and probes only: a client trickling a head is cut in seconds, as on every metrics listener.
  const adminServer = createScrapeListener(
    createAdminApp({
      store,
      registry,
      replicaId: config.GATEWAY_REPLICA_ID,
      readiness: () =>
        draining ? { ready: false, reason: 'shutting down' } : (options.readiness?.() ?? { ready: true }),
      ...(options.snapshots ? { snapshots: options.snapshots } : {}),
      ...(config.GATEWAY_ADMIN_TOKEN ? { adminToken: config.GATEWAY_ADMIN_TOKEN } : {}),
    }),
  );

  const trafficPort = await listen(trafficServer, config.GATEWAY_PORT, config.GATEWAY_HOST);
  const adminPort = await listen(adminServer, config.GATEWAY_ADMIN_PORT, config.GATEWAY_ADMIN_HOST);
  options.addressPolicy?.addOwnListener({ host: config.GATEWAY_HOST, port: trafficPort });
  options.addressPolicy?.addOwnListener({ host: config.GATEWAY_ADMIN_HOST, port: adminPort });
  const tlsPort = await edge.listen();
  if (tlsPort !== undefined)
    options.addressPolicy?.addOwnListener({ host: config.GATEWAY_HOST, port: tlsPort });
  logger.info('gateway listening', {
    traffic_port: trafficPort,
    admin_port: adminPort,
    admin_host: config.GATEWAY_ADMIN_HOST,
    ...(tlsPort === undefined ? {} : { tls_port: tlsPort }),
    ...(config.GATEWAY_PROXY_PROTOCOL === 'on' ? { proxy_protocol: true } : {}),
  });

  const startDraining = () => {
    if (draining) return;
    draining = true;
    closeConnectionsAfterResponses(trafficServer);
    edge.startDraining();
  };
  let closing: Promise<void> | undefined;

  return {
    trafficServer,
    adminServer,
    trafficPort,
    adminPort,
    tlsServer: edge.tlsServer,
    tlsPort,
    get draining() {
      return draining;
    },
    startDraining,
    close({ timeoutMs = config.GATEWAY_SHUTDOWN_TIMEOUT_SECONDS * 1000 } = {}) {
      closing ??= (async () => {
        startDraining();
        // After the drain period: open WebSockets are told 1001 (going away), then requests finish.
        await websockets.closeAll();
        // Upgrades waiting for their origin are past closeAllConnections' reach: cut at the same deadline.
        const cutUpgrades = setTimeout(() => websockets.cutPendingUpgrades(), timeoutMs);
        const [cut] = await Promise.all([closeGracefully(trafficServer, timeoutMs), edge.close(timeoutMs)]);
        clearTimeout(cutUpgrades);
        if (cut > 0)
          logger.warn('shutdown timeout: closed connections with requests still in flight', {
            connections: cut,
            timeout_ms: timeoutMs,
          });
        // The admin listener last, so /readyz keeps answering 503 while traffic drains.
        await closeGracefully(adminServer, 0);
        // Every access-log line of the requests that finished is written before the process exits.
        await accessLog?.flush();
      })();
      return closing;
    },
  };
}
