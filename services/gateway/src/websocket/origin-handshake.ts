import {
  type ClientRequest,
  request as httpRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
} from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { isInternalListenerResponse } from '@vantageedge/shared/http/internal-listener';
import type { CompiledTenant } from '../config/compiled-tenant.js';
import { hasNoContent } from '../http/no-content.js';
import { requestAuthority } from '../http/request-authority.js';
import { hasUndecodedTransferCoding } from '../http/transfer-codings.js';
import type { RequestTracing } from '../observability/request-tracing.js';
import { CLIENT_CLOSED_REQUEST, type GatewayExchange } from '../pipeline/exchange.js';
import type { CookieDomainGuard } from '../proxy/cookie-domains.js';
import { classifyProxyError, isConnectFailure } from '../proxy/proxy-request.js';
import { OriginAddressBlockedError } from '../upstream/guarded-connector.js';
import { originTlsErrorCode } from '../upstream/origin-tls.js';
import type { UpstreamLease } from '../upstream/types.js';
import {
  MAX_ANSWER_HEADER_LINES,
  MAX_INTERIM_ANSWERS,
  TooManyAnswerHeaderLinesError,
  TooManyInterimAnswersError,
} from '../upstream/unasked-continue.js';
import type { AdmissionRechecks } from './admission-rechecks.js';
import type { ClientHandshake } from './client-handshake.js';
import { FrameRelay } from './frame-relay.js';
import { startHandshakeSpan } from './handshake-span.js';
import type { OpenWebSockets } from './open-websockets.js';
import { relayOriginAnswer, runSwitchHooks } from './origin-answer-relay.js';
import type { OriginConnectors } from './origin-connectors.js';
import { endedBy, type ProxiedConnection } from './proxied-connection.js';
import {
  acceptsKey,
  opensHttp2WebSocket,
  type ResponseScoping,
  switchedFields,
  switchedStreamHeaders,
  switchesToWebSocket,
  switchingProtocolsHead,
} from './switching-protocols.js';
import type { UpgradeCounts } from './upgrade-counts.js';
import type { UpgradeRecorder } from './upgrade-record.js';
import type { UpgradeTimeouts } from './upgrade-timeouts.js';
import type { WebSocketAdmission } from './websocket-admission.js';

/** Answers the upgrade itself (the gateway's error body), then ends the client's connection. */
export type Refusal = (
  status: number,
  code: string,
  message: string,
  headers?: Record<string, string>,
) => void;

export interface OriginHandshakeParts {
  connectors: OriginConnectors;
  cookieDomains: CookieDomainGuard;
  counts: UpgradeCounts;
  open: OpenWebSockets;
  rechecks: AdmissionRechecks;
  /** Only when tracing is on. */
  tracing: RequestTracing | undefined;
}

/**
 * An admitted upgrade's request to its origin target, under the origin's timeout or the route's own
 * (UpgradeTimeouts): the origin's 101 is relayed once it switches to WebSocket and its
 * Sec-WebSocket-Accept answers the client's key (a 200 to an HTTP/2 client), and the connection joins the
 * open ones; any other answer is relayed as the origin's refusal; a failure, a timeout, an internal
 * listener or an answer the client cannot be given is answered as the HTTP path answers it. The lease is
 * released once, with how the exchange went.
 */
export class OriginHandshake {
  readonly #connectors: OriginConnectors;
  readonly #cookieDomains: CookieDomainGuard;
  readonly #counts: UpgradeCounts;
  readonly #open: OpenWebSockets;
  readonly #rechecks: AdmissionRechecks;
  readonly #tracing: RequestTracing | undefined;

  constructor(parts: OriginHandshakeParts) {
    this.#connectors = parts.connectors;
    this.#cookieDomains = parts.cookieDomains;
    this.#counts = parts.counts;
    this.#open = parts.open;
    this.#rechecks = parts.rechecks;
    this.#tracing = parts.tracing;
  }

