import { createServer, type Server } from 'node:http';
import type { Http2SecureServer } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from '@vantageedge/shared/observability/logger';
import type { Registry } from 'prom-client';
import { createAdminApp, type Readiness } from './admin/admin-app.js';
import { AuthFailureLimiter } from './auth/auth-failure-limiter.js';
import { Authenticator } from './auth/authenticator.js';
import { RemoteJwksRegistry } from './auth/jwks.js';
import type { GatewayConfigStore } from './config/gateway-config-store.js';
import type { GatewayConfig } from './config.js';
import { startEdgeProtocols } from './listeners/edge-protocols.js';
import { AccessLog } from './observability/access-log.js';
import { GatewayMetrics } from './observability/gateway-metrics.js';
import { RequestTracing } from './observability/request-tracing.js';
import type { RequestStage } from './pipeline/exchange.js';
import { createGatewayHandler } from './pipeline/gateway-handler.js';
import type { TenantCertificates } from './tls/tenant-certificates.js';
import { WebSocketMetrics } from './websocket/websocket-metrics.js';
import { WebSocketProxy } from './websocket/websocket-proxy.js';

export interface StartGatewayOptions {
  config: GatewayConfig;
  store: GatewayConfigStore;
  registry: Registry;
  logger: Logger;
  /** Rate limit and cache stages, run between auth and the proxy. */
  stages?: readonly RequestStage[];
  readiness?: () => Readiness;
  /** True when the OpenTelemetry SDK was started (OTEL_ENABLED). */
  tracingEnabled?: boolean;
  /** Tenant certificates compiled from snapshots (a compile hook of the store), served by SNI. */
  tenantCertificates?: TenantCertificates;
  /** The replica's remote key sets (shared with the config store's OIDC key sets). */
  remoteJwks?: RemoteJwksRegistry;
}

export interface RunningGateway {
  readonly trafficServer: Server;
  readonly adminServer: Server;
  readonly trafficPort: number;
  readonly adminPort: number;
  /** The TLS listener (HTTPS and HTTP/2), when GATEWAY_TLS_PORT is set. */
  readonly tlsServer: Http2SecureServer | undefined;
  readonly tlsPort: number | undefined;
  close(): Promise<void>;
}

const HEADERS_TOO_LARGE_BODY =
  '{"error":{"code":"headers_too_large","message":"the request headers are too large"}}';
const CLIENT_ERROR_431 =
  'HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: application/json\r\nConnection: close\r\n' +
  `Content-Length: ${Buffer.byteLength(HEADERS_TOO_LARGE_BODY)}\r\n\r\n${HEADERS_TOO_LARGE_BODY}`;

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

/** The replica's remote key sets under GATEWAY_JWKS_COOLDOWN_SECONDS, with their fetch counter. */
export function remoteJwksFromConfig(config: GatewayConfig, registry: Registry): RemoteJwksRegistry {
  return new RemoteJwksRegistry({
    policy: { cooldownMs: config.GATEWAY_JWKS_COOLDOWN_SECONDS * 1000 },
    registry,
  });
}

/** Starts the traffic listener (node:http + the pipeline) and the admin listener (express). */
export async function startGateway(options: StartGatewayOptions): Promise<RunningGateway> {
  const { config, store, registry, logger } = options;
  const metrics = new GatewayMetrics(registry, { perRoute: config.GATEWAY_METRICS_PER_ROUTE });
  const authenticator = new Authenticator({
    apiKeyPepper: config.API_KEY_PEPPER,
    clerk: {
      jwtKey: config.CLERK_JWT_KEY,
      secretKey: config.CLERK_SECRET_KEY,
      apiUrl: config.CLERK_API_URL,
      authorizedParties: config.CLERK_AUTHORIZED_PARTIES,
    },
    tokenCacheSize: config.GATEWAY_TOKEN_CACHE_SIZE,
    allowDevTokens: config.VANTAGEEDGE_DEV_MODE,
    remoteJwks: options.remoteJwks ?? remoteJwksFromConfig(config, registry),
    failureLimiter: new AuthFailureLimiter({
      maxPerMinute: config.GATEWAY_AUTH_FAILURES_PER_MINUTE,
      registry,
    }),
  });
  const handler = createGatewayHandler({
    store,
    authenticator,
    maxBodyBytes: config.GATEWAY_MAX_BODY_BYTES,
    encodedSlashes: config.GATEWAY_ENCODED_SLASHES,
    trustProxy: config.GATEWAY_TRUST_PROXY,
    stages: options.stages ?? [],
    metrics,
    accessLog: new AccessLog(logger, config.GATEWAY_ACCESS_LOG_SAMPLE_RATE),
    tracing: new RequestTracing(options.tracingEnabled ?? false),
  });

  const trafficServer = createServer({ maxHeaderSize: config.GATEWAY_MAX_HEADER_BYTES }, handler);
  trafficServer.on('connection', (socket: Socket) => {
    metrics.activeConnections.inc();
    socket.once('close', () => metrics.activeConnections.dec());
  });
  trafficServer.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable) return socket.destroy();
    if (error.code === 'HPE_HEADER_OVERFLOW') socket.end(CLIENT_ERROR_431);
    else socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  const websockets = new WebSocketProxy({
    store,
    authenticator,
    stages: options.stages ?? [],
    encodedSlashes: config.GATEWAY_ENCODED_SLASHES,
    trustProxy: config.GATEWAY_TRUST_PROXY,
    idleTimeoutMs: config.GATEWAY_WEBSOCKET_IDLE_TIMEOUT_SECONDS * 1000,
    metrics: new WebSocketMetrics(registry),
    logger,
  });
  trafficServer.on('upgrade', websockets.handleUpgrade);
  // HTTP/2: TLS listener (ALPN h2 + HTTP/1.1) and cleartext h2c, with the same handler.
  const edge = await startEdgeProtocols({
    config,
    handler,
    plainServer: trafficServer,
    store,
    registry,
    logger,
    ...(options.tenantCertificates ? { tenantCertificates: options.tenantCertificates } : {}),
    onConnection: (socket) => {
      metrics.activeConnections.inc();
      socket.once('close', () => metrics.activeConnections.dec());
    },
  });

  const adminServer = createServer(
    createAdminApp({
      store,
      registry,
      replicaId: config.GATEWAY_REPLICA_ID,
      ...(options.readiness ? { readiness: options.readiness } : {}),
    }),
  );

  const trafficPort = await listen(trafficServer, config.GATEWAY_PORT, config.GATEWAY_HOST);
  const adminPort = await listen(adminServer, config.GATEWAY_ADMIN_PORT, config.GATEWAY_HOST);
  edge.tlsServer?.on('upgrade', websockets.handleUpgrade);
  const tlsPort = await edge.listen();
  logger.info('gateway listening', {
    traffic_port: trafficPort,
    admin_port: adminPort,
    ...(tlsPort === undefined ? {} : { tls_port: tlsPort }),
  });

  return {
    trafficServer,
    adminServer,
    trafficPort,
    adminPort,
    tlsServer: edge.tlsServer,
    tlsPort,
    async close() {
      // Open WebSockets would hold the listeners open: they are told 1001 (going away) first.
      await websockets.closeAll();
      await Promise.all([closeServer(trafficServer), edge.close(), closeServer(adminServer)]);
    },
  };
}
