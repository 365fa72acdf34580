import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import { singleHeader } from '@vantageedge/shared/http/header-values';

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
  if (req.httpVersionMajor !== 2) return 'none';
  const { stream } = req as unknown as Http2ServerRequest;
  return stream.endAfterHeaders || req.readableEnded ? 'none' : 'unknown';
}
