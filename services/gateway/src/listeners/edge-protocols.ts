import type { Server } from 'node:http';
import { createServer as createH2cServer, type Http2SecureServer, type ServerHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { Logger } from '@vantageedge/shared/observability/logger';
import type { Registry } from 'prom-client';
import { GatewayHttp2ServerRequest } from '../http/body-bytes.js';
import { answerContinueOnRead } from '../http/expect-continue.js';
import { GatewayHttp2ServerResponse } from '../http/gateway-http2-response.js';
import { HTTP2_MAX_HEADER_PAIRS } from '../http/header-count.js';
import type { RecordListenerRefusal } from '../observability/listener-refusals.js';
import type { TenantResolver } from '../pipeline/gateway-handler.js';
import type { GatewaySettings } from '../settings.js';
import { CertificateSelector } from '../tls/certificate-selector.js';
import { resumesAcrossServerNames } from '../tls/cross-name-resumption.js';
import { DefaultCertificate } from '../tls/default-certificate.js';
import type { TenantCertificates } from '../tls/tenant-certificates.js';
import { TlsMetrics } from '../tls/tls-metrics.js';
import type { ConnectListener } from './connect-requests.js';
import { type ConnectionBudget, shareConnectionBudget } from './connection-budget.js';
import { acceptH2cOn } from './h2c.js';
import { HTTP2_SESSION_PROTECTION, Http2Sessions } from './http2-sessions.js';
import { ProtocolMetrics } from './protocol-metrics.js';
import { refuseExpectation } from './refuse-expectation.js';
import { createSecureListener, type SecureListener, type TrafficHandler } from './secure-listener.js';

export interface EdgeProtocolsOptions {
  config: GatewaySettings;
  handler: TrafficHandler;
  /** The plain HTTP/1.1 listener; h2c is added to it when GATEWAY_H2C is on. */
  plainServer: Server;
  store: TenantResolver;
  registry: Registry;
  logger: Logger;
  /** Tenant certificates the config store keeps compiled (served by SNI). */
  tenantCertificates: TenantCertificates;
  /** Every accepted TLS connection (the gateway counts open connections). */
  onConnection?: (socket: Socket) => void;
  /** A TLS connection closed on arrival: GATEWAY_MAX_CONNECTIONS were open (the gateway counts them). */
  onDrop?: () => void;
  /** The `connect` listener of the h2c listener (the TLS listener's is the caller's to add). */
  onConnect: ConnectListener;
  /** Requests the listeners refuse before the pipeline (parse errors, timeouts, Expect). */
  recordRefusal?: RecordListenerRefusal;
  /** Whether every tenant's config was read: until then SNI waits for a custom domain's certificate. */
  configLoaded?: (() => boolean) | undefined;
}

export interface EdgeProtocols {
  readonly tlsServer: Http2SecureServer | undefined;
  readonly defaultCertificate: DefaultCertificate | undefined;
  /** GATEWAY_MAX_CONNECTIONS shared by the plain and the TLS listener (none without a TLS listener). */
  readonly connectionBudget: ConnectionBudget | undefined;
  /** Starts the TLS listener (if configured); resolves with its port. */
  listen(): Promise<number | undefined>;
  startDraining(): void;
  /** GOAWAY to HTTP/2 sessions, the TLS listener drained and closed (h2c sessions included). */
  close(timeoutMs?: number): Promise<void>;
}

const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;
/** The longest a TLS handshake waits for its custom domain's certificate while the config is loading. */
const SNI_CONFIG_WAIT_MS = 5_000;

/**
 * HTTP/2 and TLS around the one request handler: the TLS listener on GATEWAY_TLS_PORT (ALPN h2 and
 * HTTP/1.1, SNI certificates) and cleartext h2c with prior knowledge on the plain port (GATEWAY_H2C).
 */
export async function startEdgeProtocols(options: EdgeProtocolsOptions): Promise<EdgeProtocols> {
  const { config, handler, plainServer, logger, registry } = options;
  const protocolMetrics = new ProtocolMetrics(registry);
  const http2Settings = {
    maxConcurrentStreams: config.GATEWAY_HTTP2_MAX_CONCURRENT_STREAMS,
    maxHeaderListSize: config.GATEWAY_MAX_HEADER_BYTES,
    enableConnectProtocol: config.GATEWAY_HTTP2_WEBSOCKETS,
  };
  const http2Limits = {
    idleTimeoutMs: config.GATEWAY_HTTP2_IDLE_TIMEOUT_SECONDS * 1000,
    requestTimeoutMs: config.GATEWAY_REQUEST_TIMEOUT_MS,
    maxRequests: config.GATEWAY_MAX_REQUESTS_PER_CONNECTION,
    headersTimeoutMs: config.GATEWAY_HEADERS_TIMEOUT_MS,
    maxHeaderBytes: config.GATEWAY_MAX_HEADER_BYTES,
    onOverReadBudget: () => protocolMetrics.sessionOverReadBudget(),
  };

  const h2cSessions = new Http2Sessions(http2Limits);
  if (config.GATEWAY_H2C) {
    const h2c = createH2cServer(
      {
        ...HTTP2_SESSION_PROTECTION,
        settings: http2Settings,
        maxHeaderListPairs: HTTP2_MAX_HEADER_PAIRS,
        Http2ServerRequest: GatewayHttp2ServerRequest,
        Http2ServerResponse: GatewayHttp2ServerResponse,
      },
      handler as unknown as Parameters<typeof createH2cServer>[1],
    );
    h2c.on('session', (session: ServerHttp2Session) => h2cSessions.track(session));
    h2c.on('connect', options.onConnect);
    h2c.on('checkExpectation', refuseExpectation(options.recordRefusal));
    answerContinueOnRead(h2c);
    acceptH2cOn(plainServer, h2c, {
      // A cleartext client that sends nothing is dropped before any protocol is chosen, as an HTTP/1.1
      // client that sends no complete head is.
      firstBytesTimeoutMs: config.GATEWAY_HEADERS_TIMEOUT_MS,
      onH2c: () => protocolMetrics.connected('tcp', 'h2'),
      onHttp1: () => protocolMetrics.connected('tcp', 'http/1.1'),
    });
  } else {
    plainServer.on('connection', () => protocolMetrics.connected('tcp', 'http/1.1'));
  }

  let secure: SecureListener | undefined;
  let connectionBudget: ConnectionBudget | undefined;
  let defaultCertificate: DefaultCertificate | undefined;
  if (config.GATEWAY_TLS_PORT !== undefined) {
    if (config.GATEWAY_TLS_CERT_FILE === undefined || config.GATEWAY_TLS_KEY_FILE === undefined) {
      throw new Error('GATEWAY_TLS_PORT needs GATEWAY_TLS_CERT_FILE and GATEWAY_TLS_KEY_FILE');
    }
    defaultCertificate = await DefaultCertificate.load({
      certFile: config.GATEWAY_TLS_CERT_FILE,
      keyFile: config.GATEWAY_TLS_KEY_FILE,
      reloadMs: config.GATEWAY_TLS_RELOAD_SECONDS * 1000,
      logger,
    });
    const { tenantCertificates } = options;
    const resumeSessions = !(await resumesAcrossServerNames(defaultCertificate.current));
    if (!resumeSessions) {
      logger.warn('TLS session resumption off: this runtime resumes a session under another server name', {
        node: process.version,
        openssl: process.versions.openssl,
      });
    }
    const tlsMetrics = new TlsMetrics(registry, { defaultCertificate, tenantCertificates });
    secure = createSecureListener({
      handler,
      selector: new CertificateSelector(
        options.store,
        tenantCertificates,
        defaultCertificate,
        tlsMetrics,
        options.configLoaded && {
          configLoaded: options.configLoaded,
          // Well inside the handshake timeout (the headers timeout), so the handshake still ends.
          waitMs: Math.min(SNI_CONFIG_WAIT_MS, config.GATEWAY_HEADERS_TIMEOUT_MS / 2),
        },
      ),
      defaultCertificate,
      maxHeaderBytes: config.GATEWAY_MAX_HEADER_BYTES,
      maxConcurrentStreams: config.GATEWAY_HTTP2_MAX_CONCURRENT_STREAMS,
      enableConnectProtocol: config.GATEWAY_HTTP2_WEBSOCKETS,
      http2: http2Limits,
      // HTTPS/1.1 has the plain listener's timeouts (and its clientError answers); its request budget is
      // the handler's, as on the plain listener.
      http1: {
        headersTimeoutMs: config.GATEWAY_HEADERS_TIMEOUT_MS,
        requestTimeoutMs: config.GATEWAY_REQUEST_TIMEOUT_MS,
        keepAliveTimeoutMs: config.GATEWAY_KEEP_ALIVE_TIMEOUT_MS,
      },
      tlsMetrics,
      protocolMetrics,
      resumeSessions,
      ...(options.onConnection ? { onConnection: options.onConnection } : {}),
      ...(options.recordRefusal ? { recordRefusal: options.recordRefusal } : {}),
    });
    if (options.onDrop) secure.server.on('drop', options.onDrop);
    // One GATEWAY_MAX_CONNECTIONS budget for both ports: an HTTPS/1.1 connection and an HTTP/2 session
    // (TLS or h2c) each count as one connection, like a plain HTTP/1.1 one.
    connectionBudget = shareConnectionBudget([plainServer, secure.server], config.GATEWAY_MAX_CONNECTIONS);
  }

  let closing: Promise<void> | undefined;
  return {
    tlsServer: secure?.server,
    defaultCertificate,
    connectionBudget,
    async listen() {
      if (secure === undefined || config.GATEWAY_TLS_PORT === undefined) return undefined;
      return secure.listen(config.GATEWAY_TLS_PORT, config.GATEWAY_HOST);
    },
    startDraining() {
      h2cSessions.closeGracefully();
      secure?.startDraining();
    },
    close(timeoutMs = DEFAULT_CLOSE_TIMEOUT_MS) {
      closing ??= (async () => {
        defaultCertificate?.close();
        const [h2cCut, tlsCut] = await Promise.all([
          h2cSessions.closed(timeoutMs),
          secure?.close(timeoutMs) ?? Promise.resolve(0),
        ]);
        if (h2cCut + tlsCut > 0) {
          logger.warn('shutdown timeout: closed HTTP/2 and TLS connections with requests in flight', {
            connections: h2cCut + tlsCut,
            timeout_ms: timeoutMs,
          });
        }
      })();
      return closing;
    },
  };
}
