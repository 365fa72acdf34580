import type { OutgoingHttpHeaders } from 'node:http';
import { Transform } from 'node:stream';
import { isInternalListenerResponse } from '@vantageedge/shared/http/internal-listener';
import type { Dispatcher } from 'undici';
import type { CompiledOrigin } from '../config/compiled-tenant.js';
import { requestAuthority } from '../http/request-authority.js';
import type { GatewayExchange } from '../pipeline/exchange.js';
import type { ResponseHead } from '../pipeline/stage.js';
import { OriginAddressBlockedError } from '../upstream/guarded-connector.js';
import type { UpstreamLease, UpstreamOutcome } from '../upstream/types.js';
import type { ResponseBodySink } from './client-response-writer.js';
import type { CookieDomainGuard } from './cookie-domains.js';
import { downstreamResponseHeaders } from './forwarded-headers.js';

export type ProxyFailure = {
  status: 502 | 504 | 413;
  code: string;
  message: string;
  outcome: UpstreamOutcome;
};

/** The origin answered a status the call asked to retry on: its body was read and dropped. */
export type RetryableAnswer = { readonly retryStatus: number };

export type ProxyResult = ProxyFailure | RetryableAnswer | undefined;

const TIMEOUT_CODES = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'GATEWAY_HEADERS_TIMEOUT',
]);
const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

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
      outcome: { kind: 'reset' },
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
  if (TIMEOUT_CODES.has(code)) {
    return {
      status: 504,
      code: 'upstream_timeout',
      message: 'the origin did not answer in time',
      outcome: { kind: 'timeout' },
    };
  }
  if (CONNECT_CODES.has(code) || CONNECT_CODES.has(causeCode)) {
    return {
      status: 502,
      code: 'upstream_unreachable',
      message: 'the origin refused the connection',
      outcome: { kind: 'connect_error' },
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
  /** The client's body, read already (a request that may be retried sends it again). */
  readonly bufferedBody?: Buffer | undefined;
  /** The target's pool to use instead of its default one (a route's own connect timeout). */
  readonly dispatcher?: Dispatcher | undefined;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  /**
   * Asked when the origin's response head arrives: true drops this response (its body is read and
   * discarded, the connection stays usable) and the call resolves with RetryableAnswer.
   */
  readonly retryOnStatus?: ((status: number) => boolean) | undefined;
  /** The origin's response head arrived: write it to the client and say where the body goes. */
  readonly onResponse: (exchange: GatewayExchange, head: ResponseHead) => ResponseBodySink;
  /** Removes Set-Cookie Domain attributes that would reach other tenants' hosts. */
  readonly cookieDomains: CookieDomainGuard;
}

/**
 * One upstream exchange through the target's keep-alive pool, streaming both ways: undici's dispatch
 * API hands each chunk of the origin's body straight to the client response (no stream object of our
 * own per request; backpressure pauses the origin). Resolves with the failure to answer (when no
 * response has started) or undefined; always releases the lease exactly once.
 *
 * A client that goes away aborts the upstream exchange at once (undici closes that origin connection),
 * instead of leaving it to run, and pin a pooled connection, until the origin answers or times out;
 * such a lease is released as cancelled, which says nothing about the origin's health.
 */
export function proxyRequest(exchange: GatewayExchange, call: ProxyCall): Promise<ProxyResult> {
  const { req } = exchange;
  const target = call.lease.target;
  exchange.upstreamTarget = target.id;
  let body: Dispatcher.DispatchOptions['body'] = null;
  if (call.bufferedBody !== undefined) body = call.bufferedBody;
  else if (call.hasBody)
    body = call.unknownLengthLimit === undefined ? req : req.pipe(limitBody(call.unknownLengthLimit));
  return new Promise((resolve) => {
    (call.dispatcher ?? target.dispatcher).dispatch(
      {
        path: target.basePath + call.pathAndQuery,
        method: req.method as Dispatcher.HttpMethod,
        headers: call.headers as Record<string, string | string[]>,
        body,
        headersTimeout: call.headersTimeoutMs,
        bodyTimeout: call.bodyTimeoutMs,
      },
      new OriginExchange(exchange, call, resolve),
    );
  });
}

type DispatchController = Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseData']>>[0];

/** The handler of one upstream exchange (undici's dispatch API), from request start to settlement. */
class OriginExchange implements Dispatcher.DispatchHandler {
  readonly #exchange: GatewayExchange;
  readonly #call: ProxyCall;
  readonly #resolve: (result: ProxyResult) => void;
  readonly #sentAt = performance.now();
  #controller: DispatchController | undefined;
  /** Set at the first 1xx: the final response must come by the response-head timeout. */
  #finalHeadDeadline: NodeJS.Timeout | undefined;
  #sink: ResponseBodySink | undefined;
  #status = 0;
  /** The origin's answer is to be retried: its body is read and dropped. */
  #dropped = false;
  #clientGone = false;
  #settled = false;
  readonly #onClientClose = (): void => {
    // Not `writableFinished`: HTTP/2's response reports itself finished once its stream closed, also
    // when the client reset the stream before the response was ended.
    if (this.#exchange.res.writableEnded) return;
    this.#clientGone = true;
    this.#controller?.abort(new ClientGoneError());
  };
  readonly #onDrain = (): void => this.#controller?.resume();

  constructor(exchange: GatewayExchange, call: ProxyCall, resolve: (result: ProxyResult) => void) {
    this.#exchange = exchange;
    this.#call = call;
    this.#resolve = resolve;
    exchange.res.once('close', this.#onClientClose);
  }

  onRequestStart(controller: DispatchController): void {
    this.#controller = controller;
    if (this.#clientGone) controller.abort(new ClientGoneError());
  }

  onResponseStart(
    controller: DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (statusCode < 200) {
      // 1xx: the final answer follows, within the time the origin has for its response head (undici
      // starts its own timer again on each 1xx, so an origin sending 103 every second never timed out).
      this.#finalHeadDeadline ??= setTimeout(
        () => controller.abort(new FinalHeadTimeoutError()),
        Math.max(0, this.#call.headersTimeoutMs - (performance.now() - this.#sentAt)),
      );
      return;
    }
    if (this.#finalHeadDeadline !== undefined) clearTimeout(this.#finalHeadDeadline);
    if (isInternalListenerResponse(headers)) {
      // A platform listener that is not tenant traffic (a replica's admin port, a projector's metrics,
      // the control plane) answered: nothing of it reaches the client or a stage (the cache), and the
      // exchange fails as a connection to a refused address does (502 origin_address_blocked).
      controller.abort(
        new OriginAddressBlockedError('the origin is one of the platform’s internal listeners'),
      );
      return;
    }
    const exchange = this.#exchange;
    const { req, res } = exchange;
    this.#status = statusCode;
    exchange.upstreamMs = performance.now() - this.#sentAt;
    if (this.#call.retryOnStatus?.(statusCode)) {
      this.#dropped = true;
      return;
    }
    try {
      // Headers the gateway already set for this request (RateLimit*, X-Cache, …) win over the
      // origin's: writeHead() would otherwise let the origin's values replace them. Vary is the
      // exception: the gateway's (CORS: Origin) and the origin's are one list.
      const outHeaders = downstreamResponseHeaders(headers, res);
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
      if (outHeaders['vary'] !== undefined && res.hasHeader('vary')) mergeVary(res, outHeaders);
      outHeaders['x-request-id'] = exchange.requestId;
      this.#sink = this.#call.onResponse(exchange, { statusCode, headers: outHeaders });
    } catch (error) {
      controller.abort(error as Error);
    }
  }

  onResponseData(controller: DispatchController, chunk: Buffer): void {
    if (this.#dropped || this.#sink === undefined) return;
    try {
      if (!this.#sink.write(chunk)) {
        controller.pause();
        this.#sink.onDrain(this.#onDrain);
      }
    } catch (error) {
      controller.abort(error as Error); // a status or header node refuses to send: the exchange failed
    }
  }

  onResponseEnd(controller: DispatchController): void {
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

  onResponseError(_controller: DispatchController, error: Error): void {
    const status = this.#status;
    if (this.#dropped) {
      // The dropped answer's body failed midway: nothing reached the client, the retry goes on.
      this.#settle({ kind: 'response', status }, { retryStatus: status });
      return;
    }
    const { res } = this.#exchange;
    const failure = classifyProxyError(error);
    // Not `req.destroyed`: undici destroys the request body stream itself when the exchange fails,
    // while the client is still there waiting for its answer.
    const clientLeft = this.#clientGone || res.destroyed;
    // A client that went away before the origin answered says nothing about the origin's health.
    const cancelled = status === 0 && failure.status !== 413 && clientLeft;
    // The origin's status and headers went into this response (they are held back until the first
    // body byte, and one node refuses to write never gets there: both are answered below).
    const started = res.headersSent;
    this.#settle(
      cancelled ? { kind: 'cancelled' } : started ? { kind: 'response', status } : failure.outcome,
      started || clientLeft ? undefined : failure,
    );
    if (started) {
      // All we can do is cut the response so the client sees a truncated body. (A stage that took the
      // response, the cache, wrote the head at once: make sure the status line is out first.)
      if (!res.writableEnded) res.flushHeaders();
      res.destroy();
    }
  }

  #settle(outcome: UpstreamOutcome, result: ProxyResult): void {
    if (this.#settled) return;
    this.#settled = true;
    if (this.#finalHeadDeadline !== undefined) clearTimeout(this.#finalHeadDeadline);
    this.#exchange.res.off('close', this.#onClientClose);
    this.#call.lease.release(outcome);
    this.#resolve(result);
  }
}

/** The origin sent 1xx answers but no final one within the response-head timeout (504). */
class FinalHeadTimeoutError extends Error {
  readonly code = 'GATEWAY_HEADERS_TIMEOUT';
  constructor() {
    super('the origin sent no final response head in time');
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
function mergeVary(res: GatewayExchange['res'], outHeaders: OutgoingHttpHeaders): void {
  const fields: string[] = [];
  const seen = new Set<string>();
  for (const value of [outHeaders['vary'], res.getHeader('vary')]) {
    const text = Array.isArray(value) ? value.join(',') : String(value ?? '');
    for (const raw of text.split(',')) {
      const field = raw.trim();
      if (field === '' || seen.has(field.toLowerCase())) continue;
      seen.add(field.toLowerCase());
      fields.push(field);
    }
  }
  outHeaders['vary'] = fields.join(', ');
  res.removeHeader('vary');
}
