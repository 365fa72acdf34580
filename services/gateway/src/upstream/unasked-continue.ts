import type { Duplex } from 'node:stream';
import type { buildConnector } from 'undici';

/**
 * A connector whose connections never hand undici an origin's 100 (Continue). The gateway never
 * forwards `Expect` (undici refuses to send it), so every 100 an origin sends is one nobody asked for,
 * which RFC 9110 §15.2 has a client read and may ignore (nginx and Envoy drop it); undici instead
 * closes the connection on any 100, and the request was answered 502. Other 1xx answers reach undici
 * as they came (the proxy keeps them from the client and bounds how long they may go on).
 */
export function withoutUnaskedContinue(connector: buildConnector.connector): buildConnector.connector {
  return (options, callback) =>
    connector(options, (error, socket) => {
      if (error !== null) {
        callback(error, null);
        return;
      }
      dropUnaskedContinue(socket);
      callback(null, socket);
    });
}

/** `HTTP/1.x 1dd` and the byte after it: what tells an interim answer from a final one. */
const STATUS_PREFIX_BYTES = 13;
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
/** A request head as undici writes it (a string; bodies and chunk-size lines never start so). */
const REQUEST_LINE = /^[A-Z]+ \S+ HTTP\/1\.1\r\n/;

/**
 * Reads an origin's answers where undici reads them (`socket.read()`) and leaves out each 100 at the
 * start of an answer. Where an answer starts is known without framing bodies: undici writes the next
 * request's head only once the previous answer was read whole (one request at a time per connection),
 * so the bytes that follow a request head start an answer, and a 1xx answer (no body) ends at its
 * head's end. Nothing is held back but the first bytes of an answer, until its status is read.
 */
export function dropUnaskedContinue(socket: Duplex): void {
  const filter = new InterimFilter();
  const read = socket.read;
  const write = socket.write;
  socket.read = function readAnswers(this: Duplex, size?: number) {
    for (;;) {
      const chunk = read.call(this, size) as Buffer | null;
      if (chunk === null || filter.passing) return chunk;
      const kept = filter.take(chunk);
      if (kept.length > 0) return kept;
    }
  };
  socket.write = function writeRequests(this: Duplex, chunk: unknown, ...rest: unknown[]) {
    if (typeof chunk === 'string' && REQUEST_LINE.test(chunk)) filter.answerExpected();
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as Duplex['write'];
}

/** Where the bytes read are in the answer to the request last written. */
type Position =
  /** Past a final status line: everything is passed on. */
  | { readonly at: 'passing' }
  /** At an answer's start: its first bytes, held until they show its status. */
  | { readonly at: 'status'; held: Buffer }
  /** In a 1xx answer's head, up to its end (its last 3 bytes kept to find an end split across reads). */
  | { readonly at: 'interim'; readonly dropped: boolean; tail: Buffer };

class InterimFilter {
  #position: Position = { at: 'passing' };

  get passing(): boolean {
    return this.#position.at === 'passing';
  }

  answerExpected(): void {
    this.#position = { at: 'status', held: Buffer.alloc(0) };
  }

  /** The part of `chunk` (with bytes held back before) that undici is to read. */
  take(chunk: Buffer): Buffer {
    const kept: Buffer[] = [];
    let rest = chunk;
    while (rest.length > 0) {
      const position = this.#position;
      if (position.at === 'passing') {
        kept.push(rest);
        break;
      }
      if (position.at === 'status') {
        const wanted = STATUS_PREFIX_BYTES - position.held.length;
        const held = Buffer.concat([position.held, rest.subarray(0, wanted)]);
        rest = rest.subarray(wanted);
        const status = interimStatus(held);
        if (status === 'unknown') {
          position.held = held;
          continue; // rest is empty: more bytes are needed
        }
        if (status === 'final' || status === 101) {
          this.#position = { at: 'passing' };
          kept.push(held);
          continue;
        }
        this.#position = { at: 'interim', dropped: status === 100, tail: held.subarray(-3) };
        if (status !== 100) kept.push(held);
        continue;
      }
      // The head's end, in `rest` (it cannot end within the tail: the end is longer than the tail).
      const found = Buffer.concat([position.tail, rest]).indexOf(HEAD_END);
      const end = found < 0 ? -1 : found + HEAD_END.length - position.tail.length;
      const head = end < 0 ? rest : rest.subarray(0, end);
      if (!position.dropped) kept.push(head);
      if (end < 0) {
        position.tail = Buffer.concat([position.tail, rest]).subarray(-3);
        break;
      }
      rest = rest.subarray(end);
      this.answerExpected(); // a 1xx has no content: the next answer starts after its head
    }
    return kept.length === 1 ? kept[0]! : Buffer.concat(kept);
  }
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

function isDigit(byte: number): boolean {
  return byte >= 0x30 && byte <= 0x39;
}
