import { Readable } from 'node:stream';
import { continueBody } from '../http/expect-continue.js';
import { requestBodyFraming } from '../http/request-body.js';
import type { GatewayExchange } from '../pipeline/exchange.js';

/** The largest declared body a retryable request is read for (so it can be sent again). */
export const RETRY_BODY_BUFFER_BYTES = 64 * 1024;

/**
 * What reading a retryable request's body came to:
 * - undefined: it has none;
 * - a Buffer: all of it, which each attempt can send again;
 * - `{ readAlready }`: it is sent once, streaming — too large, of unknown length, or the buffer budget
 *   ran out while it arrived (then `readAlready` is what was read of it so far, which goes first);
 * - 'gone': the client went away while it was read.
 */
export type RetryableBody = Buffer | undefined | { readonly readAlready: Buffer | undefined } | 'gone';

const STREAMED = { readAlready: undefined } as const;

/**
 * Reads the request's body into memory when its declared length fits RETRY_BODY_BUFFER_BYTES, taking
 * each chunk's bytes from `reserve` as it arrives — never the length only announced, which a client
 * could hold, sending nothing, until the request timeout. A chunk `reserve` refuses ends the reading:
 * the client's stream is paused where it is, for the attempt to send what was read and then the rest.
 */
export function readRetryableBody(
  exchange: GatewayExchange,
  reserve: (bytes: number) => boolean,
): Promise<RetryableBody> {
  const { req } = exchange;
  const framing = requestBodyFraming(req);
  if (framing === 'none') return Promise.resolve(undefined);
  const declared = Number(req.headers['content-length']);
  // Unknown length: HTTP/1.1 chunked, or HTTP/2 DATA frames without a content-length.
  if (framing === 'unknown' || !(declared <= RETRY_BODY_BUFFER_BYTES)) return Promise.resolve(STREAMED);
  continueBody(exchange.res);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const settle = (body: RetryableBody) => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      resolve(body);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      if (reserve(chunk.length)) return;
      req.pause();
      settle({ readAlready: Buffer.concat(chunks) });
    };
    req.on('data', onData);
    req.once('end', () => settle(Buffer.concat(chunks)));
    req.once('error', () => settle('gone'));
    req.once('close', () => settle(req.readableEnded ? Buffer.concat(chunks) : 'gone'));
  });
}

/**
 * One attempt's copy of a buffered body, as a stream: once the origin connection took it, neither the
 * stream nor the upstream request keeps the bytes (a Buffer body would be kept until the exchange ends).
 */
export function replayOf(body: Buffer): Readable {
  let unsent: Buffer | undefined = body;
  return new Readable({
    read() {
      if (unsent !== undefined) this.push(unsent);
      unsent = undefined;
      this.push(null);
    },
  });
}
