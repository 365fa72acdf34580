import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { arrivedOverHttp2 } from '@vantageedge/shared/http/request-version';

type Handler<Req, Res> = (req: Req, res: Res) => void;

/** How many of a connection's requests were handed to the handler. */
const HANDLED_REQUESTS = Symbol('handledRequests');

/** Wraps a listener's handler so its HTTP/1.1 requests count in their connection's budget. */
export type RequestsPerConnectionLimit = <Req extends IncomingMessage, Res extends ServerResponse>(
  handler: Handler<Req, Res>,
) => Handler<Req, Res>;

/**
 * GATEWAY_MAX_REQUESTS_PER_CONNECTION for HTTP/1.1 connections, as nginx's `keepalive_requests`: the
 * budget's last request is answered with `Connection: close` and the connection ends after that answer;
 * requests the client pipelined behind it are not handled at all (RFC 9112 §9.6), and the client sends
 * them again on a new connection (§9.3.2). node's own `maxRequestsPerSocket` answered each of them a bare
 * 503 instead (no error code, no access-log line, no metric), which a client takes as the answer: on a
 * connection reused across hosts, another tenant's requests failed for what the first one's used up. It
 * also left open the connection its answer said was closing, until the keep-alive timeout.
 *
 * Every handler the returned function wraps ('request', 'checkExpectation') counts in the same budget of
 * each connection. Wrap it inside the handlers that make requests wait their turn (one-request-at-a-time.ts):
 * requests are then counted in the order node parsed them, and those past the budget, which node holds
 * parsed until the connection closes, wait within that queue's bounds. Counted as node hands them over,
 * they would sit outside it: one write of small requests behind a budget's last one that hangs would hold
 * thousands of them, a few KB each.
 * HTTP/2 streams pass through (their session's budget is its own, see http2-sessions.ts).
 */
export function limitRequestsPerConnection(maxRequests: number): RequestsPerConnectionLimit {
  return (handler) => {
    if (maxRequests <= 0) return handler;
    return (req, res) => {
      if (arrivedOverHttp2(req)) {
        handler(req, res);
        return;
      }
      // Kept on the socket itself: a field read and write per request, where a WeakMap costs a hash
      // lookup and an insert on every request.
      const socket = req.socket as Duplex & { [HANDLED_REQUESTS]?: number };
      const count = (socket[HANDLED_REQUESTS] ?? 0) + 1;
      socket[HANDLED_REQUESTS] = count;
      if (count > maxRequests) return;
      // The budget in the Keep-Alive field node writes (`timeout=…, max=…`), as it did with its own.
      (res as ServerResponse & { _maxRequestsPerSocket?: number })._maxRequestsPerSocket = maxRequests;
      if (count === maxRequests) res.shouldKeepAlive = false;
      handler(req, res);
    };
  };
}
