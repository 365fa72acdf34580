import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { followsLastAnswer } from '@vantageedge/shared/http/last-on-connection';
import { afterResponsesInFlight, responseInFlight } from '@vantageedge/shared/http/responses-in-flight';
import { ClientAddressResolver } from '@vantageedge/shared/net/client-address';
import {
  DEFAULT_ORIGIN_BLOCKED_CIDRS,
  OriginAddressPolicy,
} from '@vantageedge/shared/net/origin-address-policy';
import type { Logger } from '@vantageedge/shared/observability/logger';
import type { EncodedSlashPolicy } from '@vantageedge/shared/routing/normalize-path';
import type { Authenticator } from '../auth/authenticator.js';
import type { CompiledTenant } from '../config/compiled-tenant.js';
import { GatewayServerResponse } from '../http/gateway-server-response.js';
import type { ViaEntries } from '../http/via.js';
import type { AccessLog } from '../observability/access-log.js';
import type { GatewayMetrics } from '../observability/gateway-metrics.js';
import { beginRequestTrace, type RequestTracing } from '../observability/request-tracing.js';
import { writeError } from '../pipeline/errors.js';
import { GatewayExchange } from '../pipeline/exchange.js';
import type { TenantResolver } from '../pipeline/gateway-handler.js';
import type { ExchangeRecordSinks, UsageSink } from '../pipeline/record-exchange.js';
import { CookieDomainGuard } from '../proxy/cookie-domains.js';
import type { OriginTlsBudget } from '../upstream/origin-tls-budget.js';
import { AdmissionRechecks } from './admission-rechecks.js';
import { readUntilPaired } from './early-client-bytes.js';
import { OpenWebSockets } from './open-websockets.js';
import { OriginConnectors } from './origin-connectors.js';
import { OriginHandshake, type Refusal } from './origin-handshake.js';
import { CLOSE_GRACE_MS } from './proxied-connection.js';
import { TenantWebSocketLimit } from './tenant-websocket-limit.js';
import { UpgradeCounts } from './upgrade-counts.js';
import { upgradeRecorder } from './upgrade-record.js';
import { UpgradeSteps } from './upgrade-steps.js';
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
   * GATEWAY_SEND_TIMEOUT_MS: a connection whose client or origin took none of the frames waiting for it
   * for this long is closed (1001), however much the other side sends; 0 = never.
   */
  sendTimeoutMs: number;
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
  /** GATEWAY_VIA: the Via entries appended to the upgrades forwarded to origins; default none. */
  via?: ViaEntries | undefined;
  /** Whether every tenant's config was read (see unknownHostAnswer); default always. */
  configLoaded?: (() => boolean) | undefined;
  /**
   * GATEWAY_MAX_WEBSOCKETS_PER_TENANT: open WebSockets (and upgrades waiting for their origin) one
   * tenant may hold on this replica; past it an upgrade is refused 503 websocket_limit. 0 = no limit.
   */
  maxPerTenant: number;
  /** GATEWAY_WEBSOCKET_CLIENT_SHARE: the part of its tenant's WebSockets one client may hold (429 past it). */
  clientShare?: number | undefined;
  /** GATEWAY_CLIENT_IPV6_PREFIX: the network an IPv6 client's share is counted by. */
  clientIpv6Prefix?: number | undefined;
  /** The platform base domains: an origin's Set-Cookie Domain is scoped as on every response. */
  baseDomains: readonly string[];
  /**
   * Which addresses the upgrade may connect to (ORIGIN_BLOCKED_CIDRS and the gateway's own listeners):
   * the policy the upstream sets connect through; default: the default blocked ranges.
   */
  addressPolicy?: OriginAddressPolicy | undefined;
  /** The replica's budget of each tenant's origin TLS handshakes, an upgrade's charged to its tenant. */
  originTlsBudget?: OriginTlsBudget | undefined;
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

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

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
  readonly #clientAddresses: ClientAddressResolver;
  /** Only when tracing is on. */
  readonly #tracing: RequestTracing | undefined;
  readonly #counts: UpgradeCounts;
  readonly #open: OpenWebSockets;
  readonly #rechecks: AdmissionRechecks;
  readonly #steps: UpgradeSteps;

  constructor(options: WebSocketProxyOptions) {
    this.#options = options;
    this.#records = { metrics: options.requestMetrics, accessLog: options.accessLog, usage: options.usage };
    this.#clientAddresses = new ClientAddressResolver(options.trustedProxies);
    this.#tracing = options.tracing?.enabled ? options.tracing : undefined;
    this.#counts = new UpgradeCounts(options.metrics, options.store);
    this.#open = new OpenWebSockets(options);
    this.#rechecks = new AdmissionRechecks(options, this.#open);
    const handshake = new OriginHandshake({
      connectors: new OriginConnectors(
        options.addressPolicy ?? new OriginAddressPolicy(DEFAULT_ORIGIN_BLOCKED_CIDRS),
        options.logger,
        options.originTlsBudget,
      ),
      cookieDomains: new CookieDomainGuard(options.baseDomains, options.store),
      counts: this.#counts,
      open: this.#open,
      rechecks: this.#rechecks,
      tracing: this.#tracing,
    });
    this.#steps = new UpgradeSteps(options, {
      perTenant: new TenantWebSocketLimit({
        limit: options.maxPerTenant,
        clientShare: options.clientShare,
        trustedProxies: options.trustedProxies,
        ipv6Prefix: options.clientIpv6Prefix,
      }),
      counts: this.#counts,
      open: this.#open,
      handshake,
    });
  }

  get openConnections(): number {
    return this.#open.size;
  }

  /** As node's `upgrade` event listener (plain and TLS listeners). */
  readonly handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // node stops listening for the connection's errors as it hands it over: from here on, an error
    // nobody hears (a client's reset) would end the replica's process.
    socket.on('error', () => socket.destroy());
    // Pipelined behind a request refused for its framing: the connection closes once that is answered.
    if (followsLastAnswer(req)) return;
    if (!responseInFlight(socket)) {
      this.#accept(req, socket, head);
      return;
    }
    // Pipelined behind requests still being answered (node hands the connection over at once): their
    // responses go out first, whole, as HTTP/1.1 orders answers; the upgrade's answer is written after.
    this.#open.addPending(socket);
    socket.once('close', () => this.#open.deletePending(socket));
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
    this.#open.addPending(stream);
    this.#begin(
      req as unknown as IncomingMessage,
      res as unknown as ServerResponse,
      stream,
      readUntilPaired(stream, Buffer.alloc(0)),
    );
  };

  /** An upgrade whose connection carries no other answer: from here on the connection is the upgrade's. */
  #accept(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#open.addPending(socket);
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
    const exchange = new GatewayExchange(req, res, requestId, address.clientIp, this.#options.via);
    exchange.peerIp = address.peerIp;
    exchange.peerTrusted = address.peerTrusted;
    beginRequestTrace(this.#tracing, exchange);
    const record = upgradeRecorder(exchange, this.#records);
    // Whichever comes first: the answer is out, or the client left before it (a 101 is recorded at the
    // switch and, its line, at the connection's end).
    res.once('finish', () => record.answered());
    // One listener for everything the upgrade holds until its client connection closes.
    socket.once('close', () => {
      this.#open.deletePending(socket);
      this.#steps.releaseSlot(socket);
      record.answered();
    });
    const refuse: Refusal = (status, code, message, headers) => {
      exchange.errorCode = code;
      this.#counts.count(exchange.tenant, status, code);
      res.once('finish', () => socket.destroy());
      writeError(res, status, code, message, headers);
    };
    this.#steps.run(exchange, socket, earlyBytes, refuse, record).catch((error: unknown) => {
      this.#options.logger?.warn('websocket upgrade failed', { error: String(error) });
      refuse(500, 'internal_error', 'the gateway failed to handle the request');
    });
  }

  /** Shutdown: new upgrades are refused; every open connection is closed with 1001. */
  async closeAll(timeoutMs = CLOSE_GRACE_MS + 500): Promise<void> {
    this.#rechecks.stop();
    await this.#open.closeAll(timeoutMs);
  }

  /** The shutdown deadline: upgrades still waiting for their origin are cut (their leases cancelled). */
  cutPendingUpgrades(): void {
    this.#open.cutPendingUpgrades();
  }
}
