import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants, type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from 'node:http2';
import { arrivedOverHttp2 } from '@vantageedge/shared/http/request-version';
import type { ClientSlots } from '@vantageedge/shared/net/client-slots';
import { writeError } from '../pipeline/errors.js';

type Handler<Req, Res> = (req: Req, res: Res) => void;

/** Wraps a handler so its HTTP/2 requests count in the limit (see limitHttp2RequestsPerClient). */
export type Http2RequestsPerClientLimit = <
  Req extends IncomingMessage | Http2ServerRequest,
  Res extends ServerResponse | Http2ServerResponse,
>(
  handler: Handler<Req, Res>,
) => Handler<Req, Res>;

/**
 * HTTP/2 requests held to GATEWAY_MAX_CONNECTIONS_PER_CLIENT as HTTP/1.1 ones are: an HTTP/1.1
 * connection carries one request (or one WebSocket) at a time, an HTTP/2 session up to
 * GATEWAY_HTTP2_MAX_CONCURRENT_STREAMS, so each request a session carries beside its first takes one
 * more slot of its client address (nginx's `limit_conn` counts HTTP/2 streams as connections); else one
 * address could hold a hundred times the requests in flight to the origins (origin sockets, its
 * tenant's upstream slots) over HTTP/2. A request past the address's slots is answered 429
 * `client_limit` (Retry-After: 1) before anything of it runs.
 *
 * Every handler the returned function wraps (the request pipeline, the WebSockets of extended CONNECT)
 * counts in the same open requests of each session.
 */
export function limitHttp2RequestsPerClient(
  slots: ClientSlots,
  onRefused?: () => void,
): Http2RequestsPerClientLimit {
  const message = `a client address may have at most ${slots.limit} connections and HTTP/2 requests open at once`;
  const openRequests = new WeakMap<Http2Session, number>();
  return (handler) => {
    if (slots.limit <= 0) return handler;
    return (req, res) => {
      if (!arrivedOverHttp2(req)) {
        handler(req, res);
        return;
      }
      const { stream } = req as Http2ServerRequest;
      const session = stream.session;
      const client = slots.clientOf(session?.socket?.remoteAddress);
      if (session === undefined || client === undefined) {
        handler(req, res);
        return;
      }
      const open = openRequests.get(session) ?? 0;
      if (open > 0 && !slots.take(client)) {
        onRefused?.();
        refuse(req as Http2ServerRequest, res as unknown as ServerResponse, message);
        return;
      }
      openRequests.set(session, open + 1);
      stream.once('close', () => {
        const left = (openRequests.get(session) ?? 1) - 1;
        openRequests.set(session, left);
        // The session's own connection slot covers its last open request.
        if (left > 0) slots.release(client);
      });
      handler(req, res);
    };
  };
}

function refuse(req: Http2ServerRequest, res: ServerResponse, message: string): void {
  const { stream } = req;
  // A body still coming (or a WebSocket's frames) is not read: the stream ends with the answer
  // (RFC 9113 §8.1).
  res.once('finish', () => {
    if (!req.complete && !stream.closed) stream.close(constants.NGHTTP2_NO_ERROR);
  });
  writeError(res, 429, 'client_limit', message, { 'retry-after': '1' });
}
