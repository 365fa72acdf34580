import { maxHeaderSize } from 'node:http';
import type { Duplex } from 'node:stream';
import { type buildConnector, errors } from 'undici';
import { ChunkedBodyEnd, headSaysChunked } from './chunked-body.js';
import { preparingConnections } from './prepared-connections.js';

/**
 * Interim (1xx) answers an origin may send before its final answer to one request. RFC 9110 §15.2 sets
 * no bound, but an origin sending them without end is read as fast as it writes, its answer paced by
 * nobody, for as long as the origin has to answer; a few are all an origin has a use for (a 100, early
 * hints, an occasional 102). HTTP clients bound them likewise (neon at 128, Go once at 5).
 */
export const MAX_INTERIM_ANSWERS = 100;

/**
 * Header lines one answer head (interim or final) may have, and lines a chunked answer's trailer section may
 * have. undici bounds a head, and a trailer section, by the bytes of its names and values alone (16 KiB),
 * which 8,000 lines of `x: v` fit: each line is parsed and copied on its own (a head's also written to the
 * client), at tens of times the CPU and heap of an ordinary answer. Envoy refuses an upstream answer of more
 * than 100 fields by default, in its head or its trailers, nginx one whose head outgrows its 4–8 KiB buffer;
 * node's HTTP/2 client refuses more than 128.
 */
export const MAX_ANSWER_HEADER_LINES = 256;

/**
 * An origin's answer head, or its chunked answer's trailer section, had more than MAX_ANSWER_HEADER_LINES
 * lines: its connection is cut.
 */
export class TooManyAnswerHeaderLinesError extends Error {
  readonly code = 'GATEWAY_TOO_MANY_ANSWER_HEADER_LINES';
  constructor(section: Section = 'head') {
    super(
      `the origin sent ${section === 'head' ? 'an answer head' : 'a trailer section'} of more than ${MAX_ANSWER_HEADER_LINES} lines`,
    );
  }
}

/** The origin sent more than MAX_INTERIM_ANSWERS interim answers to one request: its connection is cut. */
export class TooManyInterimAnswersError extends Error {
  readonly code = 'GATEWAY_TOO_MANY_INTERIM_ANSWERS';
  constructor() {
    super(`the origin sent more than ${MAX_INTERIM_ANSWERS} interim (1xx) answers to one request`);
  }
}

/**
 * A connector whose connections never hand undici an origin's 100 (Continue). The gateway never
 * forwards `Expect` (undici refuses to send it), so every 100 an origin sends is one nobody asked for,
 * which RFC 9110 §15.2 has a client read and may ignore (nginx and Envoy drop it); undici instead
 * closes the connection on any 100, and the request was answered 502. Other 1xx answers reach undici
 * as they came (the proxy keeps them from the client and bounds how long they may go on). Past
 * MAX_INTERIM_ANSWERS of either to one request, the connection is destroyed with
 * TooManyInterimAnswersError; a 100 whose head is longer than undici lets any head be (node's
 * maxHeaderSize), or empty lines before a status line of more bytes than any head may have, with
 * undici's HeadersOverflowError; any answer head of more than MAX_ANSWER_HEADER_LINES header lines, or
 * chunked answer's trailer section of more, with TooManyAnswerHeaderLinesError (each way the request
 * fails: 502; past its head, the answer is cut).
 */
export function withoutUnaskedContinue(connector: buildConnector.connector): buildConnector.connector {
  return preparingConnections(connector, dropUnaskedContinue);
}

/** `HTTP/1.x 1dd` and the byte after it: what tells an interim answer from a final one. */
const STATUS_PREFIX_BYTES = 13;
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
/**
 * A request head as undici writes it (a string; bodies and chunk-size lines never start so). Its method
 * is any token: `M-SEARCH` is one the gateway forwards, and a request not seen here has its answer read
 * by nothing of this filter.
 */
