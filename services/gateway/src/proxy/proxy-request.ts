import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { PassThrough, type Readable, Transform } from 'node:stream';
import { IDEMPOTENT_METHODS } from '@vantageedge/shared/domain/route-policies';
import { isInternalListenerResponse } from '@vantageedge/shared/http/internal-listener';
import type { Dispatcher } from 'undici';
import type { CompiledOrigin } from '../config/compiled-tenant.js';
import { relayEarlyHints } from '../http/early-hints.js';
import { continueBody } from '../http/expect-continue.js';
import { frameNoContent, hasNoContent } from '../http/no-content.js';
import { requestAuthority } from '../http/request-authority.js';
import { discardUnreadBody } from '../http/request-body.js';
import { hasUndecodedTransferCoding, UndecodedTransferCodingError } from '../http/transfer-codings.js';
import { mergedVary, varyNames } from '../http/vary-fields.js';
import type { UpstreamResendReason } from '../observability/gateway-metrics.js';
import type { GatewayExchange } from '../pipeline/exchange.js';
import type { ResponseHead } from '../pipeline/stage.js';
import { closeConnectionIfTrailersSayClose } from '../upstream/closing-trailers.js';
import { OriginAddressBlockedError } from '../upstream/guarded-connector.js';
import { originTlsErrorCode } from '../upstream/origin-tls.js';
import type { UpstreamLease, UpstreamOutcome } from '../upstream/types.js';
import type { ResponseBodySink } from './client-response-writer.js';
import type { CookieDomainGuard } from './cookie-domains.js';
import { downstreamResponseHeaders } from './forwarded-headers.js';

export type ProxyFailure = {
  status: 502 | 503 | 504 | 413 | 429;
  code: string;
  message: string;
  outcome: UpstreamOutcome;
  headers?: Readonly<Record<string, string>>;
  /** The origin's final response head had arrived: it acted on the request, which is not sent again. */
  answered?: true;
};

/** The origin answered a status the call asked to retry on: that exchange was aborted, its body dropped. */
export type RetryableAnswer = { readonly retryStatus: number };

export type ProxyResult = ProxyFailure | RetryableAnswer | undefined;

/** Ended for a reason that says nothing about the origin (the client's doing, the pool's queue). */
const CANCELLED: UpstreamOutcome = { kind: 'cancelled' };

const TIMEOUT_CODES = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'GATEWAY_HEADERS_TIMEOUT',
  'GATEWAY_BODY_TIMEOUT',
]);
const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
/** getaddrinfo's: no such name (NXDOMAIN, no address), the name servers failed or did not answer. */
const UNRESOLVED_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN']);

/** No connection came about (refused, unreachable, the name not resolved): the origin never saw the request. */
export function isConnectFailure(error: unknown): boolean {
  const code = (error as { code?: string }).code ?? '';
  const causeCode = (error as { cause?: { code?: string } }).cause?.code ?? '';
  return CONNECT_CODES.has(code) || CONNECT_CODES.has(causeCode);
}

export class BodyTooLargeError extends Error {
  readonly code = 'GATEWAY_BODY_TOO_LARGE';
}

/** Counts a body of unknown length (chunked) and fails it past the limit. */
function limitBody(maxBytes: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (seen > maxBytes) callback(new BodyTooLargeError(`request body exceeds ${maxBytes} bytes`));
      else callback(null, chunk);
    },
  });
}

