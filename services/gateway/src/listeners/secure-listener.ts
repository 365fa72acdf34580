import { constants as cryptoConstants } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createSecureServer, type Http2SecureServer, type ServerHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { closeIdleConnections, spareResponsesBeingWritten } from '@vantageedge/shared/http/graceful-close';
import { limitIdleKeepAlive } from '@vantageedge/shared/http/idle-keep-alive';
import { hostHeaderName } from '@vantageedge/shared/routing/host-lookup';
import { GatewayHttp2ServerRequest, GatewayIncomingMessage } from '../http/body-bytes.js';
import { answerClientError, TIMEOUT_CHECK_INTERVAL_MS } from '../http/client-errors.js';
import { GatewayHttp2ServerResponse } from '../http/gateway-http2-response.js';
import { GatewayServerResponse } from '../http/gateway-server-response.js';
import { HTTP2_MAX_HEADER_PAIRS, PARSER_MAX_HEADER_LINES } from '../http/header-count.js';
import { servedForgottenCertificate, servedTenantCertificates } from '../http/misdirected-request.js';
import { asksForWebSocket } from '../http/upgrade-offer.js';
import type { RecordListenerRefusal } from '../observability/listener-refusals.js';
import type { CertificateSelector } from '../tls/certificate-selector.js';
import type { DefaultCertificate, ServedCertificate } from '../tls/default-certificate.js';
import type { TlsMetrics } from '../tls/tls-metrics.js';
import { TLS_POLICY } from '../tls/tls-policy.js';
import { HTTP2_SESSION_PROTECTION, type Http2SessionLimits, Http2Sessions } from './http2-sessions.js';
import type { ProtocolMetrics } from './protocol-metrics.js';

export type TrafficHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface SecureListenerOptions {
  /** The request pipeline; HTTP/2 requests arrive as node's compatibility objects. */
  handler: TrafficHandler;
  selector: CertificateSelector;
  defaultCertificate: DefaultCertificate;
  maxHeaderBytes: number;
  maxConcurrentStreams: number;
  /** SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441): HTTP/2 clients may open WebSockets on a stream. */
  enableConnectProtocol?: boolean;
  /** HTTP/2 sessions: idle timeout, request timeout per stream, streams per session. */
  http2: Http2SessionLimits;
  /**
   * HTTP/1.1 over TLS: the same timeouts as the plain listener (a request not received in time is answered
   * 408 — node's own handling, as on the plain listener). A connection's request budget is the handler's,
   * as on the plain listener (see requests-per-connection.ts).
   */
  http1?: {
    headersTimeoutMs?: number;
    requestTimeoutMs?: number;
    keepAliveTimeoutMs?: number;
  };
  tlsMetrics?: TlsMetrics;
  protocolMetrics?: ProtocolMetrics;
  /** Open client connections (the gateway's active-connections gauge). */
  onConnection?: (socket: TLSSocket) => void;
  /** Requests refused before the pipeline: HTTPS/1.1 parse errors and timeouts. */
  recordRefusal?: RecordListenerRefusal;
  /**
   * false: every handshake is a full one (no session tickets), for a runtime that resumes a session
   * under another server name than the one it was made for (see cross-name-resumption.ts). Default true.
   */
  resumeSessions?: boolean;
}

export interface SecureListener {
  readonly server: Http2SecureServer;
  listen(port: number, host: string): Promise<number>;
  /** From now on HTTP/1.1 responses close their connection and HTTP/2 sessions get GOAWAY. */
  startDraining(): void;
  /**
   * Stops accepting, lets requests in flight finish for up to `timeoutMs`, then closes what is left.
   * Resolves with how many connections had to be cut.
   */
  close(timeoutMs: number): Promise<number>;
}

/** ALPN protocols in the server's order of preference. */
const ALPN_PROTOCOLS = ['h2', 'http/1.1', 'http/1.0'] as const;

/**
 * The TLS listener: one port for HTTPS/1.1 and HTTP/2 (ALPN h2, with http/1.1 and http/1.0 as fallback), SNI
 * choosing between tenant certificates and the default one, TLS 1.2+ with modern ciphers. Both
 * protocols run the same handler, so the pipeline, its stages and its metrics are the same.
 */
