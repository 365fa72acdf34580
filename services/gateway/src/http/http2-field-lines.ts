import type { IncomingHttpHeaders } from 'node:http';

/**
 * Fields of which node's HTTP/2 layer keeps a request's first line where node:http joins the lines
 * with ", " (Node 24). Several are lists (If-None-Match, If-Match, Content-Encoding, RFC 9110 §5.3):
 * an HTTP/2 client's second entity tag or content coding would never reach the origin. Node's HTTP/2
 * response sends these at most once (gateway-http2-response.ts).
 */
export const FIRST_LINE_OVER_HTTP2_ONLY: ReadonlySet<string> = new Set([
  'access-control-allow-credentials',
  'access-control-max-age',
  'access-control-request-method',
  'content-encoding',
  'content-language',
  'content-location',
  'content-md5',
  'content-range',
  'date',
  'dnt',
  'if-match',
  'if-none-match',
  'if-range',
  'range',
  'tk',
  'upgrade-insecure-requests',
  'x-content-type-options',
]);

/** A field of which node:http keeps a request's first line, where node's HTTP/2 layer joins the lines. */
const FIRST_LINE_OVER_HTTP1_ONLY = 'server';

/**
 * Rewrites the fields an HTTP/2 request repeats as node:http gives the same lines of an HTTP/1.1
 * request, so that every reader (routing, the cache, the origin) reads one request the same over either
 * protocol. HTTP/2 field names are lower case (nghttp2 refuses others).
 */
export function readRepeatedLinesAsHttp1(headers: IncomingHttpHeaders, rawHeaders: readonly string[]): void {
  // node kept each field's first line: a later one is appended to it.
  let metOnce: string[] | undefined;
  let firstServerLine: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const value = rawHeaders[i + 1]!;
    if (name === FIRST_LINE_OVER_HTTP1_ONLY) {
      if (firstServerLine === undefined) firstServerLine = value;
      else headers[name] = firstServerLine;
    } else if (FIRST_LINE_OVER_HTTP2_ONLY.has(name)) {
      if (metOnce === undefined) metOnce = [name];
      else if (metOnce.includes(name)) headers[name] = `${headers[name]}, ${value}`;
      else metOnce.push(name);
    }
  }
}