const REQUEST_LINE = /^[-!#$%&'*+.^_`|~0-9A-Za-z]+ \S+ HTTP\/1\.1\r\n/;
/**
 * Bytes an answer head or trailer section may take in all: undici counts only names and values against
 * maxHeaderSize (whitespace around values is not counted), and a final head's bytes are kept until its end
 * to read how its body is framed.
 */
export const MAX_HEAD_BYTES = 4 * maxHeaderSize;
/** The line end of the last chunk's line, where its trailer section starts. */
const LINE_END = Buffer.from('\r\n', 'latin1');

/**
 * Reads an origin's answers where undici reads them (`socket.read()`) and leaves out each 100 at the
 * start of an answer. Where an answer starts is known without framing bodies: undici writes the next
 * request's head only once the previous answer was read whole (one request at a time per connection),
 * so the bytes that follow a request head start an answer, and a 1xx answer (no body) ends at its
 * head's end. An answer's status line may come after empty lines (CR and LF bytes), which undici's
 * parser skips: they are passed on, and counted toward that answer's head. Only a chunked body is
 * followed, chunk by chunk, to find its trailer section. Nothing is held back but the first bytes of an
 * answer, until its status is read. What undici puts back (`socket.unshift`) to read again is passed on
 * as it is, never followed twice.
 */
export function dropUnaskedContinue(socket: Duplex): void {
  const filter = new InterimFilter();
  const read = socket.read;
  const write = socket.write;
  const unshift = socket.unshift;
  /**
   * Bytes undici put back, read already: it stops parsing a read where its handler pauses (the client
   * reads slower than the origin sends, as with most answers larger than a socket's buffer) and puts the
   * rest back, to read it again on resuming. They reach undici again as they are: followed a second time,
   * a chunked body's data would be read as chunk lines (a CSV column of zeros as its last chunk and a
   * trailer section of too many lines, the answer cut in its middle), or the answer no longer followed
   * (its trailer section unbounded).
   */
  let putBack = 0;
  socket.unshift = function putBackRead(this: Duplex, chunk: unknown, ...rest: unknown[]) {
    putBack += (chunk as { length?: number } | null)?.length ?? 0;
    return (unshift as (...args: unknown[]) => void).call(this, chunk, ...rest);
  } as Duplex['unshift'];
  socket.read = function readAnswers(this: Duplex, size?: number) {
    for (;;) {
      const failure = filter.failure;
      if (failure !== undefined && putBack === 0) {
        this.destroy(failure);
        return null;
      }
      const chunk = read.call(this, size) as Buffer | null;
      if (chunk === null) return chunk;
      const again = Math.min(putBack, chunk.length);
      putBack -= again;
      // Bytes after the put-back ones are new; none reach undici once the connection is to be cut.
      if (again > 0 && (again === chunk.length || failure !== undefined)) return chunk.subarray(0, again);
      if (filter.passing) return chunk;
      let kept: Buffer;
      try {
        kept = filter.take(again === 0 ? chunk : chunk.subarray(again));
      } catch (error) {
        this.destroy(error as Error);
        return null;
      }
      if (again > 0)
        return kept.length === 0 ? chunk.subarray(0, again) : Buffer.concat([chunk.subarray(0, again), kept]);
      if (kept.length > 0) return kept;
    }
  };
  socket.write = function writeRequests(this: Duplex, chunk: unknown, ...rest: unknown[]) {
    if (typeof chunk === 'string' && REQUEST_LINE.test(chunk))
      filter.requestWritten(chunk.startsWith('HEAD '));
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as Duplex['write'];
}

/** An answer's head, or a chunked answer's trailer section. */
type Section = 'head' | 'trailers';

/** Where the bytes read are in the answer to the request last written. */
type Position =
  /** Past a final answer's head (or its trailer section): everything is passed on. */
  | { readonly at: 'passing' }
  /**
   * At an answer's start: its first bytes, held until they show its status; `skipped`: the empty lines'
   * bytes (CR, LF) before them, which undici's parser skips there and which count toward the head's bytes.
   */
  | { readonly at: 'status'; held: Buffer; skipped: number }
  /**
   * In an answer's head or trailer section, up to its end (its last 3 bytes kept to find an end split
   * across reads), passed on as it is read unless `dropped`; `headBytes`: how much of it was read (undici
   * never sees a dropped head to bound), `lineEnds`: its line feeds so far (the status line's, or the last
   * chunk's line's, included); `read`: a final head's bytes so far, whose fields tell how its body is framed.
   */
  | {
      readonly at: 'head';
      readonly section: Section;
      readonly interim: boolean;
      readonly dropped: boolean;
      readonly read: Buffer[] | undefined;
      tail: Buffer;
      headBytes: number;
      lineEnds: number;
    }
  /** In a chunked body, passed on as it is read, up to its trailer section. */
  | { readonly at: 'chunks'; readonly body: ChunkedBodyEnd };

class InterimFilter {
  #position: Position = { at: 'passing' };
  /** Interim answers to the request last written, dropped or kept. */
  #interimAnswers = 0;
  /** Whether the request last written is a HEAD, whose answer has no body whatever its head says. */
  #headRequest = false;
  /** Why the connection is to be cut once undici has read what came before (a trailer section's excess). */
  #failure: Error | undefined;

  get passing(): boolean {
    return this.#position.at === 'passing';
  }

  get failure(): Error | undefined {
    return this.#failure;
  }

  requestWritten(headRequest: boolean): void {
    this.#interimAnswers = 0;
    this.#headRequest = headRequest;
    this.#answerExpected();
  }

  #answerExpected(): void {
    this.#position = { at: 'status', held: NOTHING_HELD, skipped: 0 };
  }

  /**
   * The part of `chunk` (with bytes held back before) that undici is to read. Throws
   * TooManyInterimAnswersError at the interim answer past MAX_INTERIM_ANSWERS, HeadersOverflowError
   * once a dropped head goes past maxHeaderSize (any head, trailer section, or empty lines before a
   * status line, past MAX_HEAD_BYTES), TooManyAnswerHeaderLinesError at a head's header line (or a
   * trailer section's line) past MAX_ANSWER_HEADER_LINES. A trailer section's excess after bytes to pass on returns those instead and
   * sets `failure`, for the next read to cut the connection with.
   */
  take(chunk: Buffer): Buffer {
    const kept: Buffer[] = [];
    let rest = chunk;
    const headEnd = this.#finalHeadAtStart(chunk);
    if (headEnd > 0) {
      // Nearly every answer: its whole head in its first read, and no chunked body to follow after it.
      if (this.#position.at === 'passing') return chunk;
      keep(kept, chunk.subarray(0, headEnd));
      rest = chunk.subarray(headEnd);
    }
    while (rest.length > 0) {
      const position = this.#position;
      if (position.at === 'passing') {
        keep(kept, rest);
        break;
      }
      if (position.at === 'chunks') {
        const end = position.body.take(rest);
        if (typeof end !== 'number' || end < 0) {
          // Bytes that are not chunks are undici's to refuse: nothing more of this answer is looked at.
          if (end === 'unframed') this.#position = { at: 'passing' };
          keep(kept, rest);
          break;
        }
        keep(kept, rest.subarray(0, end));
        rest = rest.subarray(end);
        this.#position = {
          at: 'head',
          section: 'trailers',
          interim: false,
          dropped: false,
          read: undefined,
          tail: LINE_END,
          headBytes: 0,
          lineEnds: 1,
        };
        continue;
      }
      if (position.at === 'status') {
        if (position.held.length === 0) {
          const blank = leadingEmptyLineBytes(rest);
          if (blank > 0) {
            position.skipped += blank;
            if (position.skipped > MAX_HEAD_BYTES) throw new errors.HeadersOverflowError();
            keep(kept, rest.subarray(0, blank));
            rest = rest.subarray(blank);
            continue;
          }
        }
        const wanted = STATUS_PREFIX_BYTES - position.held.length;
        const held =
          position.held.length === 0
            ? rest.subarray(0, wanted)
            : Buffer.concat([position.held, rest.subarray(0, wanted)]);
        rest = rest.subarray(wanted);
        const status = interimStatus(held);
        if (status === 'unknown') {
          position.held = Buffer.from(held);
          continue; // rest is empty: more bytes are needed
        }
        const interim = status !== 'final' && status !== 101;
        if (interim && ++this.#interimAnswers > MAX_INTERIM_ANSWERS) throw new TooManyInterimAnswersError();
        this.#position = {
          at: 'head',
          section: 'head',
          interim,
          dropped: status === 100,
          // A 101's bytes after its head are another protocol's, and a HEAD's answer has no body.
          read: status === 'final' && !this.#headRequest ? [held] : undefined,
          tail: held.subarray(-3),
          headBytes: position.skipped + held.length,
          lineEnds: lineEnds(held),
        };
        if (status !== 100) keep(kept, held);
        continue;
      }
      const end = headEndIn(position.tail, rest);
      const head = end < 0 ? rest : rest.subarray(0, end);
      position.headBytes += head.length;
      position.lineEnds += lineEnds(head);
      const error =
        position.headBytes > (position.dropped ? maxHeaderSize : MAX_HEAD_BYTES)
          ? new errors.HeadersOverflowError()
          : // The status line's end (or the last chunk's line's) and the blank line's are no header lines.
            position.lineEnds - 2 > MAX_ANSWER_HEADER_LINES
            ? new TooManyAnswerHeaderLinesError(position.section)
            : undefined;
      if (error !== undefined) {
        if (position.section === 'head' || kept.length === 0) throw error;
        // The answer's head and content before its trailer section still reach undici (the client gets
        // what a malformed trailer section leaves it: the answer, cut before its end), not one trailer line.
        this.#failure = error;
        break;
      }
      if (!position.dropped) keep(kept, head);
      position.read?.push(head);
      if (end < 0) {
        position.tail = lastBytes(position.tail, rest, HEAD_END.length - 1);
        break;
      }
      rest = rest.subarray(end);
      // A 1xx has no content: the next answer starts after its head. After a final head, a chunked body
      // is followed to its trailer section; any other content (or a 101's new protocol), and what follows
      // a trailer section, is passed on as it comes, up to the next request.
      if (position.interim) this.#answerExpected();
      else if (position.read !== undefined && hasChunkedBody(position.read))
        this.#position = { at: 'chunks', body: new ChunkedBodyEnd() };
      else this.#position = { at: 'passing' };
    }
    return kept.length === 1 ? kept[0]! : Buffer.concat(kept);
  }

  /**
   * When `chunk` starts the answer awaited with a final status line (no empty lines before it, in this
   * read or an earlier one, no bytes held) and holds its whole head: the head's length, the position set
   * past it (the chunked body it announces, or passing), the head's bounds checked as `take` checks them. Else 0, nothing changed, and
   * `take` reads the chunk step by step. The same reading as take's, without its copies and views: the
   * head's end is searched for from where take's first search starts (the last bytes of the status
   * prefix), and the head is read as one string.
   */
  #finalHeadAtStart(chunk: Buffer): number {
    const position = this.#position;
    // Empty lines an earlier read brought count toward the head's bytes: take bounds them with it.
    if (
      position.at !== 'status' ||
      position.held.length !== 0 ||
      position.skipped !== 0 ||
      chunk.length < STATUS_PREFIX_BYTES
    )
      return 0;
    const first = chunk[0];
    if (first === 0x0d || first === 0x0a || interimStatus(chunk) !== 'final') return 0;
    const end = chunk.indexOf(HEAD_END, STATUS_PREFIX_BYTES - (HEAD_END.length - 1));
    if (end < 0) return 0;
    const headBytes = end + HEAD_END.length;
    if (headBytes > MAX_HEAD_BYTES) throw new errors.HeadersOverflowError();
    // One string of the head, its lines found by the engine's indexOf: a byte loop in JS, or
    // Buffer#indexOf's call into C++ per line, costs several times more per answer.
    const head = chunk.toString('latin1', 0, headBytes);
    // The status line's end and the blank line's are no header lines. A head has no more line feeds than
    // bytes: one of at most MAX_ANSWER_HEADER_LINES + 2 bytes need not be counted.
    if (headBytes - 2 > MAX_ANSWER_HEADER_LINES && textLineEnds(head) - 2 > MAX_ANSWER_HEADER_LINES)
      throw new TooManyAnswerHeaderLinesError('head');
    this.#position =
      !this.#headRequest && headHasChunkedBody(head) ? { at: 'chunks', body: new ChunkedBodyEnd() } : PASSING;
    return headBytes;
  }
}

