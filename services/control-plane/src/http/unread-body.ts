import type { IncomingMessage, ServerResponse } from 'node:http';
import { destroyAfterLingering } from '@vantageedge/shared/http/lingering-close';
import type { RequestHandler } from 'express';

/** HTTP/1.1 has a body only with Transfer-Encoding or a non-zero Content-Length. */
function announcesBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
}

/** Connections whose last answer went out: what the client sends on them after it is never handled. */
const answeredLast = new WeakSet<object>();

/**
 * The answer is the connection's last (`Connection: close`). node ends the connection after it and
 * destroys it as soon as the end is written; with the client's bytes unread that is a reset, which can
 * discard the answer before the client read it, so the connection lingers instead.
 */
function answerLastOnConnection(req: IncomingMessage, res: ServerResponse): void {
  res.shouldKeepAlive = false;
  const connection = req.socket;
  answeredLast.add(connection);
  // Runs after node's own `finish` listener, which ended the connection (socket.destroySoon).
  res.once('finish', () => {
    connection.removeListener('finish', connection.destroy);
    destroyAfterLingering(connection);
  });
}

/**
 * An answer that goes out before its request's body arrived whole (a refusal before the body is read:
 * 401 and 429 before authentication, 404, 405, 415, …) closes its connection. Otherwise node reads and
 * drops the rest of the body to reach the next request, for as long as the client sends it: anyone,
 * without a credential, could stream a chunked body through the listener's parser until the request
 * timeout. A body that arrived whole, read or not, leaves the connection open for the next request.
 * A request that follows such an answer on its connection (read while the connection lingers) is never
 * handled, nor answered (RFC 9112 §9.6): its client saw the connection close before any answer to it.
 */
export const closeAfterUnreadBody: RequestHandler = (req, res, next) => {
  if (answeredLast.has(req.socket)) {
    req.resume();
    return;
  }
  if (!announcesBody(req)) {
    next();
    return;
  }
  // Every answer's head goes through writeHead (node's end() calls it too), whoever writes it.
  const writeHead = res.writeHead as (...given: unknown[]) => ServerResponse;
  res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    // Answered before node's parser reached the rest of the body counts as not whole, even when the
    // rest came in the same packet: the connection closes, which costs the client only a reconnect.
    if (!req.complete) answerLastOnConnection(req, res);
    return writeHead.apply(this, args);
  } as typeof res.writeHead;
  next();
};
