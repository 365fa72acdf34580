import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import type { BodyTap } from '../pipeline/stage.js';

/**
 * Where undici writes an origin's response body: the client response, behind a writer of its own.
 *
 * - The status line and headers go out with the first body chunk (or at the end, for an empty body), so
 *   an origin that fails after its headers but before any body byte still leaves the client response
 *   untouched: the proxy answers 502 instead of a response cut before its status line.
 * - A failed exchange destroys this writer (undici does that to the stream it wrote to), never the
 *   client response itself: the proxy decides what the client gets.
 * - Route stages that asked to see the body (the cache storing a MISS) get every chunk as it goes to
 *   the client, and `end` once the whole body went; a body cut short never reaches `end`.
 */
export class ClientResponseWriter extends Writable {
  readonly #res: ServerResponse;
  readonly #status: number;
  readonly #headers: OutgoingHttpHeaders;
  readonly #taps: readonly BodyTap[] | undefined;

  constructor(res: ServerResponse, status: number, headers: OutgoingHttpHeaders, taps?: readonly BodyTap[]) {
    super();
    this.#taps = taps;
    this.#res = res;
    this.#status = status;
    this.#headers = headers;
  }

  /**
   * A response hook answered the client itself (the cache turning the origin's 304 to its revalidation
   * into the stored response): the origin's body (empty) is not the client's.
   */
  #answeredByStage(): boolean {
    return this.#wroteNothing && this.#res.writableEnded;
  }

  #wroteNothing = true;

  #writeHead(): void {
    this.#wroteNothing = false;
    if (!this.#res.headersSent) this.#res.writeHead(this.#status, this.#headers);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#answeredByStage()) {
      callback();
      return;
    }
    try {
      this.#writeHead();
    } catch (error) {
      callback(error as Error); // a status or header node refuses to send: the exchange failed
      return;
    }
    if (this.#taps !== undefined) for (const tap of this.#taps) tap.chunk(chunk);
    if (this.#res.write(chunk)) callback();
    else this.#res.once('drain', () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.#answeredByStage()) {
      callback();
      return;
    }
    try {
      this.#writeHead();
    } catch (error) {
      callback(error as Error);
      return;
    }
    if (this.#taps !== undefined) for (const tap of this.#taps) tap.end();
    this.#res.end(() => callback());
  }
}
