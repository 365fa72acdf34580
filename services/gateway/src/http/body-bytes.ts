import { type IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { Http2ServerRequest, type ServerHttp2Stream } from 'node:http2';
import type { ReadableOptions } from 'node:stream';
import { readRepeatedLinesAsHttp1 } from './http2-field-lines.js';

/**
 * A request or response of the gateway's own classes: it counts the bytes of its body (Envoy's
 * %BYTES_RECEIVED% and %BYTES_SENT%): a request's as node read them (de-chunked, including what the gateway
 * read and dropped), a response's as handed to the client's connection (not its head, HTTP/1.1 chunk
 * framing or HTTP/2 frame headers; nothing for a HEAD, 204 or 304, whose bodies node does not send).
 * Counted per request, so keep-alive, pipelined requests and HTTP/2 streams each get their own.
 */
export interface CountsBodyBytes {
  readonly bodyBytes: number;
}

/** The body bytes a request read or a response sent, when it counts them (the gateway's listeners' do). */
export function bodyBytesOf(message: object | undefined): number | undefined {
  const bytes = (message as Partial<CountsBodyBytes> | undefined)?.bodyBytes;
  return typeof bytes === 'number' ? bytes : undefined;
}

/**
 * A listener wrote its own answer on the connection in place of the response (none of which went out):
 * the response's body bytes are that answer's, which its client got.
 */
export function answeredInstead(res: object, bodyBytes: number): void {
  countedAs(res, bodyBytes);
}

/**
 * An upgraded connection (a WebSocket) has no bodies: what its request and response count is what was
 * relayed each way after the switch (its frames), as Envoy's %BYTES_RECEIVED% and %BYTES_SENT% of an
 * upgraded stream.
 */
export function relayedAfterSwitch(req: object, res: object, fromClient: number, toClient: number): void {
  countedAs(req, fromClient);
  countedAs(res, toClient);
}

function countedAs(message: object, bodyBytes: number): void {
  if (bodyBytesOf(message) !== undefined) (message as { bodyBytes: number }).bodyBytes = bodyBytes;
}

/** The bytes of a chunk given to write/end (a string in `encoding`, utf8 by default). */
export function chunkBytes(chunk: unknown, encoding?: unknown): number {
  if (typeof chunk === 'string')
    return Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  return chunk instanceof Uint8Array ? chunk.byteLength : 0;
}

/** node:http's request for the gateway's HTTP/1.1 listeners: counts its body as node's parser hands it over. */
export class GatewayIncomingMessage extends IncomingMessage implements CountsBodyBytes {
  bodyBytes = 0;

  override push(chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk instanceof Uint8Array) this.bodyBytes += chunk.byteLength;
    return super.push(chunk, encoding);
  }
}

/**
 * node's HTTP/2 compatibility request for the gateway's HTTP/2 listeners: counts its stream's DATA, and
 * gives repeated fields as node:http gives them (readRepeatedLinesAsHttp1).
 */
export class GatewayHttp2ServerRequest extends Http2ServerRequest implements CountsBodyBytes {
  bodyBytes = 0;

  constructor(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    options: ReadableOptions,
    rawHeaders: readonly string[],
  ) {
    readRepeatedLinesAsHttp1(headers, rawHeaders);
    super(stream, headers, options, rawHeaders);
  }

  override push(chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk instanceof Uint8Array) this.bodyBytes += chunk.byteLength;
    return super.push(chunk, encoding);
  }
}
