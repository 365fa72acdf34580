import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { isEventStream } from '@vantageedge/shared/http/event-streams';
import { type CheckedHeader, writeLowerCaseHead } from '../http/gateway-server-response.js';
import type { BodyTap } from '../pipeline/stage.js';

/** Where the proxy puts an origin's response body, chunk by chunk (see proxy-request.ts). */
export interface ResponseBodySink {
  /** False: the client is slow; the proxy pauses the origin until `onDrain`'s callback runs. */
  write(chunk: Buffer): boolean;
  onDrain(resume: () => void): void;
  /** The whole body went through. */
  end(): void;
}

/**
 * The client response as the sink of an origin's body.
 *
 * - The status line and headers go out with the first body chunk (or at the end, for an empty body), so
 *   an origin that fails after its headers but before any body byte still leaves the client response
 *   untouched: the proxy answers 502 instead of a response cut before its status line. A stream of
 *   server-sent events is the exception: its head goes out at once (sendEventStreamHead).
 * - Route stages that asked to see the body (the cache storing a MISS) get every chunk as it goes to
 *   the client, and `end` once the whole body went; a body cut short never reaches `end`. A tap that
 *   answers the client itself (BodyTap.answersClient) gets them while nothing reaches the client.
 * - `write` and `end` throw when node refuses the status or a header: the exchange failed before the
 *   client got anything.
 */
export class ClientResponseWriter implements ResponseBodySink {
  readonly #res: ServerResponse;
  readonly #status: number;
  readonly #headers: OutgoingHttpHeaders;
  readonly #checkedHeaders: readonly CheckedHeader[] | undefined;
  readonly #taps: readonly BodyTap[] | undefined;
  /** A tap answers the client at the end of the body (BodyTap.answersClient): nothing is written here. */
  readonly #tapAnswers: boolean;
  #wroteNothing = true;

  constructor(
    res: ServerResponse,
    status: number,
    headers: OutgoingHttpHeaders,
    taps?: readonly BodyTap[],
    checkedHeaders?: readonly CheckedHeader[],
  ) {
    this.#taps = taps;
    this.#res = res;
    this.#status = status;
    this.#headers = headers;
    this.#checkedHeaders = checkedHeaders;
    this.#tapAnswers = taps?.some((tap) => tap.answersClient === true) ?? false;
    this.#sendEventStreamHead();
  }

  /**
   * An origin sends an event stream's head when the stream opens and each event when it happens, maybe
   * much later: its client (EventSource) is open once it has the head. Were it held back until the first
   * event, an origin quiet past its idle timeout would be answered 504, after which an EventSource never
   * reconnects; cut after its head, the stream is reconnected to, as when it breaks off later.
   */
  #sendEventStreamHead(): void {
    if (this.#status !== 200 || this.#tapAnswers || this.#res.writableEnded) return;
    if (!isEventStream(this.#contentType())) return;
    this.#writeHead();
    this.#res.flushHeaders();
  }

  /** The Content-Type the client gets: a route's response_headers write (checkedHeaders) replaces the origin's. */
  #contentType(): OutgoingHttpHeaders[string] {
    const written = this.#checkedHeaders?.find((header) => header.key === 'content-type');
    return written === undefined ? this.#headers['content-type'] : written.value;
  }

  /**
   * A response hook answered the client itself (the cache turning the origin's 304 to its revalidation
   * into the stored response): the origin's body (empty) is not the client's.
   */
  #answeredByStage(): boolean {
    return this.#wroteNothing && this.#res.writableEnded;
  }

  #writeHead(): void {
    this.#wroteNothing = false;
    if (!this.#res.headersSent)
      writeLowerCaseHead(this.#res, this.#status, this.#headers, this.#checkedHeaders);
  }

  write(chunk: Buffer): boolean {
    if (this.#tapAnswers) {
      for (const tap of this.#taps!) tap.chunk(chunk);
      return true;
    }
    if (this.#answeredByStage()) return true;
    this.#writeHead();
    if (this.#taps === undefined) return this.#res.write(chunk);
    for (const tap of this.#taps) tap.chunk(chunk);
    const taken = this.#res.write(chunk);
    if (!taken) for (const tap of this.#taps) tap.held?.();
    return taken;
  }

  onDrain(resume: () => void): void {
    const taps = this.#taps;
    this.#res.once(
      'drain',
      taps === undefined
        ? resume
        : () => {
            for (const tap of taps) tap.resumed?.();
            resume();
          },
    );
  }

  end(): void {
    if (this.#tapAnswers) {
      for (const tap of this.#taps!) tap.end();
      return;
    }
    if (this.#answeredByStage()) return;
    this.#writeHead();
    if (this.#taps !== undefined) for (const tap of this.#taps) tap.end();
    this.#res.end();
  }
}
