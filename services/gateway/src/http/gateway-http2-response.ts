import type { OutgoingHttpHeaders } from 'node:http';
import { type Http2ServerRequest, Http2ServerResponse, type ServerHttp2Stream } from 'node:http2';
import { type CountsBodyBytes, chunkBytes } from './body-bytes.js';
import { contentTypeBrowsersRead } from './content-type-lines.js';
import { withoutSpacesAndTabsAtEdges } from './field-value-edges.js';
import { FIRST_LINE_OVER_HTTP2_ONLY } from './http2-field-lines.js';

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

/**
 * Fields node's HTTP/2 response sends at most once (its kSingleValueFields): given several values it
 * throws ERR_HTTP2_HEADER_SINGLE_VALUE, and `removeHeader('date')` only stops node's own Date, so a
 * repeated Date could not even be taken out again for the error answer. An HTTP/1.1 origin may repeat
 * any line (undici hands the repeats over as an array); HTTP/2 clients get one value, the one an HTTP/1.1
 * client reads of the lines (oneValue).
 */
const SINGLE_VALUE = new Set([
  'access-control-allow-credentials',
  'access-control-max-age',
  'access-control-request-method',
  'age',
  'authorization',
  'content-encoding',
  'content-language',
  'content-length',
  'content-location',
  'content-md5',
  'content-range',
  'content-type',
  'date',
  'dnt',
  'etag',
  'expires',
  'from',
  'host',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-range',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'range',
  'referer',
  'retry-after',
  'tk',
  'upgrade-insecure-requests',
  'user-agent',
  'x-content-type-options',
]);

/** What node's HTTP/2 response takes as headers: an object, or raw `[name, value, …]`. */
type Headers = OutgoingHttpHeaders | readonly string[];

function forbidden(lowerName: string, value: unknown): boolean {
  return CONNECTION_SPECIFIC.has(lowerName) && (lowerName !== 'te' || value !== 'trailers');
}

/**
 * The one value of a field node's HTTP/2 response sends once, as node:http reads an answer's lines: the
 * first for most (ETag, Location, …), the lines joined with ", " for the others, as browsers join every
 * field (FIRST_LINE_OVER_HTTP2_ONLY). Content-Encoding and Content-Language are lists (RFC 9110 §8.4,
 * §8.5): `gzip` then `br` is a body the client must undo of both, not of gzip alone. Content-Type is the
 * media type a browser reads of the lines over HTTP/1.1 (the last valid one, contentTypeBrowsersRead), so
 * that an answer renders alike over either protocol; the first line when none is one.
 */
function oneValue(lowerName: string, values: readonly unknown[]): string {
  const lines = values.map((value) => withoutEdgeWhitespace(String(value)));
  if (lowerName === 'content-type') return contentTypeBrowsersRead(lines) ?? String(lines[0]);
  if (!FIRST_LINE_OVER_HTTP2_ONLY.has(lowerName)) return String(lines[0]);
  return lines.join(', ');
}

/** Several values where node's HTTP/2 response takes one. */
function repeatedSingle(lowerName: string, value: unknown): value is readonly unknown[] {
  return Array.isArray(value) && value.length > 1 && SINGLE_VALUE.has(lowerName);
}

/**
 * Whether a value starts or ends with a space or tab. An HTTP/1.1 parser drops that whitespace (RFC 9112
 * §5), so a route's `"default-src 'self' "`, or its `caller ${consumer_id}` for an anonymous caller, reads
 * the same as without it; in HTTP/2 it makes the response malformed (RFC 9113 §8.2.1), and clients drop
 * the field (node, nghttp2) or the whole response. An origin's values come trimmed by its parser.
 */
function edgeWhitespace(value: unknown): boolean {
  if (typeof value === 'string') return edgeWhitespaceIn(value);
  return Array.isArray(value) && value.some((item) => typeof item === 'string' && edgeWhitespaceIn(item));
}

function edgeWhitespaceIn(text: string): boolean {
  if (text.length === 0) return false;
  const first = text.charCodeAt(0);
  const last = text.charCodeAt(text.length - 1);
  return first === 32 || first === 9 || last === 32 || last === 9;
}

/** The value as an HTTP/1.1 client reads it: without the spaces and tabs at its edges (not String#trim's). */
function withoutEdgeWhitespace<Value>(value: Value): Value {
  if (typeof value === 'string') return withoutSpacesAndTabsAtEdges(value) as Value;
  if (!Array.isArray(value)) return value;
  return value.map((item: unknown) =>
    typeof item === 'string' ? withoutSpacesAndTabsAtEdges(item) : item,
  ) as Value;
}

