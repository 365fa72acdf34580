import type { OutgoingHttpHeaders } from 'node:http';
import { Http2ServerResponse } from 'node:http2';

/**
 * Fields that describe one HTTP/1.1 connection and that HTTP/2 forbids (RFC 9113 §8.2.2); `te` only
 * with a value other than "trailers". node throws ERR_HTTP2_INVALID_CONNECTION_HEADERS from writeHead
 * for any of them (it drops `connection` itself).
 */
const CONNECTION_SPECIFIC = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'te',
]);

/** What node's HTTP/2 response takes as headers: an object, or raw `[name, value, …]`. */
type Headers = OutgoingHttpHeaders | readonly string[];

function forbidden(lowerName: string, value: unknown): boolean {
  return CONNECTION_SPECIFIC.has(lowerName) && (lowerName !== 'te' || value !== 'trailers');
}

/**
 * node's HTTP/2 compatibility response for the gateway's HTTP/2 listeners (TLS with ALPN h2, h2c): every
 * response to an HTTP/2 client (proxied, a cache HIT, a fixed response, an error) has its head written
 * here, so this is where the fields an HTTP/1.1 origin, a stored entry or a route may carry and HTTP/2
 * forbids are dropped, instead of node throwing while the client waits. HTTP/1.1 responses never pass
 * through it.
 */
export class GatewayHttp2ServerResponse extends Http2ServerResponse {
  override writeHead(statusCode: number, reasonOrHeaders?: string | Headers, maybeHeaders?: Headers): this {
    for (const name of CONNECTION_SPECIFIC) {
      if (this.hasHeader(name) && forbidden(name, this.getHeader(name))) this.removeHeader(name);
    }
    const given = typeof reasonOrHeaders === 'string' ? maybeHeaders : reasonOrHeaders;
    const headers = given === undefined || given === null ? given : withoutConnectionSpecific(given);
    // HTTP/2 has no reason phrase (node warns about one and ignores it).
    return headers === undefined ? super.writeHead(statusCode) : super.writeHead(statusCode, headers);
  }
}

/** `headers` itself when it has no forbidden field (the common case), else a copy without them. */
function withoutConnectionSpecific(headers: Headers): Headers {
  if (isRawHeaders(headers)) return withoutForbiddenPairs(headers);
  let found = false;
  for (const name in headers) {
    if (forbidden(name.toLowerCase(), headers[name])) {
      found = true;
      break;
    }
  }
  if (!found) return headers;
  const kept: OutgoingHttpHeaders = {};
  for (const name in headers) if (!forbidden(name.toLowerCase(), headers[name])) kept[name] = headers[name];
  return kept;
}

const isRawHeaders = (headers: Headers): headers is readonly string[] => Array.isArray(headers);

/** Raw headers as `[name, value, name, value, …]`. */
function withoutForbiddenPairs(headers: readonly string[]): readonly string[] {
  const kept: string[] = [];
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (!forbidden(headers[i]!.toLowerCase(), headers[i + 1])) kept.push(headers[i]!, headers[i + 1]!);
  }
  return kept;
}
