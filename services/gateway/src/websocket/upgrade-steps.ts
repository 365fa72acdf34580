import type { OutgoingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import { withoutMethodOverride } from '@vantageedge/shared/gateway-policies/method-override-parameter';
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
import { readAbsoluteForm } from '../http/absolute-form.js';
import { DEFAULT_MAX_LOOP_HOPS, LOOP_DETECTED_MESSAGE, platformPasses } from '../http/cdn-loop.js';
import { headerLineCount } from '../http/header-count.js';
import { isMisdirected, MISDIRECTED_MESSAGE } from '../http/misdirected-request.js';
import {
  MISSING_HOST_MESSAGE,
  namesConflictingHosts,
  namesMalformedHost,
  omitsRequiredHost,
  requestAuthority,
} from '../http/request-authority.js';
import { schemeRefusal } from '../http/request-scheme.js';
import {
  IP_DENIED_MESSAGE,
  refusedByIpRulesOfAll,
  refusedByTenantIpRules,
} from '../ip-rules/ip-rules-stage.js';
import { RequestTracing } from '../observability/request-tracing.js';
import { acquireTarget } from '../pipeline/acquire-target.js';
import type { GatewayExchange } from '../pipeline/exchange.js';
import type { TenantResolver } from '../pipeline/gateway-handler.js';
import { originPath, originRequestHeaders } from '../pipeline/origin-request.js';
import { unknownHostAnswer } from '../pipeline/unknown-host.js';
import { DEFAULT_ORIGIN_TLS } from '../upstream/origin-tls.js';
import { upgradeCredentials } from './browser-token.js';
import { readClientHandshake } from './client-handshake.js';
import type { OpenWebSockets } from './open-websockets.js';
import type { OriginHandshake, Refusal } from './origin-handshake.js';
import type { TenantWebSocketLimit, WebSocketLimitRefusal } from './tenant-websocket-limit.js';
import type { UpgradeCounts } from './upgrade-counts.js';
import type { UpgradeRecorder } from './upgrade-record.js';
import {
  ADDRESS_STAGES,
  answeredByRequestStage,
  BEFORE_AUTH_STAGES,
  CONNECT_STAGES,
  refusedByUpgradeStage,
} from './upgrade-stages.js';
import { upgradeTimeouts } from './upgrade-timeouts.js';
import type { WebSocketAdmission } from './websocket-admission.js';
import type { WebSocketMetrics } from './websocket-metrics.js';

/** Retry-After of an upgrade refused because its tenant holds GATEWAY_MAX_WEBSOCKETS_PER_TENANT. */
const LIMIT_RETRY_AFTER_SECONDS = '5';

export interface UpgradeStepsOptions {
  store: TenantResolver;
  authenticator: Authenticator;
  encodedSlashes: EncodedSlashPolicy;
  /** GATEWAY_MAX_HEADERS_COUNT: an upgrade with more header lines is refused 431, as any request. */
  maxHeaders: number;
  /** GATEWAY_MAX_LOOP_HOPS: an upgrade that passed the platform this often already is refused 508. */
  maxLoopHops?: number | undefined;
  metrics?: WebSocketMetrics | undefined;
  /** Whether every tenant's config was read (see unknownHostAnswer); default always. */
  configLoaded?: (() => boolean) | undefined;
}

export interface UpgradeStepsParts {
  perTenant: TenantWebSocketLimit;
  counts: UpgradeCounts;
  open: OpenWebSockets;
  handshake: OriginHandshake;
}

/**
 * The steps an upgrade request passes before its origin is asked, as any request does — header count,
 * host and tenant, path and query, route match, loop detection, the route's stages before
 * authentication and its upgrade checks, authentication, the stages at connect — then the tenant's
 * WebSocket slot and a lease from the chosen origin; what admitted it is recorded for later snapshots
 * to check, and the origin's request is built and sent (OriginHandshake).
 */
export class UpgradeSteps {
  readonly #options: UpgradeStepsOptions;
  readonly #perTenant: TenantWebSocketLimit;
  readonly #counts: UpgradeCounts;
  readonly #open: OpenWebSockets;
  readonly #handshake: OriginHandshake;
  /** The tenant slot (GATEWAY_MAX_WEBSOCKETS_PER_TENANT) each admitted upgrade's client socket holds. */
  readonly #slots = new WeakMap<Duplex, () => void>();

  constructor(options: UpgradeStepsOptions, parts: UpgradeStepsParts) {
    this.#options = options;
    this.#perTenant = parts.perTenant;
    this.#counts = parts.counts;
    this.#open = parts.open;
    this.#handshake = parts.handshake;
  }

  /** The client connection closed: the tenant slot its upgrade held, if admitted, is free again. */
  releaseSlot(socket: Duplex): void {
    this.#slots.get(socket)?.();
  }

  #refuseUnknownHost(refuse: Refusal): void {
    const answer = unknownHostAnswer(this.#options.configLoaded?.() ?? true);
    refuse(answer.status, answer.code, answer.message, answer.headers);
  }

  async run(
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
    if (this.#open.closing) return refuse(503, 'shutting_down', 'the gateway is shutting down');
    // As for every request: an extended CONNECT names a URI of this connection's scheme.
    const schemeRefused = schemeRefusal(req);
    if (schemeRefused !== undefined) return refuse(400, 'invalid_scheme', schemeRefused);
    // As any other request with one (listeners/refuse-expectation.ts): node hands an upgrade over unasked.
    const expectation = req.headers.expect;
    if (expectation !== undefined && expectation.trim().toLowerCase() !== '100-continue')
      return refuse(
        417,
        'expectation_failed',
        'the gateway meets no expectation but 100-continue (Expect header)',
      );
    const handshake = readClientHandshake(req);
    if (!handshake.ok) return refuse(400, handshake.code, handshake.message);
    const { webSocketKey } = handshake;
    if (!readAbsoluteForm(req) || namesConflictingHosts(req))
      return refuse(400, 'invalid_host', 'the request names more than one host');
    if (omitsRequiredHost(req)) return refuse(400, 'invalid_host', MISSING_HOST_MESSAGE);
    const host = requestAuthority(req.headers);
    const tenant = store.resolveHost(host);
    if (tenant === undefined) {
      return namesMalformedHost(req.headers)
        ? refuse(400, 'invalid_host', 'the Host header is not a host name with an optional port')
        : this.#refuseUnknownHost(refuse);
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
    const sentQuery = queryAt < 0 ? '' : url.slice(queryAt);
    const queryRefused = queryAt < 0 ? undefined : queryRefusal(sentQuery);
    if (queryRefused !== undefined) return refuse(400, 'invalid_query', queryRefused);
    const query = withoutMethodOverride(queryBytesEncoded(sentQuery));
    // The routes' `match` conditions (hosts, scheme, headers, query) hold for an upgrade as for any request.
    const facts = { req, query, peerTrusted: exchange.peerTrusted, scheme: exchange.scheme };
    const route = tenant.router.resolve('GET', normalized.path, { facts, preflight: false });
    if (route === undefined) {
      return refusedByTenantIpRules(tenant, exchange.clientIp)
        ? refuse(403, 'ip_denied', IP_DENIED_MESSAGE)
        : refuse(404, 'route_not_found', 'no route matches this method and path');
    }
    if (route instanceof AmbiguousPath && refusedByIpRulesOfAll(route.routes, exchange.clientIp))
      return refuse(403, 'ip_denied', IP_DENIED_MESSAGE);
    if (route instanceof AmbiguousQuery)
      return refuse(403, 'ambiguous_query', ambiguousQueryMessage(route.parameter));
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
    if (await answeredByRequestStage(exchange, socket, ADDRESS_STAGES, this.#counts)) return;
    if (platformPasses(req.headers) >= (this.#options.maxLoopHops ?? DEFAULT_MAX_LOOP_HOPS))
      return refuse(508, 'loop_detected', LOOP_DETECTED_MESSAGE);
    if (await answeredByRequestStage(exchange, socket, BEFORE_AUTH_STAGES, this.#counts)) return;
    if (refusedByUpgradeStage(exchange, socket, this.#counts)) return;

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
    if (await answeredByRequestStage(exchange, socket, CONNECT_STAGES, this.#counts)) return;

    // The traffic split's choice, else the route's own origin.
    const chosen = exchange.origin ?? route.origin;
    if (chosen === undefined) return refuse(503, 'origin_unavailable', 'the route has no origin configured');
    // The client left while the upgrade was authenticated (recorded at its close): no origin for it.
    if (socket.destroyed) return;
    const slot = this.#admit(tenant.id, exchange.clientIp, socket);
    if (slot === 'tenant_limit') {
      this.#options.metrics?.refusedAtLimit(tenant.id);
      return refuse(
        503,
        'websocket_limit',
        `the tenant holds its limit of ${this.#perTenant.limit} open WebSockets on this gateway; try again later`,
        { 'retry-after': LIMIT_RETRY_AFTER_SECONDS },
      );
    }
    if (slot === 'client_share') {
      return refuse(
        429,
        'websocket_client_limit',
        `this client holds its share (${this.#perTenant.perClient}) of the tenant's open WebSockets on this gateway; close one first`,
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
      serviceKey: auth.serviceKey,
      authorizedParty: auth.authorizedParty,
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

    this.#handshake.forward(
      exchange,
      admission,
      socket,
      earlyBytes,
      lease,
      path + exchange.query,
      headers,
      handshake,
      upgradeTimeouts(origin.timeoutMs, route.config.timeouts),
      refuse,
      record,
    );
  }

  /**
   * Takes one of the tenant's GATEWAY_MAX_WEBSOCKETS_PER_TENANT slots until the client connection
   * closes, whichever way it ends (a refusal, the origin's non-101 answer, either side closing the
   * WebSocket, the client leaving first): every ending destroys the client socket, which is still open
   * here. Why not, at the tenant's limit or the client's share of it.
   */
  #admit(tenantId: string, clientIp: string | undefined, socket: Duplex): WebSocketLimitRefusal | undefined {
    const release = this.#perTenant.admit(tenantId, clientIp);
    if (typeof release !== 'function') return release;
    this.#slots.set(socket, release);
    return undefined;
  }
}