export function classifyProxyError(error: unknown): ProxyFailure {
  const code = (error as { code?: string }).code ?? '';
  const causeCode = (error as { cause?: { code?: string } }).cause?.code ?? '';
  if (code === 'GATEWAY_BODY_TOO_LARGE' || causeCode === 'GATEWAY_BODY_TOO_LARGE') {
    return {
      status: 413,
      code: 'payload_too_large',
      message: 'the request body is too large',
      outcome: CANCELLED,
    };
  }
  if (code === 'UPSTREAM_QUEUE_FULL') {
    return {
      status: 503,
      code: 'upstream_queue_full',
      message: 'too many requests are waiting for a connection to the origin',
      outcome: CANCELLED,
    };
  }
  if (code === 'TENANT_UPSTREAM_SOCKETS_FULL') {
    return {
      status: 503,
      code: 'tenant_upstream_limit',
      message: 'the tenant has its limit of connections to its origins on this gateway; try again later',
      outcome: CANCELLED,
      headers: { 'retry-after': '1' },
    };
  }
  if (code === 'ORIGIN_TLS_BUDGET_SPENT') {
    const seconds = (error as { retryAfterSeconds?: number }).retryAfterSeconds ?? 1;
    return {
      status: 503,
      code: 'origin_tls_budget',
      message:
        "the tenant's TLS handshakes with its origins cost this gateway more than their budget; try again later",
      outcome: CANCELLED,
      headers: { 'retry-after': String(seconds) },
    };
  }
  if (code === 'GATEWAY_QUEUE_TIMEOUT') {
    return {
      status: 504,
      code: 'upstream_timeout',
      message: 'no connection to the origin became free in time',
      outcome: CANCELLED,
    };
  }
  if (code === 'ORIGIN_ADDRESS_BLOCKED' || causeCode === 'ORIGIN_ADDRESS_BLOCKED') {
    return {
      status: 502,
      code: 'origin_address_blocked',
      message: "the origin's address is not allowed",
      outcome: { kind: 'connect_error' },
    };
  }
  // Answered 504 as any timeout, but the request never reached the origin: a failed connect, which a
  // route retrying on connect_error tries again elsewhere (as Envoy's connect-failure does).
  if (code === 'UND_ERR_CONNECT_TIMEOUT') {
    return {
      status: 504,
      code: 'upstream_timeout',
      message: 'the origin did not accept the connection in time',
      outcome: { kind: 'connect_error' },
    };
  }
  // The origin's certificate was refused (or no TLS session came about): the request never left.
  if (originTlsErrorCode(error) !== undefined) {
    return {
      status: 502,
      code: 'origin_tls_error',
      message: 'no verified TLS connection to the origin could be made',
      outcome: { kind: 'connect_error' },
    };
  }
  if (TIMEOUT_CODES.has(code)) {
    return {
      status: 504,
      code: 'upstream_timeout',
      message: 'the origin did not answer in time',
      outcome: { kind: 'timeout' },
    };
  }
  if (isConnectFailure(error)) {
    const unresolved = UNRESOLVED_CODES.has(code) || UNRESOLVED_CODES.has(causeCode);
    return {
      status: 502,
      code: 'upstream_unreachable',
      message: unresolved ? "the origin's host name did not resolve" : 'the origin refused the connection',
      outcome: { kind: 'connect_error' },
    };
  }
  if (code === 'GATEWAY_TOO_MANY_INTERIM_ANSWERS') {
    return {
      status: 502,
      code: 'upstream_error',
      message: 'the origin sent too many interim (1xx) answers',
      outcome: { kind: 'reset' },
    };
  }
  if (code === 'GATEWAY_TOO_MANY_ANSWER_HEADER_LINES') {
    return {
      status: 502,
      code: 'upstream_error',
      message: "the origin's answer has too many header lines",
      outcome: { kind: 'reset' },
    };
  }
  return {
    status: 502,
    code: 'upstream_error',
    message: 'the origin connection failed',
    outcome: { kind: 'reset' },
  };
}

export interface ProxyCall {
  readonly lease: UpstreamLease;
  readonly origin: CompiledOrigin;
  /** Path (with query) as the origin should see it, before the target's base path. */
  readonly pathAndQuery: string;
  readonly headers: OutgoingHttpHeaders;
  /** Stream the client's body through (false for requests without one). */
  readonly hasBody: boolean;
  /** Set when the client did not declare a Content-Length: the body is counted as it streams. */
  readonly unknownLengthLimit: number | undefined;
  /** The client's body, read already whole: this attempt's copy of it (a retryable request's). */
  readonly replayedBody?: Readable | undefined;
  /** The start of the client's body, read already: sent first, then the rest as it streams. */
  readonly bodyReadAlready?: Buffer | undefined;
  /** The target's pool to use instead of its default one (a route's own connect timeout). */
  readonly dispatcher?: Dispatcher | undefined;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  /**
   * The response-head / body-idle timeout is a route's (milliseconds): timed by the exchange's own timer,
   * to the millisecond. undici's timers tick every half second and fire up to a second late, which an
   * origin's timeout_seconds can afford but a route's sub-second timeouts cannot.
   */
  readonly exactHeadersTimeout?: boolean | undefined;
  readonly exactBodyTimeout?: boolean | undefined;
  /**
   * Asked when the origin's response head arrives: true drops this response (the exchange is aborted at
   * once, closing its connection, so a body that never ends cannot hold the retry back) and the call
   * resolves with RetryableAnswer.
   */
  readonly retryOnStatus?: ((status: number) => boolean) | undefined;
  /**
   * The route retries a reset of this request on another target: a connection closed under it as it
   * arrived is left to that retry, counted and budgeted as the route's, not sent again here.
   */
  readonly resetRetried?: boolean | undefined;
  /** Counts a request sent once more on another connection (see proxyRequest). */
  readonly resends?: { countUpstreamResend(tenant: string, reason: UpstreamResendReason): void } | undefined;
  /** The origin's final answer arrived and is not dropped for a retry (before onResponse). */
  readonly onAnswered?: (() => void) | undefined;
  /** The origin's response head arrived: write it to the client and say where the body goes. */
  readonly onResponse: (exchange: GatewayExchange, head: ResponseHead) => ResponseBodySink;
  /** Removes Set-Cookie Domain attributes that would reach other tenants' hosts. */
  readonly cookieDomains: CookieDomainGuard;
}