/**
 * node's HTTP/2 compatibility response for the gateway's HTTP/2 listeners (TLS with ALPN h2, h2c): every
 * response to an HTTP/2 client (proxied, a cache HIT, a fixed response, an error) has its head written
 * here, so this is where the fields an HTTP/1.1 origin, a stored entry or a route may carry and HTTP/2
 * forbids are dropped, repeated single-value fields sent once as HTTP/1.1 clients read them (oneValue),
 * and values rid of the whitespace at their edges (edgeWhitespace), instead of node throwing while the
 * client waits or the client dropping them. HTTP/1.1 responses never pass through it.
 */
export class GatewayHttp2ServerResponse<Request extends Http2ServerRequest = Http2ServerRequest>
  extends Http2ServerResponse<Request>
  implements CountsBodyBytes
{
  /** The body bytes handed to the stream (see CountsBodyBytes). */
  bodyBytes = 0;

  constructor(stream: ServerHttp2Stream) {
    super(stream);
    responses.set(stream, this);
  }

  override writeHead(statusCode: number, reasonOrHeaders?: string | Headers, maybeHeaders?: Headers): this {
    for (const name of this.getHeaderNames()) {
      const value = this.getHeader(name);
      if (forbidden(name, value)) this.removeHeader(name);
      else if (repeatedSingle(name, value)) this.setHeader(name, oneValue(name, value));
      else if (edgeWhitespace(value)) this.setHeader(name, withoutEdgeWhitespace(value)!);
    }
    const given = typeof reasonOrHeaders === 'string' ? maybeHeaders : reasonOrHeaders;
    const headers = given === undefined || given === null ? given : sendableHeaders(given);
    // HTTP/2 has no reason phrase (node warns about one and ignores it).
    return headers === undefined ? super.writeHead(statusCode) : super.writeHead(statusCode, headers);
  }

  /**
   * `destroyed`: whether the stream is gone (reset by the client, destroyed, or closed), as it tells of an
   * HTTP/1.1 response. node's HTTP/2 response has no such property (its types say it has one), so where
   * the gateway asks whether the client is still there (before a retry, say) an HTTP/2 client that left
   * read as one still waiting.
   */
  static {
    Object.defineProperty(GatewayHttp2ServerResponse.prototype, 'destroyed', {
      configurable: true,
      get(this: Http2ServerResponse): boolean {
        return this.stream.destroyed;
      },
    });
  }

  /**
   * A large body (a cache HIT, a fixed response) is handed to node in pieces, each its own write: node
   * counts a write as delivered only once all of it went out, so a slow client taking a one-piece body
   * steadily would look stalled to the undelivered-response check of the listener (http2-sessions.ts)
   * and be reset. (Pieces queued behind a write would go out as one write again, batched: the stream
   * does not batch from then on.)
   */
  static {
    const stockWrite = Http2ServerResponse.prototype.write as (...args: unknown[]) => boolean;
    const stockEnd = Http2ServerResponse.prototype.end as (...args: unknown[]) => unknown;
    const inPieces = (res: GatewayHttp2ServerResponse, chunk: Uint8Array): Uint8Array => {
      (res.stream as unknown as { _writev: unknown })._writev = null;
      let offset = 0;
      for (; offset + BODY_PIECE_BYTES < chunk.byteLength; offset += BODY_PIECE_BYTES)
        countedWrite(res, chunk.subarray(offset, offset + BODY_PIECE_BYTES));
      return chunk.subarray(offset);
    };
    // node's end(chunk) writes the chunk through `write`, so every body byte is counted here.
    const countedWrite = (res: GatewayHttp2ServerResponse, chunk: unknown, ...rest: unknown[]): boolean => {
      const open = !res.stream.destroyed && !res.stream.writableEnded;
      const written = stockWrite.call(res, chunk, ...rest);
      if (open && sendsBody(res)) res.bodyBytes += chunkBytes(chunk, rest[0]);
      return written;
    };
    Object.defineProperties(GatewayHttp2ServerResponse.prototype, {
      write: {
        configurable: true,
        writable: true,
        value(this: GatewayHttp2ServerResponse, chunk: unknown, ...rest: unknown[]): boolean {
          if (!isLargeBuffer(chunk)) return countedWrite(this, chunk, ...rest);
          return countedWrite(this, inPieces(this, chunk), ...rest);
        },
      },
      end: {
        configurable: true,
        writable: true,
        value(this: GatewayHttp2ServerResponse, chunk?: unknown, ...rest: unknown[]): unknown {
          if (!isLargeBuffer(chunk)) return stockEnd.call(this, chunk, ...rest);
          return stockEnd.call(this, inPieces(this, chunk), ...rest);
        },
      },
    });
  }

  /**
   * The gateway destroys a response it cannot finish (the origin cut its body short, a stage failed):
   * node would reset the stream with NO_ERROR, which clients read as the end of a complete response.
   * INTERNAL_ERROR tells them it was cut, as a closed connection tells an HTTP/1.1 client.
   */
  override destroy(error?: Error): this {
    super.destroy(error ?? new ResponseCutShortError());
    return this;
  }
}

