import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants, type Http2ServerRequest } from 'node:http2';
import { singleHeader } from '@vantageedge/shared/http/header-values';
import { arrivedOverHttp2 } from '@vantageedge/shared/http/request-version';
import { closesWithoutReadingRest, closeWithoutReadingRest, DRAINED_BODY_BYTES } from './unread-body-rest.js';

/**
 * How a request's body arrives: none, with a declared Content-Length, or of unknown length (HTTP/1.1
 * chunked; HTTP/2 DATA frames without a content-length, which HTTP/2 allows), counted as it streams.
 */
export type RequestBodyFraming = 'none' | 'declared' | 'unknown';

/**
 * A request's body framing. HTTP/1.1 has a body only with Transfer-Encoding or a non-zero
 * Content-Length; an HTTP/2 request has one unless its stream ended with its HEADERS frame (or
 * declares content-length: 0), whether or not it declares a length.
 */
export function requestBodyFraming(req: IncomingMessage): RequestBodyFraming {
  if (req.headers['transfer-encoding'] !== undefined) return 'unknown';
  const contentLength = singleHeader(req.headers['content-length']);
  if (contentLength !== undefined) return contentLength === '0' ? 'none' : 'declared';
  if (!arrivedOverHttp2(req)) return 'none';
  const { stream } = req as unknown as Http2ServerRequest;
  return stream.endAfterHeaders || req.readableEnded ? 'none' : 'unknown';
}

/**
 * Reads what is left of a request's body and drops it, as node does with a body no one read. An origin
 * may answer before the body was sent whole (an early 413): undici then stops reading it, and what is
 * left would stay on the client's connection, so that the next request on it is never read. Past
 * `maxBytes` or DRAINED_BODY_BYTES more, whichever comes first, nothing more is read (a rest read whole
 * would cost the replica up to the body limit per request): the request's HTTP/2 stream is reset once
 * `res` is answered (resetOnceAnswered), its HTTP/1.1 connection closed (closeWithoutReadingRest). An
 * HTTP/1.1 answer that closes its connection already reads nothing more (see readOnlySmallRests).
 */
export function discardUnreadBody(
  req: IncomingMessage,
  res: ServerResponse,
  maxBytes = Number.POSITIVE_INFINITY,
): void {
  if (req.readableEnded || req.destroyed) return;
  const http1 = !arrivedOverHttp2(req);
  req.unpipe();
  if (http1 && closesWithoutReadingRest(req)) return;
  let left = Math.min(maxBytes, DRAINED_BODY_BYTES);
  const drop = (chunk: Buffer) => {
    left -= chunk.length;
    if (left >= 0) return;
    req.off('data', drop);
    if (http1) closeWithoutReadingRest(req, res);
    else resetOnceAnswered(req as unknown as Http2ServerRequest);
  };
  req.on('data', drop);
  req.resume();
}

/**
 * RST_STREAM NO_ERROR for an HTTP/2 request whose client is still sending, once its answer is written
 * whole (RFC 9113 §8.1: the client stops sending and keeps the answer; nginx and Envoy do the same).
 * `req.destroy()` would leave node's stream open, its client waiting with its window shut until the
 * request timeout. Until the answer is written what the client sends is no longer read: the stream's
 * window holds it back. The stream's 'finish', not `res`'s: node's HTTP/2 response emits that only once
 * the stream closed.
 */
function resetOnceAnswered(req: Http2ServerRequest): void {
  const { stream } = req;
  req.pause();
  const reset = () => stream.close(constants.NGHTTP2_NO_ERROR);
  if (stream.writableFinished) reset();
  else stream.once('finish', reset);
}

/**
 * Why an HTTP/1.x request's Transfer-Encoding leaves the end of its body in doubt, if it does (RFC 9112
 * §6.1), for a proxy in front of the gateway may have found another end:
 * - `http/1.0`: HTTP/1.0 has no transfer codings, so its framing is faulty whatever the field says
 *   (node's parser reads the body as chunked and keeps the connection open);
 * - `not_chunked`: anything but `chunked` alone (case aside). node's parser takes `identity, chunked`,
 *   or an `identity` line and a `chunked` one, for chunked, where another reader may not.
 * nginx and Envoy refuse both. HTTP/2 has no Transfer-Encoding (node refuses the field).
 */
export function doubtfulTransferEncoding(req: IncomingMessage): 'http/1.0' | 'not_chunked' | undefined {
  const value = req.headers['transfer-encoding'];
  if (value === undefined || req.httpVersionMajor !== 1) return undefined;
  if (req.httpVersionMinor === 0) return 'http/1.0';
  return value.toLowerCase() === 'chunked' ? undefined : 'not_chunked';
}