const PASSING: Position = { at: 'passing' };
/** An answer's start before any of its bytes came (never written into: held bytes replace it). */
const NOTHING_HELD = Buffer.alloc(0);

/**
 * Whether a final answer's head (not a HEAD's, not a 101's) is followed by a chunked body: it says so and
 * its status is not one that never has content (204, 304).
 */
function hasChunkedBody(read: readonly Buffer[]): boolean {
  return headHasChunkedBody((read.length === 1 ? read[0]! : Buffer.concat(read)).toString('latin1'));
}

/** `head`: the head's bytes as a latin1 string. */
function headHasChunkedBody(head: string): boolean {
  const status = head.slice(9, 12);
  return status !== '204' && status !== '304' && headSaysChunked(head);
}

/**
 * Adds `piece` to what undici is to read: as one view with the piece before it when they are contiguous
 * (bytes of one read, nothing left out between them), so a read passed on whole is never copied.
 */
function keep(kept: Buffer[], piece: Buffer): void {
  if (piece.length === 0) return;
  const last = kept[kept.length - 1];
  if (
    last !== undefined &&
    last.buffer === piece.buffer &&
    last.byteOffset + last.length === piece.byteOffset
  )
    kept[kept.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + piece.length);
  else kept.push(piece);
}

/**
 * Where in `rest` the head that `tail` (its last bytes read before, no end among them) goes on in ends:
 * the offset just past its CRLFCRLF, -1 when it goes on past `rest`. Only the few bytes where tail and
 * rest meet are copied to look across them: a read holding many short heads is searched once over.
 */