const responses = new WeakMap<ServerHttp2Stream, GatewayHttp2ServerResponse>();

/**
 * The response node's compatibility layer made for `stream`, if any: a listener that answers the stream
 * itself (a request not received in time) tells it so, for the request's line (see listener-answers.ts).
 */
export function responseOnStream(stream: ServerHttp2Stream): GatewayHttp2ServerResponse | undefined {
  return responses.get(stream);
}

/** node ends the stream with the head, sending no body, for a HEAD and a 204, 205 or 304. */
function sendsBody(res: Http2ServerResponse): boolean {
  const status = res.statusCode;
  const { headRequest } = res.stream as unknown as { headRequest?: boolean };
  return headRequest !== true && status !== 204 && status !== 205 && status !== 304;
}

/** The size of the pieces a large body is written in (a DATA frame is at most 16 KiB by default). */
const BODY_PIECE_BYTES = 64 * 1024;

function isLargeBuffer(chunk: unknown): chunk is Uint8Array {
  return chunk instanceof Uint8Array && chunk.byteLength > BODY_PIECE_BYTES;
}

/** Why a response to an HTTP/2 client was destroyed before its end (never reaches a listener). */
class ResponseCutShortError extends Error {
  constructor() {
    super('the response was cut short');
  }
}

/** `headers` itself when node can send them all (the common case), else a copy it can. */
function sendableHeaders(headers: Headers): Headers {
  if (isRawHeaders(headers)) return sendablePairs(headers);
  let found = false;
  for (const name in headers) {
    const lower = name.toLowerCase();
    const value = headers[name];
    if (forbidden(lower, value) || repeatedSingle(lower, value) || edgeWhitespace(value)) {
      found = true;
      break;
    }
  }
  if (!found) return headers;
  const kept: OutgoingHttpHeaders = {};
  for (const name in headers) {
    const lower = name.toLowerCase();
    const value = headers[name];
    if (forbidden(lower, value)) continue;
    kept[name] = repeatedSingle(lower, value) ? oneValue(lower, value) : withoutEdgeWhitespace(value);
  }
  return kept;
}

const isRawHeaders = (headers: Headers): headers is readonly string[] => Array.isArray(headers);

/**
 * Raw headers as `[name, value, name, value, …]`: forbidden pairs dropped, a single-value field sent
 * once (oneValue), values without the whitespace at their edges.
 */
function sendablePairs(headers: readonly string[]): readonly string[] {
  const kept: string[] = [];
  /** Where in `kept` each single-value field's value is. */
  let singleAt: Map<string, number> | undefined;
  /** Every Content-Type line, when there are several (oneValue). */
  let contentTypes: string[] | undefined;
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const lower = headers[i]!.toLowerCase();
    const value = withoutEdgeWhitespace(headers[i + 1]!);
    if (forbidden(lower, value)) continue;
    if (SINGLE_VALUE.has(lower)) {
      singleAt ??= new Map();
      const at = singleAt.get(lower);
      if (at !== undefined) {
        if (FIRST_LINE_OVER_HTTP2_ONLY.has(lower)) kept[at] = `${kept[at]}, ${value}`;
        else if (lower === 'content-type') {
          contentTypes ??= [kept[at]!];
          contentTypes.push(value);
        }
        continue;
      }
      singleAt.set(lower, kept.length + 1);
    }
    kept.push(headers[i]!, value);
  }
  if (contentTypes !== undefined)
    kept[singleAt!.get('content-type')!] = oneValue('content-type', contentTypes);
  return kept;
}
