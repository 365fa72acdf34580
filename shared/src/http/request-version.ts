import type { IncomingMessage } from 'node:http';
import { Http2ServerRequest } from 'node:http2';

/**
 * Whether a request came over an HTTP/2 stream (TLS or h2c), whatever its version fields say: over an
 * HTTP/1.x connection node's parser also takes a request line that claims `HTTP/2.0` or `HTTP/0.9`.
 */
export function arrivedOverHttp2(req: IncomingMessage | Http2ServerRequest): boolean {
  return req instanceof Http2ServerRequest;
}

/**
 * An HTTP/1.x connection's request line claims a version other than 1.0 or 1.1. Every decision made by
 * version (Transfer-Encoding checks, whether the connection may carry another request, how an HTTP/2
 * body arrives) would read such a request as another protocol's: `POST / HTTP/2.0` with
 * `Transfer-Encoding: identity, chunked` had its body read as chunked and forwarded, unchecked.
 */
export function claimsUnspokenVersion(req: IncomingMessage): boolean {
  return req.httpVersionMajor !== 1 && !arrivedOverHttp2(req);
}