/**
 * One upstream exchange through the target's keep-alive pool, streaming both ways: undici's dispatch
 * API hands the origin's body to the client response, the chunks of each read together (no stream
 * object of our own per request; backpressure pauses the origin). Resolves with the failure to answer
 * (when no response has started) or undefined; always releases the lease exactly once.
 *
 * A client that goes away aborts the upstream exchange at once (undici closes that origin connection),
 * instead of leaving it to run, and pin a pooled connection, until the origin answers or times out.
 * What the target's health and circuit learn from an exchange the client ended (it left, its body was
 * too large, it stopped reading) is the origin's final status when one came, else nothing (cancelled);
 * from one the origin cut after its head (a reset, a short or malformed body, its body's timeout), a
 * failure, as Envoy's router reports a reset to outlier detection after the response started.
 *
 * Deadlines besides undici's own (response head once the request is sent, body idle while reading):
 * - a request the pool had no free connection for waits at most the response-head timeout for one
 *   (504; the pool refuses outright past its queue bound: 503 upstream_queue_full, target-pool.ts);
 * - after a 1xx, the final head must come within the response-head timeout of the request's body
 *   having been sent (undici starts its own timer again on each 1xx), and until the body is sent whole,
 *   undici must take a chunk of it within that timeout of the last while it holds the body back for the
 *   origin (undici's own timer runs so between two chunks, but each 1xx starts it again: an origin that
 *   stopped reading the body was never cut); a client pausing its upload is not the origin's time;
 * - a response the origin is paused for (a client not reading) cuts that client off once it read
 *   nothing for the body timeout, freeing the origin connection (undici's body timer stops while
 *   paused);
 * - a route's own timeouts, exact (ProxyCall.exactHeadersTimeout / exactBodyTimeout): the response
 *   head within them of the request having been sent whole, and no silence between two chunks of the
 *   body longer than its idle timeout. undici's timers stay armed behind them (an origin that stops
 *   reading the request body is still cut by undici's response-head timer).
 * One timer per exchange serves these phases, made only when the phase is reached.
 *
 * A pooled connection the origin closes may take a request with it. Two kinds of request then go to
 * another connection of the same target (not a retry: the route's `retries` are not spent, nor is the
 * target blamed for the closed connection, only for how the request ends):
 * - undici writes a streamed request's head with its body's first chunk. A request whose client has not
 *   started its body holds a pooled connection with nothing written on it, which the origin's keep-alive
 *   timer may close: that request, which the origin never saw, goes to another connection (any method);
 * - a request without a body, of an idempotent method, whose connection closed or was reset within
 *   STALE_CONNECTION_MS of the request reaching it and before any answer: the origin closed it as idle
 *   while the request was on its way (the keep-alive race, which undici's look at an idle socket before
 *   reusing it narrows but cannot close). Sent once more (RFC 9112 §9.3.1: a proxy may retry an
 *   idempotent request after a connection closed under it, and not retry a failed retry), as nginx sends
 *   such a request again when it failed on a cached connection, unless the route's retries take it to
 *   another target.
 */
export function proxyRequest(exchange: GatewayExchange, call: ProxyCall): Promise<ProxyResult> {
  exchange.upstreamTarget = call.lease.target.label;
  return new Promise((resolve) => dispatchToOrigin(exchange, call, resolve, FIRST_SEND));
}

/** How many more times a request may be given to another connection, for each reason (see proxyRequest). */
interface ResendsLeft {
  /** The origin closed the connection before undici wrote anything of the request. */
  readonly unsent: number;
  /** The origin closed the connection as the request arrived, before answering it. */
  readonly unanswered: number;
}

const FIRST_SEND: ResendsLeft = { unsent: 2, unanswered: 1 };

/**
 * A connection closed this soon after a request reached it is taken for one the origin closed as idle
 * as the request arrived: a round trip or two. An origin that fails later (it crashed, it gives up on a
 * request it cannot serve) saw the request, and a slow one is not made to serve it twice.
 */
const STALE_CONNECTION_MS = 1_000;

/** Requests sent again when their connection closed under them before an answer (see proxyRequest). */
const RESENDABLE_METHODS: ReadonlySet<string> = new Set(IDEMPOTENT_METHODS);

function dispatchToOrigin(
  exchange: GatewayExchange,
  call: ProxyCall,
  resolve: (result: ProxyResult) => void,
  resendsLeft: ResendsLeft,
): void {
  const { req } = exchange;
  const target = call.lease.target;
  let body: Dispatcher.DispatchOptions['body'] = null;
  let streamedBody: Transform | undefined;
  if (call.replayedBody !== undefined) body = call.replayedBody;
  else if (call.hasBody) {
    continueBody(exchange.res);
    // Never `req` itself: undici destroys the stream it reads when it stops early (the origin answered
    // first), and a destroyed request leaves the rest of its body, and what follows, unread.
    const through =
      call.unknownLengthLimit === undefined ? new PassThrough() : limitBody(call.unknownLengthLimit);
    if (call.bodyReadAlready !== undefined) through.write(call.bodyReadAlready);
    streamedBody = req.pipe(through);
    body = streamedBody;
  }
  const dispatcher = call.dispatcher ?? target.dispatcher;
  const handler = new OriginExchange(exchange, call, streamedBody, resolve, dispatcher, resendsLeft);
  let free: boolean;
  try {
    // No `reset` option: undici closes the connection after a HEAD, and after a request with a body on
    // a method whose semantics define none (any but PUT, POST, PATCH, QUERY, PROPFIND, PROPPATCH), which
    // an origin may leave unread and then take for the next request on that connection, another client's.
    free = dispatcher.dispatch(
      {
        path: target.basePath + call.pathAndQuery,
        method: req.method as Dispatcher.HttpMethod,
        headers: call.headers as Record<string, string | string[]>,
        body,
        headersTimeout: call.headersTimeoutMs,
        bodyTimeout: call.bodyTimeoutMs,
      },
      handler,
    );
  } catch (error) {
    handler.onResponseError(undefined, error as Error); // the pool's queue is full
    return;
  }
  if (!free) handler.waitForConnection();
}

/** A connection's end as undici reports it: closed or reset by the other side, or a write to it refused. */
const CLOSED_CONNECTION_CODES = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);

