import type { IncomingMessage, ServerResponse } from 'node:http';
import { singleHeader } from '@vantageedge/shared/http/header-values';
import { answerLastOnConnection, handleNoMoreRequestsOn } from '@vantageedge/shared/http/last-on-connection';
import { destroyAfterLingering } from '@vantageedge/shared/http/lingering-close';
import { bodyBytesOf } from './body-bytes.js';

/**
 * The most of a request body an HTTP/1.1 connection reads and drops once the request is answered, to
 * serve the next request on it.
 */
export const DRAINED_BODY_BYTES = 64 * 1024;

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface Rest {
  /**
   * The answer is the connection's last: once it is written, what the client still sends is read only
   * for a lingering close.
   */
  closeAfterAnswer: boolean;
}

const watched = new WeakMap<IncomingMessage, Rest>();

/**
 * `handler`, with the unread rest of an HTTP/1.1 request's body bounded: an answer that goes out before
 * the body arrived whole (a refusal before the body is read, an origin's early answer) leaves it on the
 * connection, and node reads and drops it to reach the next request — the declared Content-Length
 * whatever it is (an answer may refuse it for its size), a chunked body until the request timeout. Any
 * client, without a credential, could make the replica read that for nothing on every request. So
 * only a declared rest of at most DRAINED_BODY_BYTES is read (the connection serves on); any other
 * makes the answer the connection's last (`Connection: close`), and once the answer is written the
 * connection is closed after a lingering close, which reads and drops what still arrives for
 * LINGERING_CLOSE_MS only, so that the client reads the answer before any reset (Envoy too closes a
 * connection whose response completed before its request).
 */
export function readOnlySmallRests(handler: Handler): Handler {
  return (req, res) => {
    if (req.httpVersionMajor === 1 && !req.complete && announcesBody(req)) watchRest(req, res);
    handler(req, res);
  };
}

/**
 * The request's answer is its HTTP/1.1 connection's last, read no more of its body (an exchange that
 * stopped reading it past a bound): `Connection: close` if its head is not out yet; once it is written,
 * the connection is closed after a lingering close, the rest not read beyond it.
 */
export function closeWithoutReadingRest(req: IncomingMessage, res: ServerResponse): void {
  const rest = watchRest(req, res);
  rest.closeAfterAnswer = true;
  if (!res.headersSent) answerLastOnConnection(req, res);
  if (res.writableFinished) {
    stopReading(req);
    closeAfterLingering(req);
  }
}

/** Whether the answer closes the connection without reading the rest of the request's body. */
export function closesWithoutReadingRest(req: IncomingMessage): boolean {
  return watched.get(req)?.closeAfterAnswer === true;
}

function watchRest(req: IncomingMessage, res: ServerResponse): Rest {
  const known = watched.get(req);
  if (known !== undefined) return known;
  const rest: Rest = { closeAfterAnswer: false };
  watched.set(req, rest);
  // Every answer's head goes through writeHead (node's implicit head too), whoever writes it.
  const writeHead = res.writeHead as (...args: unknown[]) => ServerResponse;
  res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    if (!this.headersSent && !rest.closeAfterAnswer && !restIsSmall(req)) {
      rest.closeAfterAnswer = true;
      answerLastOnConnection(req, this);
    }
    return writeHead.apply(this, args);
  } as typeof res.writeHead;
  // Before node's own `finish` listener, which would read and drop the rest of a body no one read.
  res.once('prefinish', () => {
    if (closing(req, res, rest)) stopReading(req);
  });
  // After it: node ended the connection of a last answer, and destroys it once the end is written.
  res.once('finish', () => {
    if (closing(req, res, rest)) closeAfterLingering(req);
  });
  return rest;
}

function closing(req: IncomingMessage, res: ServerResponse, rest: Rest): boolean {
  return !req.complete && (rest.closeAfterAnswer || !res.shouldKeepAlive);
}

/**
 * The request's body is read no further than what node's parser hands it until its buffer is full: it
 * is piped nowhere and paused, and what it buffered is taken and dropped, which makes it a body being
 * read (node would otherwise resume it to drop the rest once its answer is written, reading as long as
 * the client sends).
 */
function stopReading(req: IncomingMessage): void {
  req.unpipe();
  req.pause();
  req.read();
}

/**
 * The connection's end goes out after the answer (node's, or here), and the connection is destroyed a
 * lingering close later, not at once: destroyed with the client's bytes unread, it is reset, and a reset
 * can discard the answer before the client read it. Until then what the client still sends is read and
 * dropped, as nginx's lingering close does: a client that sends its request whole before it reads the
 * answer (many HTTP libraries do) would otherwise be stuck writing into a full window, and get the reset
 * instead of the answer. Whatever follows the body is no request of its own.
 */
function closeAfterLingering(req: IncomingMessage): void {
  const connection = req.socket;
  connection.removeListener('finish', connection.destroy);
  if (!connection.writableEnded) connection.end();
  handleNoMoreRequestsOn(connection);
  req.removeAllListeners('data');
  req.resume();
  destroyAfterLingering(connection);
}

/** What is left of the body is known to be at most DRAINED_BODY_BYTES. */
function restIsSmall(req: IncomingMessage): boolean {
  if (req.complete) return true;
  if (req.headers['transfer-encoding'] !== undefined) return false;
  const declared = Number(singleHeader(req.headers['content-length']));
  return declared - (bodyBytesOf(req) ?? 0) <= DRAINED_BODY_BYTES;
}

/** HTTP/1.1 has a body only with Transfer-Encoding or a non-zero Content-Length. */
function announcesBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
}