export function createSecureListener(options: SecureListenerOptions): SecureListener {
  const initial = options.defaultCertificate.current;
  // Sessions are resumed from tickets only (node keeps no server-side session cache without
  // `resumeSession` listeners), and a handshake's options are those of this no-SNI context: without
  // tickets no session is resumed, whatever context SNI picks.
  const resumption: { secureOptions?: number } =
    options.resumeSessions === false ? { secureOptions: cryptoConstants.SSL_OP_NO_TICKET } : {};
  const server = createSecureServer({
    ...TLS_POLICY,
    ...resumption,
    // Clients that send no SNI get the default certificate (SNICallback is not called for them).
    cert: initial.certificatePem,
    key: initial.privateKeyPem,
    SNICallback: options.selector.sniCallback,
    allowHTTP1: true,
    // The requests count their body bytes, the responses theirs (the access log's bytes_*).
    Http1IncomingMessage: GatewayIncomingMessage,
    Http1ServerResponse: GatewayServerResponse,
    Http2ServerRequest: GatewayHttp2ServerRequest,
    // HTTP/2 responses drop the connection-specific fields HTTP/2 forbids (node throws on them).
    Http2ServerResponse: GatewayHttp2ServerResponse,
    // The first of h2, http/1.1 and http/1.0 the client offers (nginx's list: curl --http1.0 offers
    // only http/1.0, which node's own h2 + http/1.1 list refuses with a fatal alert); none of them: the
    // no_application_protocol alert RFC 7301 asks for.
    ALPNCallback: ({ protocols }: { protocols: string[] }) =>
      ALPN_PROTOCOLS.find((protocol) => protocols.includes(protocol)),
    // A connection that never completes its handshake holds a GATEWAY_MAX_CONNECTIONS slot of both
    // ports: it gets the headers timeout, not node's two minutes.
    ...(options.http1?.headersTimeoutMs === undefined
      ? {}
      : { handshakeTimeout: options.http1.headersTimeoutMs }),
    settings: {
      maxConcurrentStreams: options.maxConcurrentStreams,
      maxHeaderListSize: options.maxHeaderBytes,
      enableConnectProtocol: options.enableConnectProtocol ?? false,
    },
    ...HTTP2_SESSION_PROTECTION,
    // Too many header lines are the handler's 431, for HTTP/2 as for HTTP/1.1 (see header-count.ts).
    maxHeaderListPairs: HTTP2_MAX_HEADER_PAIRS,
    // HTTP/1.1 over TLS (node ≥ 22 applies these to the fallback connections).
    maxHeaderSize: options.maxHeaderBytes,
    // The handler refuses an HTTP/1.1 request without Host itself, with an error code (omitsRequiredHost).
    requireHostHeader: false,
    ...(options.http1?.headersTimeoutMs === undefined
      ? {}
      : { headersTimeout: options.http1.headersTimeoutMs }),
    ...(options.http1?.requestTimeoutMs === undefined
      ? {}
      : { requestTimeout: options.http1.requestTimeoutMs }),
    ...(options.http1?.keepAliveTimeoutMs === undefined
      ? {}
      : { keepAliveTimeout: options.http1.keepAliveTimeoutMs }),
  } as Parameters<typeof createSecureServer>[0]);

  // HTTPS/1.1 connections read these from this server like the plain listener's from its own (node's
  // HTTP/1.1 connection handling runs with the TLS server as its server): the header-line bound (see
  // header-count.ts), no request budget of node's (it answers requests past it a bare 503; the handler
  // keeps the budget, see requests-per-connection.ts), how often the headers/request timeouts are
  // checked, and which upgrades are taken over (the HTTP/2 server ignores the option of that name).
  const http1Server = server as unknown as {
    maxHeadersCount: number;
    maxRequestsPerSocket: number;
    connectionsCheckingInterval: number;
    shouldUpgradeCallback: (req: IncomingMessage) => boolean;
  };
  http1Server.maxHeadersCount = PARSER_MAX_HEADER_LINES;
  http1Server.shouldUpgradeCallback = asksForWebSocket;
  http1Server.maxRequestsPerSocket = 0;
  if (options.http1?.headersTimeoutMs !== undefined) {
    http1Server.connectionsCheckingInterval = Math.min(
      TIMEOUT_CHECK_INTERVAL_MS,
      options.http1.headersTimeoutMs,
    );
  }
  const sessions = new Http2Sessions(options.http2);
  const http1Sockets = new Set<TLSSocket>();
  let draining = false;

  server.on('session', (session: ServerHttp2Session) => sessions.track(session));
  // Before node's own listener starts the connection's HTTP/2 session or HTTP/1.1 parser: its requests
  // are checked against a tenant certificate (see isMisdirected).
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    // Node hands only connections without ALPN or with http/1.1 to its HTTP/1 parser (any other name
    // would get an HTTP/2 session); that parser reads HTTP/1.0 requests as it does on the plain port.
    if (socket.alpnProtocol === 'http/1.0') socket.alpnProtocol = 'http/1.1';
    // The certificate the SNI callback chose for this client's signature algorithms. A resumed session
    // presents none and names no signature algorithms: it was made with one of the host's certificates
    // (one per key type), which one is not known, so its requests must be covered by each of them.
    // A session is resumed only for the server name it was made for (none for none): the runtime
    // refuses it under another, or resumeSessions is off (see cross-name-resumption.ts).
    const servername = socket.servername || undefined;
    if (!socket.isSessionReused()) {
      const served = options.selector.chosenFor(socket);
      if (served !== undefined) servedTenantCertificates(socket, served);
      return;
    }
    const served = options.selector.tenantCertificatesFor(servername) ?? [];
    if (served.length > 0) servedTenantCertificates(socket, served);
    else if (servername !== undefined && !options.selector.defaultCertificateCovers(servername)) {
      servedForgottenCertificate(socket, hostHeaderName(servername) ?? servername.toLowerCase());
    }
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    options.onConnection?.(socket);
    // A client-initiated TLS 1.2 renegotiation is a full handshake (a private-key operation) on a
    // connection the per-client limit and the handshake timeout have already let through: refused (see
    // clientError below), as nginx refuses it; node refuses it itself only for HTTP/2.
    socket.disableRenegotiation();
    const h2 = socket.alpnProtocol === 'h2';
    options.protocolMetrics?.connected('tls', h2 ? 'h2' : 'http/1.1');
    if (h2) return;
    http1Sockets.add(socket);
    socket.once('close', () => http1Sockets.delete(socket));
  });
  // An upgraded socket (a WebSocket) is no longer an HTTP/1.1 connection with requests in flight: the
  // gateway's upgrade handler owns it (1001 at the stop), so the drain must not destroy it as idle.
  server.on('upgrade', (req: IncomingMessage) => http1Sockets.delete(req.socket as TLSSocket));
  // First: node re-emits a failed handshake as `clientError`, whose answer must not be written in clear.
  server.prependListener('tlsClientError', (error: NodeJS.ErrnoException, socket: TLSSocket) => {
    options.tlsMetrics?.handshakeFailed(error);
    socket.destroy();
  });
  // HTTPS/1.1 parse errors and timeouts get the plain listener's answers (431, 408, 400); a refused
  // renegotiation gets none: its handshake is under way, the connection is cut.
  server.on('clientError', (error: NodeJS.ErrnoException, socket: TLSSocket) => {
    if (error.code === 'ERR_TLS_RENEGOTIATION_DISABLED') socket.destroy();
    else answerClientError(error, socket, options.recordRefusal);
  });
  const { keepAliveTimeoutMs, headersTimeoutMs } = options.http1 ?? {};
  if (keepAliveTimeoutMs !== undefined && headersTimeoutMs !== undefined) {
    limitIdleKeepAlive(server as unknown as Parameters<typeof limitIdleKeepAlive>[0], {
      keepAliveTimeoutMs,
      headersTimeoutMs,
    });
  }
  const closeWhenDraining = (req: IncomingMessage, res: ServerResponse) => {
    if (draining && req.httpVersionMajor === 1) res.shouldKeepAlive = false;
  };
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    closeWhenDraining(req, res);
    options.handler(req, res);
  });
  // A request with an `Expect` node does not know comes as `checkExpectation`, not `request`, once the
  // server has a listener for it (without one node answers 417 itself): its answer closes too.
  const followExpectations = (event: string | symbol) => {
    if (event !== 'checkExpectation') return;
    server.off('newListener', followExpectations);
    server.prependListener('checkExpectation', closeWhenDraining);
  };
  server.on('newListener', followExpectations);

  // The no-SNI context follows the default certificate (SNI handshakes read it per handshake).
  options.defaultCertificate.onChange((certificate: ServedCertificate) =>
    server.setSecureContext({
      ...TLS_POLICY,
      ...resumption,
      cert: certificate.certificatePem,
      key: certificate.privateKeyPem,
    }),
  );

  const startDraining = () => {
    if (draining) return;
    draining = true;
    // Idle HTTP/1.1 connections stay open: the next request on one is answered with `Connection: close`
    // (as on the plain port), where closing it now would meet a request already on its way.
    sessions.closeGracefully();
  };

  return {
    server,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve((server.address() as AddressInfo).port);
        });
      });
    },
    startDraining,
    async close(timeoutMs) {
      startDraining();
      spareResponsesBeingWritten(server);
      const stopped = new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
      });
      const deadline = Date.now() + timeoutMs;
      // HTTP/1.1 sockets close as their last response is written; sweep the ones that became idle, as
      // on the plain port: no response going out, and no request begun (a head of which a byte has
      // arrived, pipelined behind an answer or not, is a request the stop must answer rather than cut).
      while (http1Sockets.size > 0 && Date.now() < deadline) {
        closeIdleConnections(server);
        await new Promise((r) => setTimeout(r, 20));
      }
      let cut = http1Sockets.size;
      for (const socket of http1Sockets) socket.destroy();
      cut += await sessions.closed(Math.max(0, deadline - Date.now()));
      await stopped;
      return cut;
    },
  };
}