  /** Sends the upgrade to the lease's target; `refuse` answers the client when the gateway must. */
  forward(
    exchange: GatewayExchange,
    admission: WebSocketAdmission,
    client: Duplex,
    earlyBytes: () => Buffer,
    lease: UpstreamLease,
    pathAndQuery: string,
    headers: OutgoingHttpHeaders,
    { webSocketKey, overHttp2 }: ClientHandshake & { ok: true },
    timeouts: UpgradeTimeouts,
    refuse: Refusal,
    record: UpgradeRecorder,
  ): void {
    const target = lease.target;
    // The tenant read from the exchange, never kept in this scope: the closures made here live as long
    // as the WebSocket, and the exchange lets go of its compiled version at the switch.
    const tenantOf = () => exchange.tenant as CompiledTenant;
    const tenantId = tenantOf().id;
    const hostHeader = requestAuthority(exchange.req.headers);
    const scoping: ResponseScoping = {
      cookie: (value) => this.#cookieDomains.scope(value, hostHeader, tenantOf()) as string,
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
        this.#connectors.connect(tenantId, target, timeouts.connectMs, (error, socket) => {
          const afterConnect = timeouts.answerAfterConnectMs;
          if (error === null && afterConnect !== undefined && !released) {
            clearTimeout(answerDeadline);
            answerDeadline = setTimeout(timedOut, afterConnect);
          }
          oncreate(error, socket);
        });
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
    upstreamRequest.setTimeout(timeouts.idleMs);
    let answerDeadline = setTimeout(timedOut, timeouts.answerMs);
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
    /** 502 origin_address_blocked / origin_tls_error / upstream_error, 503 origin_tls_budget, 504 upstream_timeout, as the HTTP path answers them. */
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
        error.code === 'ORIGIN_TLS_BUDGET_SPENT' ||
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
    // As on the HTTP path (MAX_INTERIM_ANSWERS, MAX_ANSWER_HEADER_LINES): an origin flooding the upgrade
    // with 1xx answers, or sending an answer head of more header lines, is cut. Its final answer may come
    // in the same read, after the refusal: it is dropped (see `cut`).
    let interimAnswers = 0;
    let cut = false;
    const cutAs = (error: Error) => {
      cut = true;
      clearTimeout(answerDeadline);
      upstreamRequest.off('information', countInterim);
      upstreamRequest.destroy();
      failAs(error);
    };
    /** Node's parser hands over each line of a head (up to 2,000), which a relayed answer writes out. */
    const tooManyLines = (head: { rawHeaders: string[] }) =>
      head.rawHeaders.length > 2 * MAX_ANSWER_HEADER_LINES;
    const countInterim = (info: { rawHeaders: string[] }) => {
      if (released) return;
      if (tooManyLines(info)) cutAs(new TooManyAnswerHeaderLinesError());
      else if (++interimAnswers > MAX_INTERIM_ANSWERS) cutAs(new TooManyInterimAnswersError());
    };
    upstreamRequest.on('information', countInterim);
    upstreamRequest.once('response', (response: IncomingMessage) => {
      if (cut) return void response.on('error', () => {}).resume();
      if (tooManyLines(response) && !released) {
        response.on('error', () => {}).resume();
        return cutAs(new TooManyAnswerHeaderLinesError());
      }
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
      // As on the HTTP path: node's HTTP/1.1 parser takes off chunked alone, so what follows such a head
      // is not the answer's content.
      const status = response.statusCode ?? 502;
      if (!hasNoContent(status) && hasUndecodedTransferCoding(response.headers['transfer-encoding']))
        return refuseUnrelayable(
          response,
          undefined,
          'the origin answered the upgrade with a Transfer-Encoding other than chunked alone',
        );
      // The origin answered without switching protocols (e.g. 403): relay its answer. Its head is out, so
      // a body that stalls past the origin's timeout only cuts the connection: the answer stays the origin's.
      upstreamRequest.off('timeout', timedOut);
      upstreamRequest.once('timeout', () => upstreamRequest.destroy());
      release({ kind: 'response', status: response.statusCode ?? 502 });
      handshakeSpan.answered(response.statusCode ?? 502);
      this.#counts.count(tenantOf(), response.statusCode ?? 502, undefined);
      relayOriginAnswer(
        exchange,
        response,
        upstreamRequest,
        client,
        this.#cookieDomains,
        hostHeader,
        tenantOf(),
        scoping,
      );
    });
    upstreamRequest.once('upgrade', (response: IncomingMessage, upstream: Socket, upstreamHead: Buffer) => {
      if (cut) return upstream.destroy();
      if (tooManyLines(response) && !released) {
        upstream.destroy();
        return cutAs(new TooManyAnswerHeaderLinesError());
      }
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
      if (this.#open.closing) {
        upstream.destroy();
        release({ kind: 'cancelled' });
        refuse(503, 'shutting_down', 'the gateway is shutting down');
        return;
      }
      upstream.setTimeout(0); // the origin's answer timeout; an open WebSocket has the idle timeout
      lease.responseStarted?.(101);
      const { version: admittedVersion } = tenantOf();
      this.#counts.count(tenantOf(), 101, undefined);
      const fields = switchedFields(response, scoping, (head) => runSwitchHooks(exchange, head));
      if (overHttp2) exchange.res.writeHead(200, switchedStreamHeaders(fields, exchange.requestId));
      else client.write(switchingProtocolsHead(fields, exchange.requestId));
      record.switched();
      const connection: ProxiedConnection = {
        client,
        upstream,
        toClient: new FrameRelay(upstream, client, (code) => endedBy(connection, 'origin', code)),
        toUpstream: new FrameRelay(client, upstream, (code) => endedBy(connection, 'client', code)),
        closing: false,
        admission,
        admittedVersion,
        requestId: exchange.requestId,
        record,
        ending: undefined,
      };
      connection.toClient.sent(upstreamHead);
      connection.toUpstream.sent(earlyBytes());
      if (this.#open.add(connection, () => release({ kind: 'response', status: 101 })))
        this.#rechecks.admittedDuringChange(connection);
    });
    upstreamRequest.end();
  }
}
