import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { RouteTimeouts } from '@vantageedge/shared/domain/route-policies';
import { isInternalListenerResponse } from '@vantageedge/shared/http/internal-listener';
import type { Dispatcher } from 'undici';
import { hasNoContent } from '../http/no-content.js';
import { hasUndecodedTransferCoding, UndecodedTransferCodingError } from '../http/transfer-codings.js';
import { propagateTraceContext } from '../observability/request-tracing.js';
import type { GatewayExchange } from '../pipeline/exchange.js';
import { originPath, originRequestHeaders } from '../pipeline/origin-request.js';
import { downstreamResponseHeaders } from '../proxy/forwarded-headers.js';
import { classifyProxyError } from '../proxy/proxy-request.js';
import { OriginAddressBlockedError } from '../upstream/guarded-connector.js';
import {
  CLIENT_CONDITIONAL_FIELDS,
  ORIGIN_ONLY_REQUEST_FIELDS,
  removeClientFields,
} from './client-conditional.js';
import type { CacheFill, ResponseCache } from './response-cache.js';
import { revalidationHeaders } from './revalidation.js';

/**
 * stale-while-revalidate (RFC 5861 §3): the client already got the stale entry; this request's fill
 * (held by this replica's lease) refreshes it from the origin in the background: conditionally when the
 * entry has a validator (a 304 refreshes its headers and freshness), else a full GET. The body is
 * collected like a client's fill (cache.beginFill): bytes reserved from the replica's fill budget as they
 * arrive, within the tenant's share and the fill deadline. The response is stored if the rules allow; when
 * the rules refuse it, the budget has no room or the fill stops collecting, the origin's body is not read
 * any further, the fill is dropped and the entry stays as it is. It is sent with its route's timeouts
 * (connect, response head, idle), as a client's request to the route would be.
 */
export function refreshInBackground(cache: ResponseCache, exchange: GatewayExchange, fill: CacheFill): void {
  // The entry is the answer of the origin the route's traffic split chose (it is part of the key).
  const origin = exchange.origin ?? exchange.route?.origin;
  // A refresh is one of the tenant's requests in flight to its origins; at its limit the entry stays stale.
  const upstreamRequests = exchange.tenant!.upstreamRequests;
  if (origin === undefined || !upstreamRequests.tryStart()) {
    cache.abandon(fill);
    return;
  }
  const lease = origin.upstreams.acquire({
    clientIp: exchange.clientIp,
    path: exchange.path,
    headers: exchange.req.headers,
    peerTrusted: exchange.peerTrusted,
    routeHeaders: exchange.routeRequestHeaders,
  });
  if (lease === undefined) {
    upstreamRequests.end();
    cache.abandon(fill);
    return;
  }
  const { path, stripped } = originPath(exchange);
  const headers = originRequestHeaders(exchange, lease, stripped);
  removeClientFields(headers, CLIENT_CONDITIONAL_FIELDS);
  removeClientFields(headers, ORIGIN_ONLY_REQUEST_FIELDS);
  if (fill.revalidating !== null) Object.assign(headers, revalidationHeaders(fill.revalidating));
  // Tracing on: the refresh belongs to the request's trace, as its proxied call would.
  if (exchange.span !== undefined) propagateTraceContext(exchange.span, headers);
  const deadlines = refreshDeadlines(exchange.route?.config.timeouts ?? null, origin.timeoutMs);
  const dispatcher =
    deadlines.connectMs === undefined
      ? lease.target.dispatcher
      : (lease.target.dispatcherWithConnectTimeout?.(deadlines.connectMs) ?? lease.target.dispatcher);
  // No client waits for a refresh to end it: its final head must come within the response-head timeout
  // of its start, however long it waits for a pooled connection and however many 1xx the origin sends
  // (undici starts its own head timer again on each one).
  const headDeadline = new AbortController();
  const headTimer = setTimeout(
    () => headDeadline.abort(new RefreshHeadTimeoutError()),
    deadlines.responseHeadersMs,
  );
  let status = 0;
  /** The origin's body failed while read (cut, malformed, its idle timeout): the origin's failure. */
  let bodyFailed = false;
  void dispatcher
    .request({
      path: lease.target.basePath + path + exchange.query,
      method: 'GET',
      headers: headers as Record<string, string | string[]>,
      headersTimeout: deadlines.responseHeadersMs,
      bodyTimeout: deadlines.idleMs,
      signal: headDeadline.signal,
    })
    .then(async (response: Dispatcher.ResponseData) => {
      clearTimeout(headTimer);
      // One of the platform's internal listeners (x-vantageedge-internal) answered: never stored, the
      // lease released as a refused address is (the proxy answers such a response 502).
      if (isInternalListenerResponse(response.headers)) {
        void response.body.dump().catch(() => {});
        throw new OriginAddressBlockedError('the origin is one of the platform’s internal listeners');
      }
      // Bytes under a coding other than chunked are not the content: never stored, as the proxy never
      // relays them (the lease released as for a failed exchange).
      const transferEncoding = response.headers['transfer-encoding'];
      if (!hasNoContent(response.statusCode) && hasUndecodedTransferCoding(transferEncoding)) {
        dropUnread(response.body);
        throw new UndecodedTransferCodingError(transferEncoding);
      }
      status = response.statusCode;
      const received = asClientFillStoresIt(
        exchange,
        status,
        response.headers as Record<string, string | string[] | undefined>,
      );
      // Set-Cookie is scoped per client host by the proxy; a background fill never stores one. A 304's
      // would replace the stored (scoped) one unscoped: the entry keeps its own.
      if (status === 304 && fill.revalidating !== null) {
        await response.body.dump();
        delete received['set-cookie'];
        cache.revalidated(fill, received);
        return;
      }
      if (received['set-cookie'] !== undefined) {
        dropUnread(response.body);
        cache.abandon(fill);
        return;
      }
      const started = cache.beginFill(fill, 'GET', status, received);
      if (started.outcome !== 'collect') {
        // Refused or over budget: beginFill dropped the fill. Nobody waits for this body.
        dropUnread(response.body);
        return;
      }
      const body = started.body;
      try {
        for await (const chunk of response.body) {
          body.push(chunk as Buffer);
          if (!body.collecting) break; // too large, over the budget or past the deadline: stop reading
        }
      } catch (error) {
        bodyFailed = true;
        body.abort();
        throw error;
      }
      if (!body.collecting) {
        dropUnread(response.body);
        body.abort();
        return;
      }
      await body.end();
    })
    .then(
      () => lease.release({ kind: 'response', status }),
      (error: unknown) => {
        clearTimeout(headTimer);
        cache.abandon(fill);
        // After the head, only a body the origin cut is its failure (not the store's, nor the cache's).
        lease.release(
          status === 0 || bodyFailed ? classifyProxyError(error).outcome : { kind: 'response', status },
        );
      },
    )
    .finally(() => upstreamRequests.end());
}