function headEndIn(tail: Buffer, rest: Buffer): number {
  const across = Buffer.concat([tail, rest.subarray(0, HEAD_END.length - 1)]).indexOf(HEAD_END);
  if (across >= 0) return across + HEAD_END.length - tail.length;
  const within = rest.indexOf(HEAD_END);
  return within < 0 ? -1 : within + HEAD_END.length;
}

/** The last `count` bytes of `before` followed by `after`, as a copy (not a view holding a whole read). */
function lastBytes(before: Buffer, after: Buffer, count: number): Buffer {
  if (after.length >= count) return Buffer.from(after.subarray(after.length - count));
  return Buffer.concat([before, after]).subarray(-count);
}

const INTERIM_START = Buffer.from('HTTP/1.1 1', 'latin1');

/**
 * The 1xx status an answer's first bytes show, `final` when they show another (or no valid) status
 * line, `unknown` while too few bytes have come to tell.
 */
function interimStatus(start: Buffer): number | 'final' | 'unknown' {
  const compared = Math.min(start.length, INTERIM_START.length);
  for (let at = 0; at < compared; at++) {
    const byte = start[at]!;
    // HTTP/1.0 or HTTP/1.1
    const matches = at === 7 ? byte === 0x30 || byte === 0x31 : byte === INTERIM_START[at];
    if (!matches) return 'final';
  }
  if (start.length < STATUS_PREFIX_BYTES) {
    for (let at = INTERIM_START.length; at < start.length; at++) if (!isDigit(start[at]!)) return 'final';
    return 'unknown';
  }
  if (!isDigit(start[10]!) || !isDigit(start[11]!)) return 'final';
  const after = start[12]!;
  if (after !== 0x20 && after !== 0x0d) return 'final'; // a status of more than three digits
  return 100 + (start[10]! - 0x30) * 10 + (start[11]! - 0x30);
}

/** How many of the first bytes of `bytes` are CR or LF: empty lines before a status line. */
function leadingEmptyLineBytes(bytes: Buffer): number {
  let at = 0;
  while (at < bytes.length && (bytes[at] === 0x0d || bytes[at] === 0x0a)) at++;
  return at;
}

/** The line feeds in `bytes`. */
function lineEnds(bytes: Buffer): number {
  let count = 0;
  for (let at = bytes.indexOf(0x0a); at >= 0; at = bytes.indexOf(0x0a, at + 1)) count++;
  return count;
}

/** The line feeds in `text`. */
function textLineEnds(text: string): number {
  let count = 0;
  for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n', at + 1)) count++;
  return count;
}

function isDigit(byte: number): boolean {
  return byte >= 0x30 && byte <= 0x39;
}