type DispatchController = Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseData']>>[0];

/** The handler of one upstream exchange (undici's dispatch API), from request start to settlement. */
class OriginExchange implements Dispatcher.DispatchHandler {
  /** Where the request was dispatched: a TargetPool takes back a request given up while it waits. */
  readonly #dispatcher: Dispatcher;
  readonly #exchange: GatewayExchange;
  readonly #call: ProxyCall;
  readonly #resolve: (result: ProxyResult) => void;
  /** How many more connections the request may be given, for each reason (see proxyRequest). */
  readonly #resendsLeft: ResendsLeft;
  readonly #sentAt = performance.now();
  /** When the request reached a connection, if it had to wait for one (0: at #sentAt). */
  #startedAt = 0;
  /** The client's body as undici reads it, when it streams (not buffered): its end is when it was sent. */
  readonly #streamedBody: Transform | undefined;
  #controller: DispatchController | undefined;
  /**
   * The exchange's one timer, for the phase it is in (each made only when reached): waiting for a pooled
   * connection, waiting for the final head after a 1xx (with a route's exact timeout, from the start;
   * after a 1xx, for each chunk of the client's body until it is sent), then the client not reading
   * while the origin is paused for it (with a route's exact idle timeout, also the origin sending
   * nothing).
   */
  #timer: NodeJS.Timeout | undefined;
  /**
   * The final-head deadline is set, or waits for the request body's end: a 1xx arrived, or the
   * route's response-head timeout is exact (from the start).
   */
  #headDeadlineStarted = false;
  #onBodySent: (() => void) | undefined;
  /**
   * A 1xx came while the client's body was being sent: each chunk undici takes of it pushes the deadline
   * (made then: most exchanges never need it).
   */
  #onBodyProgress: (() => void) | undefined;
  /** The client's streamed body was read whole: the lease may hold a half-open probe slot again. */
  readonly #onClientBodySent = (): void => this.#call.lease.clientBodySent?.();
  #sink: ResponseBodySink | undefined;
  #status = 0;
  /** The origin sent an interim (1xx) answer: it has the request. */
  #interim = false;
  /** The answer is a 204, 205 or 304: it has no content, whatever the origin sends. */
  #noContent = false;
  /** The origin's answer is to be retried: the exchange is aborted, nothing reaches the client. */
  #dropped = false;
  #clientGone = false;
  /** The origin is paused until the client reads (drains) what it was given. */
  #paused = false;
  /** When the origin was last paused for the client. */
  #pausedAt = 0;
  /** The client held the origin back for CLIENT_HOLD_MS or longer at some point (see onResponseError). */
  #heldBack = false;
  /** When the client last sent a chunk of its streamed body (or the exchange began). */
  #clientBodyAt = performance.now();
  readonly #onClientBodyChunk = (): void => {
    this.#clientBodyAt = performance.now();
  };
  #settled = false;
  /** Body chunks not written to the client yet (#writeBatch), and their bytes. */
  #batch: Buffer[] | undefined;
  #batchBytes = 0;
  /** Chunks under SMALL_CHUNK_BYTES the origin sent so far. */
  #smallChunks = 0;
  readonly #onClientClose = (): void => {
    // Not `writableFinished`: HTTP/2's response reports itself finished once its stream closed, also
    // when the client reset the stream before the response was ended.
    if (this.#exchange.res.writableEnded) return;
    this.#clientGone = true;
    const error = new ClientGoneError();
    // Still waiting for a connection: out of the pool's queue, and the lease is given back now.
    if (this.#controller === undefined) this.#giveUpWaiting(error);
    else this.#controller.abort(error);
  };
  /**
   * The client's body failed (past the route's limit) while the request waited for a pooled connection:
   * undici hears the body's errors only once it takes the request, so until then this listener does
   * (unheard, a stream's error ends the replica's process) and the wait ends with it (413).
   */
  readonly #onClientBodyError = (error: Error): void => {
    if (this.#controller === undefined) this.#giveUpWaiting(error);
  };
  readonly #onDrain = (): void => {
    this.#paused = false;
    if (performance.now() - this.#pausedAt >= CLIENT_HOLD_MS) this.#heldBack = true;
    // The origin's silence counts from when it may send again.
    if (this.#call.exactBodyTimeout) this.#timer?.refresh();
    this.#controller?.resume();
  };

  constructor(
    exchange: GatewayExchange,
    call: ProxyCall,
    streamedBody: Transform | undefined,
    resolve: (result: ProxyResult) => void,
    dispatcher: Dispatcher,
    resendsLeft: ResendsLeft,
  ) {
    this.#dispatcher = dispatcher;
    this.#resendsLeft = resendsLeft;
    this.#exchange = exchange;
    this.#call = call;
    this.#streamedBody = streamedBody;
    this.#resolve = resolve;
    exchange.res.once('close', this.#onClientClose);
    if (streamedBody !== undefined) {
      // While the body arrives at the client's pace, the exchange says nothing timely about the target.
      call.lease.clientBodyPending?.();
      streamedBody.once('end', this.#onClientBodySent);
      streamedBody.on('error', this.#onClientBodyError);
      // Beside the pipe's own listener: the request flows already.
      exchange.req.on('data', this.#onClientBodyChunk);
    }
  }

  /**
   * The pool had no free connection for the request: it waits in the pool's queue, at most the
   * response-head timeout (undici's own header timer starts only once the request is on a connection).
   */
  waitForConnection(): void {
    if (this.#settled || this.#controller !== undefined) return;
    this.#timer = setTimeout(() => {
      if (this.#controller === undefined) this.#giveUpWaiting(new QueueTimeoutError());
    }, this.#call.headersTimeoutMs);
  }

  /** The request waited for a connection in vain: out of the pool's queue (a TargetPool's), settled. */
  #giveUpWaiting(error: Error): void {
    (this.#dispatcher as { abandon?: (handler: Dispatcher.DispatchHandler) => void }).abandon?.(this);
    this.onResponseError(undefined, error);
  }

  onRequestStart(controller: DispatchController): void {
    this.#controller = controller;
    if (this.#settled) {
      // Answered while it waited for this connection (client gone, wait over): never sent.
      controller.abort(this.#clientGone ? new ClientGoneError() : new QueueTimeoutError());
      return;
    }
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#startedAt = performance.now();
    }
    if (this.#call.exactHeadersTimeout) {
      this.#headDeadlineStarted = true;
      this.#startFinalHeadDeadline();
    }
  }

  onResponseStart(
    controller: DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (statusCode < 200) {
      this.#interim = true;
      if (statusCode === 103 && !this.#clientGone && !this.#settled) relayEarlyHints(this.#exchange, headers);
      // 1xx: the final answer follows, within the time the origin has for its response head (undici
      // starts its own timer again on each 1xx, so an origin sending 103 every second never timed out),
      // counted from when the request was sent whole: a client's slow upload is not the origin's time.
      if (!this.#headDeadlineStarted) {
        this.#headDeadlineStarted = true;
        this.#startFinalHeadDeadline();
      }
      this.#watchUpload();
      return;
    }
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#stopWatchingUpload();
    if (isInternalListenerResponse(headers)) {
      // A platform listener that is not tenant traffic (a replica's admin port, a projector's metrics,
      // the control plane) answered: nothing of it reaches the client or a stage (the cache), and the
      // exchange fails as a connection to a refused address does (502 origin_address_blocked).
      controller.abort(
        new OriginAddressBlockedError('the origin is one of the platform’s internal listeners'),
      );
      return;
    }
    if (statusCode > 599) {
      // Not an HTTP status (RFC 9110 §15): read as a server error, as HTTP/2 clients would get anyway.
      controller.abort(new InvalidStatusError(statusCode));
      return;
    }
    const exchange = this.#exchange;
    const { req, res } = exchange;
    this.#status = statusCode;
    this.#call.lease.responseStarted?.(statusCode);
    this.#noContent = hasNoContent(statusCode);
    exchange.upstreamMs = performance.now() - this.#sentAt;
    if (this.#call.retryOnStatus?.(statusCode)) {
      this.#dropped = true;
      // A short answer is read to its end (briefly), so its connection stays in the pool: an origin
      // shedding load with quick 503s is not also made to accept a connection per retry. Any other is
      // aborted at once: a body that never ends, or ends slowly, would hold the retry back.
      const length = Number(headers['content-length']);
      if (length >= 0 && length <= DROPPED_ANSWER_DRAINED_BYTES) {
        this.#timer = setTimeout(() => controller.abort(new DroppedAnswerError()), DROPPED_ANSWER_DRAIN_MS);
      } else {
        controller.abort(new DroppedAnswerError());
      }
      return;
    }
    if (
      req.method !== 'HEAD' &&
      !this.#noContent &&
      hasUndecodedTransferCoding(headers['transfer-encoding'])
    ) {
      // The origin acted on the request (its status is kept: the request is not sent again), but what
      // follows its head cannot be read as the content.
      controller.abort(new UndecodedTransferCodingError(headers['transfer-encoding']));
      return;
    }
    this.#call.onAnswered?.();
    try {
      // Headers the gateway already set for this request (RateLimit*, X-Cache, …) win over the
      // origin's: writeHead() would otherwise let the origin's values replace them. Vary is the
      // exception: the gateway's (CORS: Origin) and the origin's are one list.
      const outHeaders = downstreamResponseHeaders(headers, res.getHeaderNames());
      const setCookie = outHeaders['set-cookie'];
      if (setCookie !== undefined)
        outHeaders['set-cookie'] = this.#call.cookieDomains.scope(
          setCookie,
          requestAuthority(req.headers),
          exchange.tenant!,
        );
      const clearSiteData = outHeaders['clear-site-data'];
      if (clearSiteData !== undefined) {
        const scoped = this.#call.cookieDomains.scopeClearSiteData(
          clearSiteData as string | string[],
          requestAuthority(req.headers),
        );
        if (scoped === undefined) delete outHeaders['clear-site-data'];
        else outHeaders['clear-site-data'] = scoped;
      }
      if (outHeaders['vary'] !== undefined && res.hasHeader('vary')) mergeVary(exchange, outHeaders);
      if (this.#noContent) frameNoContent(statusCode, outHeaders);
      outHeaders['x-request-id'] = exchange.requestId;
      const head: ResponseHead = { statusCode, headers: outHeaders, checkedHeaders: undefined };
      this.#sink = this.#call.onResponse(exchange, head);
      if (this.#call.exactBodyTimeout)
        this.#timer = setTimeout(() => this.#bodyIdle(), this.#call.bodyTimeoutMs);
    } catch (error) {
      controller.abort(error as Error);
    }
  }

  onResponseData(controller: DispatchController, chunk: Buffer): void {
    // A 205's body (none other of these has one for undici) is read off the connection and dropped.
    if (this.#sink === undefined || this.#noContent) return;
    if (this.#call.exactBodyTimeout) this.#timer?.refresh();
    if (
      this.#batch === undefined &&
      (chunk.length >= SMALL_CHUNK_BYTES || ++this.#smallChunks <= SMALL_CHUNKS_WRITTEN_AT_ONCE)
    ) {
      this.#write(controller, chunk);
      return;
    }
    if (this.#batch === undefined) {
      this.#batch = [chunk];
      this.#batchBytes = chunk.length;
      process.nextTick(this.#writeBatch);
    } else {
      this.#batch.push(chunk);
      this.#batchBytes += chunk.length;
    }
    if (this.#batchBytes >= BATCH_BYTES) this.#writeBatch();
  }

  /**
   * Past a response's first few small chunks, the body chunks undici hands over go to the client as one
   * per read (an ordinary body's chunks are written as they come, with no tick in between): undici hands over
   * each chunk of a chunked body on its own, and an origin sending a byte per chunk made each byte a write
   * (a Buffer view keeping its whole socket read alive, and node's bookkeeping of a write, held while the
   * client reads slowly: 10 MB per stalled response, and 50 times the CPU of the same body in large
   * chunks). Written once the read being parsed is (before undici reports a failure it found in it), or
   * at BATCH_BYTES.
   */
  readonly #writeBatch = (): void => {
    const batch = this.#batch;
    if (batch === undefined) return;
    this.#batch = undefined;
    const controller = this.#controller;
    if (this.#settled || controller === undefined) return;
    this.#write(controller, batch.length === 1 ? batch[0]! : Buffer.concat(batch, this.#batchBytes));
  };

  #write(controller: DispatchController, chunk: Buffer): void {
    try {
      if (!this.#sink!.write(chunk) && !this.#paused) {
        controller.pause();
        this.#paused = true;
        this.#pausedAt = performance.now();
        this.#sink!.onDrain(this.#onDrain);
        // The client must read within the body timeout: undici's body timer does not run while paused.
        if (this.#timer === undefined)
          this.#timer = setTimeout(() => this.#bodyIdle(), this.#call.bodyTimeoutMs);
        else this.#timer.refresh();
      }
    } catch (error) {
      controller.abort(error as Error); // a status or header node refuses to send: the exchange failed
    }
  }

  onResponseEnd(controller: DispatchController, trailers?: IncomingHttpHeaders): void {
    closeConnectionIfTrailersSayClose(trailers);
    this.#writeBatch();
    if (!this.#dropped) {
      try {
        this.#sink?.end();
      } catch (error) {
        this.onResponseError(controller, error as Error);
        return;
      }
    }
    this.#settle(
      { kind: 'response', status: this.#status },
      this.#dropped ? { retryStatus: this.#status } : undefined,
    );
  }

  onResponseError(controller: DispatchController | undefined, error: Error): void {
    if (this.#settled) return;
    if (this.#unsentOnClosedConnection(error)) {
      this.#resend('unsent', { ...this.#resendsLeft, unsent: this.#resendsLeft.unsent - 1 });
      return;
    }
    if (this.#unansweredOnClosedConnection(error)) {
      this.#resend('closed_before_answer', {
        ...this.#resendsLeft,
        unanswered: this.#resendsLeft.unanswered - 1,
      });
      return;
    }
    const status = this.#status;
    if (
      controller !== undefined &&
      hasNoContent(status) &&
      (error as { code?: string }).code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH'
    ) {
      // undici checks a 204's or 304's Content-Length (a 304 may give the representation's) against
      // the body these never have, and a 205's against the body dropped anyway: the answer is whole.
      this.onResponseEnd(controller);
      return;
    }
    if (this.#dropped) {
      // The dropped answer was aborted: nothing reached the client, the retry goes on.
      this.#settle({ kind: 'response', status }, { retryStatus: status });
      return;
    }
    const { res } = this.#exchange;
    const failure = classifyProxyError(error);
    // Not `req.destroyed`: undici destroys the request body stream itself when the exchange fails,
    // while the client is still there waiting for its answer.
    const clientLeft = this.#clientGone || res.destroyed;
    // The origin's status and headers went into this response (they are held back until the first
    // body byte, and one node refuses to write never gets there: both are answered below).
    const started = res.headersSent;
    // An ending that is not the origin's doing (the client left or read nothing for the body timeout,
    // its body was too large, the pool's queue) says nothing about the origin beyond the final status it
    // sent, if it sent one. The origin's own (a reset, a short or malformed body, a trailer section past
    // the bounds, its body's timeout) fails the exchange, also once its head went out to the client;
    // unless its client held it back a while: an origin giving up on a reader that slow (its send
    // timeout) is no sign of its health, and any client could open its circuit so. Nor is it a sign of
    // health: counted as its status, each slow reader's cut would reset the failures in a row of a
    // target cutting every body.
    const heldBack = this.#heldBack || (this.#paused && performance.now() - this.#pausedAt >= CLIENT_HOLD_MS);
    let outcome: UpstreamOutcome;
    if (clientLeft || failure.outcome.kind === 'cancelled')
      outcome = status === 0 ? CANCELLED : { kind: 'response', status };
    else outcome = heldBack || this.#uploadHeldBack(status) ? CANCELLED : failure.outcome;
    this.#settle(
      outcome,
      started || clientLeft ? undefined : status === 0 ? failure : { ...failure, answered: true },
    );
    if (started) {
      // Logged beside the status that went out: the origin cut it, not the client (nor its body's size).
      if (!clientLeft && failure.outcome.kind !== 'cancelled') this.#exchange.upstreamCutCode = failure.code;
      // All we can do is cut the response so the client sees a truncated body. (A stage that took the
      // response, the cache, wrote the head at once: make sure the status line is out first.)
      if (!res.writableEnded) res.flushHeaders();
      res.destroy();
    }
  }

  /**
   * The origin ended the exchange before answering while the client's body, unfinished, had sent nothing
   * for CLIENT_HOLD_MS: an origin closing on a stalled upload (nginx's client_body_timeout and HAProxy's
   * http-request timeout close without an answer) is no sign of its health, and a few clients stalling
   * uploads at once would eject the target and open its circuit for every client of the tenant.
   */
  #uploadHeldBack(status: number): boolean {
    return (
      status === 0 &&
      this.#streamedBody !== undefined &&
      !this.#exchange.req.complete &&
      performance.now() - this.#clientBodyAt >= CLIENT_HOLD_MS
    );
  }

  /**
   * The connection ended before undici wrote anything of the request: its body streams, and undici has
   * had neither a byte of it nor its end (it writes the head with the first, or at the end of an empty
   * body), nor has any been read from the client (none is lost with this attempt's stream).
   */
  #unsentOnClosedConnection(error: Error): boolean {
    const body = this.#streamedBody;
    const { req } = this.#exchange;
    return (
      this.#resendsLeft.unsent > 0 &&
      body !== undefined &&
      !body.readableDidRead &&
      !body.readableEnded &&
      this.#call.bodyReadAlready === undefined &&
      !req.readableDidRead &&
      !req.readableEnded &&
      this.#closedUnansweredForWaitingClient(error)
    );
  }

  /**
   * A request without a body, of an idempotent method, whose connection closed or was reset soon after
   * the request reached it (STALE_CONNECTION_MS) and before any answer, interim or final.
   */
  #unansweredOnClosedConnection(error: Error): boolean {
    const call = this.#call;
    return (
      this.#resendsLeft.unanswered > 0 &&
      !this.#interim &&
      !call.hasBody &&
      call.resetRetried !== true &&
      RESENDABLE_METHODS.has(this.#exchange.req.method ?? '') &&
      performance.now() - (this.#startedAt || this.#sentAt) < STALE_CONNECTION_MS &&
      this.#closedUnansweredForWaitingClient(error)
    );
  }

  /** The connection was closed or reset before a final answer came, and the client still waits for one. */
  #closedUnansweredForWaitingClient(error: Error): boolean {
    return (
      this.#status === 0 &&
      !this.#clientGone &&
      !this.#exchange.res.destroyed &&
      CLOSED_CONNECTION_CODES.has((error as { code?: string }).code ?? '')
    );
  }

  /**
   * To another connection (with a new stream of the client's body, if it streams); the lease is still
   * this request's.
   */
  #resend(reason: UpstreamResendReason, resendsLeft: ResendsLeft): void {
    this.#exchange.resends++;
    this.#call.resends?.countUpstreamResend(this.#exchange.tenant?.id ?? '', reason);
    this.#settled = true;
    this.#detach();
    const body = this.#streamedBody;
    if (body !== undefined) {
      this.#exchange.req.unpipe(body);
      body.destroy();
    }
    dispatchToOrigin(this.#exchange, this.#call, this.#resolve, resendsLeft);
  }

  /** The final head's deadline, from when the request body was sent whole (now, if not yet). */
  #startFinalHeadDeadline(): void {
    const body = this.#streamedBody;
    const timeoutMs = this.#call.headersTimeoutMs;
    if (body === undefined) {
      // No body, or one in memory (a replayed one) written right after the request head.
      this.#armFinalHeadDeadline(timeoutMs - (performance.now() - (this.#startedAt || this.#sentAt)));
    } else if (body.readableEnded) {
      this.#armFinalHeadDeadline(timeoutMs); // sent before this 1xx came
    } else {
      this.#onBodySent = () => this.#armFinalHeadDeadline(timeoutMs);
      body.once('end', this.#onBodySent);
    }
  }

  /**
   * After a 1xx, while the client's body is still being sent: the response-head timeout runs between two
   * chunks undici takes of it, and cuts the exchange only while undici holds the body back for the origin
   * (its socket full: the origin reads nothing), as undici's own timer does before any 1xx. A client
   * pausing its upload is not the origin's time: its own request timeout bounds it.
   */
  #watchUpload(): void {
    const body = this.#streamedBody;
    if (this.#onBodyProgress !== undefined || body === undefined || body.readableEnded) return;
    this.#onBodyProgress = (): void => {
      if (this.#status === 0) this.#timer?.refresh();
    };
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      // undici pauses the body when its socket asks to drain, and resumes it once it drained.
      if (body.readableFlowing === false) this.#controller?.abort(new FinalHeadTimeoutError());
      else this.#timer?.refresh();
    }, this.#call.headersTimeoutMs);
    // Another listener beside undici's, which has the body flowing already (or paused: it stays so).
    body.on('data', this.#onBodyProgress);
  }

  #stopWatchingUpload(): void {
    if (this.#onBodyProgress !== undefined) this.#streamedBody?.off('data', this.#onBodyProgress);
  }

  #armFinalHeadDeadline(ms: number): void {
    this.#stopWatchingUpload();
    if (this.#settled || this.#status !== 0) return; // the final head came first
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#controller?.abort(new FinalHeadTimeoutError()), Math.max(0, ms));
  }

  /** This exchange stops listening to the client's response and body, and its timer stops. */
  #detach(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#onBodySent !== undefined) this.#streamedBody?.off('end', this.#onBodySent);
    this.#streamedBody?.off('end', this.#onClientBodySent);
    this.#exchange.req.off('data', this.#onClientBodyChunk);
    this.#stopWatchingUpload();
    this.#exchange.res.off('close', this.#onClientClose);
  }

  /**
   * Nothing moved for the body timeout: a client that read nothing while the origin waited for it is
   * cut off; with the route's exact timeout, so is an origin that sent nothing.
   */
  #bodyIdle(): void {
    if (this.#settled) return;
    if (this.#paused) {
      this.#clientGone = true;
      this.#controller?.abort(new ClientStalledError());
    } else if (this.#call.exactBodyTimeout) {
      this.#controller?.abort(new BodyIdleTimeoutError());
    }
  }

  #settle(outcome: UpstreamOutcome, result: ProxyResult): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#detach();
    // The exchange is over: whatever undici did not read of the client's body is not for the origin.
    if (this.#streamedBody !== undefined)
      discardUnreadBody(this.#exchange.req, this.#exchange.res, this.#call.unknownLengthLimit);
    this.#call.lease.release(outcome);
    this.#resolve(result);
  }
}

/**
 * A pause of the origin for its client this long is the client's slowness, not a socket buffer's moment:
 * an origin cutting its answer after it (origins' send timeouts are seconds: nginx's send_timeout 60 s)
 * may have given up on the reader, and the cut is not counted against it.
 */
const CLIENT_HOLD_MS = 1_000;

/** Body chunks waiting to be written to the client together are written once they hold this many bytes. */
const BATCH_BYTES = 16 * 1024;
/**
 * A chunk this large is written as it comes (a stalled client holds at most a high-water mark's worth
 * of them); smaller ones are, up to SMALL_CHUNKS_WRITTEN_AT_ONCE per response, then batched per read.
 */
const SMALL_CHUNK_BYTES = 1024;
const SMALL_CHUNKS_WRITTEN_AT_ONCE = 4;

/** A dropped answer (to be retried) this short, with a Content-Length, is read to its end… */
const DROPPED_ANSWER_DRAINED_BYTES = 64 * 1024;
/** …within this long; else its exchange is aborted, closing its connection. */
const DROPPED_ANSWER_DRAIN_MS = 1_000;

/** The origin sent 1xx answers but no final one within the response-head timeout (504). */
class FinalHeadTimeoutError extends Error {
  readonly code = 'GATEWAY_HEADERS_TIMEOUT';
  constructor() {
    super('the origin sent no final response head in time');
  }
}

/** The origin sent no chunk of its response body within the route's idle timeout (the response is cut). */
class BodyIdleTimeoutError extends Error {
  readonly code = 'GATEWAY_BODY_TIMEOUT';
  constructor() {
    super('the origin sent nothing of its response body in time');
  }
}

/** The origin's status is not an HTTP status (600–999): 502 upstream_error. */
class InvalidStatusError extends Error {
  readonly code = 'GATEWAY_INVALID_STATUS';
  constructor(status: number) {
    super(`the origin answered status ${status}, outside 100-599`);
  }
}

/** A request waited for a pooled connection longer than its response-head timeout (504). */
class QueueTimeoutError extends Error {
  readonly code = 'GATEWAY_QUEUE_TIMEOUT';
  constructor() {
    super('no connection to the origin became free in time');
  }
}

/** Why a response to be retried was aborted. */
class DroppedAnswerError extends Error {
  readonly code = 'GATEWAY_ANSWER_DROPPED';
  constructor() {
    super('the answer is retried on another target');
  }
}

/** Why an upstream exchange was aborted when its client read nothing for the body timeout. */
class ClientStalledError extends Error {
  readonly code = 'GATEWAY_CLIENT_STALLED';
  constructor() {
    super('the client stopped reading the response');
  }
}

/** Why an upstream exchange was aborted when its client went away. */
class ClientGoneError extends Error {
  readonly code = 'GATEWAY_CLIENT_GONE';
  constructor() {
    super('the client went away');
  }
}

/** The origin's Vary plus the fields the gateway varies on, once each; the gateway's copy removed. */
function mergeVary(exchange: GatewayExchange, outHeaders: OutgoingHttpHeaders): void {
  const { res } = exchange;
  const own = outHeaders['vary'];
  const gateway = res.getHeader('vary');
  exchange.varyOriginByGateway = !varyNames(own, 'origin') && varyNames(gateway, 'origin');
  outHeaders['vary'] = mergedVary(own, gateway) ?? '';
  res.removeHeader('vary');
}
