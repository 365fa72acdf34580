import type { OutgoingHttpHeaders } from 'node:http';
import { Transform, type Writable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { CompiledOrigin } from '../config/compiled-tenant.js';
import type { GatewayExchange } from '../pipeline/exchange.js';
import type { ResponseHead } from '../pipeline/stage.js';
import type { UpstreamLease, UpstreamOutcome } from '../upstream/types.js';
import type { CookieDomainGuard } from './cookie-domains.js';
import { downstreamResponseHeaders } from './forwarded-headers.js';

export type ProxyFailure = {
  status: 502 | 504 | 413;
  code: string;
  message: string;
  outcome: UpstreamOutcome;
};

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
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
  /** The origin's response head arrived: write it to the client and say where the body goes. */
  readonly onResponse: (exchange: GatewayExchange, head: ResponseHead) => Writable;
  /** Removes Set-Cookie Domain attributes that would reach other tenants' hosts. */
  readonly cookieDomains: CookieDomainGuard;
}

/**
 * One upstream exchange through the target's keep-alive pool, streaming both ways (undici `stream`
 * writes the origin's body straight into the client response). Resolves with the failure to answer
 * (when no response has started) or undefined; always releases the lease exactly once.
 *
 * A client that goes away aborts the upstream exchange at once (undici closes that origin connection),
 * instead of leaving it to run, and pin a pooled connection, until the origin answers or times out;
 * such a lease is released as cancelled, which says nothing about the origin's health.
 */
export async function proxyRequest(
  exchange: GatewayExchange,
  call: ProxyCall,
): Promise<ProxyFailure | undefined> {
  const { req, res } = exchange;
  const target = call.lease.target;
  exchange.upstreamTarget = target.id;
  let body: Dispatcher.DispatchOptions['body'] = null;
  if (call.hasBody)
    body = call.unknownLengthLimit === undefined ? req : req.pipe(limitBody(call.unknownLengthLimit));
  const sentAt = performance.now();
  let status = 0;
  const clientGone = new AbortController();
  // Not `writableFinished`: HTTP/2's response reports itself finished once its stream closed, also
  // when the client reset the stream before the response was ended.
  const abortIfClientGone = () => {
    if (!res.writableEnded) clientGone.abort();
  };
  res.once('close', abortIfClientGone);
  try {
    await target.dispatcher.stream(
      {
        path: target.basePath + call.pathAndQuery,
        method: req.method as Dispatcher.HttpMethod,
        headers: call.headers as Record<string, string | string[]>,
        body,
        headersTimeout: call.origin.timeoutMs,
        bodyTimeout: call.origin.timeoutMs,
        signal: clientGone.signal,
      },
      ({ statusCode, headers }): Writable => {
        status = statusCode;
        exchange.upstreamMs = performance.now() - sentAt;
        const outHeaders = downstreamResponseHeaders(
          headers as Record<string, string | string[] | undefined>,
        );
        const setCookie = outHeaders['set-cookie'];
        if (setCookie !== undefined)
          outHeaders['set-cookie'] = call.cookieDomains.scope(setCookie, req.headers.host, exchange.tenant!);
        // Headers the gateway already set for this request (RateLimit*, X-Cache, …) win over the
        // origin's: writeHead() would otherwise let the origin's values replace them.
        for (const name of res.getHeaderNames()) delete outHeaders[name];
        outHeaders['x-request-id'] = exchange.requestId;
        return call.onResponse(exchange, { statusCode, headers: outHeaders });
      },
    );
    call.lease.release({ kind: 'response', status });
    return undefined;
  } catch (error) {
    const failure = classifyProxyError(error);
    // Not `req.destroyed`: undici destroys the request body stream itself when the exchange fails,
    // while the client is still there waiting for its answer.
    const clientLeft = clientGone.signal.aborted || res.destroyed;
    // A client that went away before the origin answered says nothing about the origin's health.
    const cancelled = status === 0 && failure.status !== 413 && clientLeft;
    // The origin's status and headers went into this response (they are held back until the first
    // body byte, and one node refuses to write never gets there: both are answered below).
    const started = res.headersSent;
    call.lease.release(
      cancelled ? { kind: 'cancelled' } : started ? { kind: 'response', status } : failure.outcome,
    );
    if (started) {
      // All we can do is cut the response so the client sees a truncated body. (A stage that took the
      // response, the cache, wrote the head at once: make sure the status line is out first.)
      if (!res.writableEnded) res.flushHeaders();
      res.destroy();
      return undefined;
    }
    if (clientLeft) return undefined; // the client went away; nobody to answer
    return failure;
  } finally {
    res.off('close', abortIfClientGone);
  }
}
