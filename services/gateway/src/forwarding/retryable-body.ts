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
 * the bytes it is kept in from `reserve` as they arrive — never the length only announced, which a client
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
    const body = new CollectedBody(declared, reserve);
    let settled = false;
    const settle = (result: RetryableBody) => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      if (body.append(chunk)) return;
      req.pause();
      settle({ readAlready: Buffer.concat([body.bytes, chunk]) });
    };
    req.on('data', onData);
    req.once('end', () => settle(body.bytes));
    req.once('error', () => settle('gone'));
    req.once('close', () => settle(req.readableEnded ? body.bytes : 'gone'));
  });
}

/**
 * A body's bytes copied into one buffer as they arrive, which grows by doubling up to the declared
 * length; each growth is reserved before it is allocated. The chunks are not kept: an HTTP/2 DATA chunk
 * is a view of the whole socket read it came in, and every chunk is an object of its own, so a body
 * sent one byte per frame held as chunks takes a hundred times its length.
 */
class CollectedBody {
  #buffer = Buffer.alloc(0);
  #length = 0;

  constructor(
    private readonly declared: number,
    private readonly reserve: (bytes: number) => boolean,
  ) {}

  /** Copies `chunk` in; false, with nothing copied, when `reserve` refuses the room it needs. */
  append(chunk: Buffer): boolean {
    const needed = this.#length + chunk.length;
    if (needed > this.#buffer.length) {
      const capacity = Math.max(needed, Math.min(this.declared, 2 * this.#buffer.length));
      if (!this.reserve(capacity - this.#buffer.length)) return false;
      const grown = Buffer.allocUnsafeSlow(capacity);
      this.#buffer.copy(grown, 0, 0, this.#length);
      this.#buffer = grown;
    }
    chunk.copy(this.#buffer, this.#length);
    this.#length = needed;
    return true;
  }

  /** What arrived so far. */
  get bytes(): Buffer {
    return this.#buffer.subarray(0, this.#length);
  }
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