/**
 * Stops reading an origin body nobody wants (its connection is closed). undici's body, destroyed before
 * its end, fails with RequestAbortedError: unheard, that error would be an uncaught exception, and the
 * replica, serving every tenant, would exit.
 */
function dropUnread(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => {});
  body.destroy();
}

/** The route's timeouts (as a client's request to it gets them), else the origin's timeout_seconds. */
function refreshDeadlines(timeouts: RouteTimeouts | null, originTimeoutMs: number) {
  return {
    connectMs: timeouts?.connect_ms,
    responseHeadersMs: timeouts?.response_headers_ms ?? originTimeoutMs,
    idleMs: timeouts?.idle_ms ?? originTimeoutMs,
  };
}

/** The origin sent no final response head for a refresh in time (a timeout, for its target's health). */
class RefreshHeadTimeoutError extends Error {
  readonly code = 'GATEWAY_HEADERS_TIMEOUT';
  constructor() {
    super('the origin sent no final response head for the refresh in time');
  }
}

/**
 * The origin's answer to a refresh as a client's fill hands it to the cache: through the route's
 * response hooks that run before the cache's (response_headers; on a CORS route, the origin's CORS fields
 * dropped). Stored as it came, every HIT after the refresh would answer with what those leave out.
 */
function asClientFillStoresIt(
  exchange: GatewayExchange,
  statusCode: number,
  received: Record<string, string | string[] | undefined>,
): IncomingHttpHeaders {
  const headers = downstreamResponseHeaders(received);
  for (const stage of exchange.route?.stages.response ?? []) {
    if (stage.name === CACHE_STAGE) break;
    stage.onResponse!(exchange, { statusCode, headers });
  }
  return incoming(headers);
}

/** The cache stage's name (cache-stage.ts): the response hooks listed before it run before it takes its copy. */
const CACHE_STAGE = 'cache';

function incoming(headers: OutgoingHttpHeaders): IncomingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.map(String) : String(value);
  }
  return out as IncomingHttpHeaders;
}
