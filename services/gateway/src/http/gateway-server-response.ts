import {
  type IncomingMessage,
  type OutgoingHttpHeader,
  type OutgoingHttpHeaders,
  OutgoingMessage,
  ServerResponse,
  validateHeaderName,
  validateHeaderValue,
} from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import { type CountsBodyBytes, chunkBytes } from './body-bytes.js';

type HeaderValue = number | string | readonly string[];

/**
 * Headers that node reads while it writes the head (framing, connection handling, the date, the
 * latin-1 encoding of Content-Disposition): never prepared bytes, which node does not look into.
 */
const HEAD_FRAMING_HEADERS = new Set([
  'connection',
  'transfer-encoding',
  'content-length',
  'date',
  'expect',
  'trailer',
  'keep-alive',
  'content-disposition',
  'set-cookie',
]);

/**
 * A response header a route sets on many responses (CORS, Vary, a fixed transform), checked once when
 * the route is compiled and kept as the bytes of its head line. The gateway's HTTP/1.1 response puts
 * those bytes into the head as they are; node checks every other header on every response, at about
 * 70 ns a line in a loop and 0.5 µs under load, which is what the everyday route policies cost.
 */
export class CheckedHeader {
  readonly key: string;
  readonly line: string;

  /** Throws node's own error for a name or value node would refuse, or a framing header. */
  constructor(
    readonly name: string,
    readonly value: string,
  ) {
    validateHeaderName(name);
    validateHeaderValue(name, value);
    this.key = name.toLowerCase();
    if (HEAD_FRAMING_HEADERS.has(this.key))
      throw new TypeError(`${name} is read by node as it writes the head: set it with setHeader`);
    this.line = `${name}: ${value}\r\n`;
  }
}

/**
 * Sets checked headers in order: as prepared bytes on the gateway's HTTP/1.1 response, else with
 * setHeader. Each replaces a header of the same name.
 */
export function setCheckedHeaders(
  res: ServerResponse | Http2ServerResponse,
  headers: readonly CheckedHeader[],
): void {
  if (res instanceof GatewayServerResponse) {
    for (const header of headers) res.setCheckedHeader(header);
  } else {
    for (const header of headers) res.setHeader(header.name, header.value);
  }
}

const NO_CHECKED_HEADERS: readonly CheckedHeader[] = [];

/**
 * writeHead for headers whose names are all in lower case (an origin's, as undici gives them, and the
 * gateway's own): the gateway's response then need not look for other spellings of the names it holds.
 * `checked`: headers of this head checked in advance, none of them in `headers`; each replaces one of the
 * same name set before (as `headers` do). Set only if the head is written: an error answered instead
 * does not carry them.
 */
export function writeLowerCaseHead(
  res: ServerResponse,
  statusCode: number,
  headers: OutgoingHttpHeaders,
  checked: readonly CheckedHeader[] = NO_CHECKED_HEADERS,
): void {
  if (res instanceof GatewayServerResponse) {
    res.writeLowerCaseHead(statusCode, headers, checked);
    return;
  }
  if (checked.length === 0) {
    res.writeHead(statusCode, headers);
    return;
  }
  const all: OutgoingHttpHeaders = { ...headers };
  for (const header of checked) all[header.key] = header.value;
  res.writeHead(statusCode, all);
}

/** node's internal head writer, which the gateway's response hands its prepared lines through. */
interface HeadWriter {
  _storeHeader(firstLine: string, headers: unknown): void;
}
const storeHead = (OutgoingMessage.prototype as unknown as Partial<HeadWriter>)._storeHeader;

/**
 * node:http's response for the gateway's HTTP/1.1 listeners: headers the gateway sets before the head
 * is written (X-Request-Id, CORS, RateLimit, X-Cache, …) wait in a short list and go out with the
 * head in one `writeHead(status, headers)`.
 *
 * Stock node:http keeps them in its own table instead, and once that table exists `writeHead` takes
 * the slow path: every header passed to it (all of the origin's) goes through `setHeader` too, with its
 * checks, before the head is built (and checked) again. Measured on one core, that is 3–7 µs per
 * response for X-Request-Id alone and about 10 µs with five CORS/transform headers, on a proxy whose
 * whole cost is 65–110 µs. Names and values are still checked, once, when the head is written. After
 * the head, getHeader answers for the headers set before it, not for those given to `writeHead` (as
 * node's does when nothing was set before).
 *
 * Semantics are node's: a header passed to `writeHead` replaces one set before; names are
 * case-insensitive; after the head is sent, setting a header throws as before.
 *
 * The bytes of a response written in one turn of the event loop (head, body, end) go to the socket at
 * the end of that turn, together with the other responses written in it: one write per response as
 * before, but in a burst. A write to a peer on the same host (loopback, a pod's veth: an ingress or
 * sidecar in front) does the receiver's TCP work and wakes it up on the sender's CPU; in a burst, the
 * receiver is awake after the first. Measured on the benchmark's cache HIT from L1, 80 → 43 CPU µs per
 * response. So from `writeHead` to the end of its turn the socket is corked and `end()` waits (node's
 * `end()` uncorks the socket fully); `writableEnded` is true from the call. Later writes of a long body
 * go out as they come: only the first turn is held.
 */
export class GatewayServerResponse<Request extends IncomingMessage = IncomingMessage>
  extends ServerResponse<Request>
  implements CountsBodyBytes
{
  /** The body bytes handed to the connection (see CountsBodyBytes). */
  bodyBytes = 0;
  /** Until the head is written; then what was sent (for getHeader). */
  #headers: PendingHeaders | null = null;
  /** Corked until the end of the turn in which the head was written. */
  #held = false;
  /** `end()` was called while held: its arguments, for the end of the turn. */
  #endArgs: unknown[] | undefined;
  /** The checked headers' lines for the head being written, between writeHead and node's head writer. */
  #checkedLines = '';
  /** The headers given to the writeHead being run have lower-case names only (writeLowerCaseHead). */
  #givenLowerCase = false;
  /** Checked headers given with the writeHead being run (writeLowerCaseHead). */
  #givenChecked: readonly CheckedHeader[] = NO_CHECKED_HEADERS;

  static #heldResponses: GatewayServerResponse[] = [];

  static #releaseHeld(): void {
    const responses = GatewayServerResponse.#heldResponses;
    GatewayServerResponse.#heldResponses = [];
    for (const res of responses) res.#release();
  }

  static {
    if (typeof storeHead === 'function') {
      // node writes the head as the status line, then each header it checks: the checked headers'
      // lines go in after the status line, where writeHead would have put them first anyway.
      Object.defineProperty(GatewayServerResponse.prototype, '_storeHeader', {
        configurable: true,
        writable: true,
        value(this: GatewayServerResponse, firstLine: string, headers: unknown): void {
          const lines = this.#checkedLines;
          this.#checkedLines = '';
          storeHead!.call(this, lines === '' ? firstLine : firstLine + lines, headers);
        },
      });
    }
    const stock = Object.getOwnPropertyDescriptor(OutgoingMessage.prototype, 'writableEnded')!;
    Object.defineProperty(GatewayServerResponse.prototype, 'writableEnded', {
      configurable: true,
      get(this: GatewayServerResponse) {
        return this.#endArgs !== undefined || (stock.get!.call(this) as boolean);
      },
    });
  }

  override setHeader(name: string, value: HeaderValue): this {
    if (this.headersSent) return super.setHeader(name, value);
    if (typeof name !== 'string' || name === '') return super.setHeader(name, value); // node's error
    this.#headers ??= new PendingHeaders();
    this.#headers.set(name, value);
    return this;
  }

  /** Sets a header checked in advance (see CheckedHeader); it replaces one of the same name. */
  setCheckedHeader(header: CheckedHeader): void {
    if (this.headersSent || typeof storeHead !== 'function') {
      this.setHeader(header.name, header.value);
      return;
    }
    this.#headers ??= new PendingHeaders();
    this.#headers.setChecked(header);
  }

  override appendHeader(name: string, value: string | readonly string[]): this {
    const current = this.getHeader(name);
    if (current === undefined) return this.setHeader(name, value);
    const before = Array.isArray(current) ? current : [String(current)];
    return this.setHeader(name, before.concat(value));
  }

  override getHeader(name: string): OutgoingHttpHeader | undefined {
    const own = this.#headers?.get(name);
    return (own as OutgoingHttpHeader | undefined) ?? super.getHeader(name);
  }

  override hasHeader(name: string): boolean {
    return this.#headers?.has(name) === true || super.hasHeader(name);
  }

  override removeHeader(name: string): void {
    if (!this.headersSent) this.#headers?.delete(name);
    super.removeHeader(name);
  }

  override getHeaderNames(): string[] {
    const own = this.#headers === null ? [] : this.#headers.names();
    const stock = super.getHeaderNames();
    return stock.length === 0 ? own : [...new Set([...own, ...stock])];
  }

  override getHeaders(): OutgoingHttpHeaders {
    const headers = super.getHeaders();
    this.#headers?.copyTo(headers);
    return headers;
  }

  override writeHead(
    statusCode: number,
    reasonOrHeaders?: string | OutgoingHttpHeaders | OutgoingHttpHeader[],
    maybeHeaders?: OutgoingHttpHeaders | OutgoingHttpHeader[],
  ): this {
    if (!this.headersSent) this.#holdUntilTurnEnds();
    this.#checkedLines = '';
    const pending = this.#headers;
    const reason = typeof reasonOrHeaders === 'string' ? reasonOrHeaders : undefined;
    const given = typeof reasonOrHeaders === 'string' ? maybeHeaders : reasonOrHeaders;
    const checked = this.#givenChecked;
    if (checked.length !== 0 && typeof storeHead !== 'function') {
      // No head writer to hand lines to (setCheckedHeader's case too): set as any header.
      this.#givenChecked = NO_CHECKED_HEADERS;
      for (const header of checked) this.setHeader(header.name, header.value);
      return this.writeHead(statusCode, reasonOrHeaders as OutgoingHttpHeaders, maybeHeaders);
    }
    if (pending === null || this.headersSent) {
      if (!this.headersSent) this.#checkedLines = linesOf(checked);
      return reason === undefined
        ? super.writeHead(statusCode, given)
        : super.writeHead(statusCode, reason, given);
    }
    let headers: OutgoingHttpHeaders | OutgoingHttpHeader[];
    if (Array.isArray(given)) {
      // Raw [name, value] pairs: node's own table takes the pending headers (the slow path, rare).
      pending.forEach((name, value) => {
        super.setHeader(name, value);
      });
      headers = given;
    } else {
      // Flat [name, value, name, value, …]: node writes these in order, checking each once; the
      // checked headers go in as their lines.
      const flat =
        given === undefined || given === null
          ? checked.length === 0
            ? pending.flat()
            : pending.flatWith({}, true, checked)
          : pending.flatWith(given, this.#givenLowerCase, checked);
      this.#checkedLines = flat.lines;
      headers = flat.headers;
    }
    return reason === undefined
      ? super.writeHead(statusCode, headers)
      : super.writeHead(statusCode, reason, headers);
  }

  /**
   * writeHead(statusCode, headers) for headers whose names are all in lower case, and `checked` headers
   * (none of them in `headers`), which replace those of the same names set before.
   */
  writeLowerCaseHead(
    statusCode: number,
    headers: OutgoingHttpHeaders,
    checked: readonly CheckedHeader[] = NO_CHECKED_HEADERS,
  ): void {
    this.#givenLowerCase = true;
    this.#givenChecked = checked;
    try {
      this.writeHead(statusCode, headers);
    } finally {
      this.#givenLowerCase = false;
      this.#givenChecked = NO_CHECKED_HEADERS;
    }
  }

  override end(cb?: () => void): this;
  override end(chunk: unknown, cb?: () => void): this;
  override end(chunk: unknown, encoding: BufferEncoding, cb?: () => void): this;
  override end(...args: unknown[]): this {
    const open = !this.writableEnded && !this.destroyed;
    if (this.#held && this.#endArgs === undefined && this.headersSent) {
      this.#endArgs = args;
      if (open) this.#countBody(args[0], args[1]);
      return this;
    }
    // A head implied by end() is held by writeHead and released by node's end() at once.
    super.end(...(args as [])); // typed by its first overload only
    this.#held = false;
    if (open) this.#countBody(args[0], args[1]);
    return this;
  }

  override write(chunk: unknown, cb?: (error: Error | null | undefined) => void): boolean;
  override write(
    chunk: unknown,
    encoding: BufferEncoding,
    cb?: (error: Error | null | undefined) => void,
  ): boolean;
  override write(...args: unknown[]): boolean {
    const open = !this.writableEnded && !this.destroyed;
    const written = super.write(...(args as [unknown])); // typed by its first overload only
    if (open) this.#countBody(args[0], args[1]);
    return written;
  }

  /** After the head: node sends no body for a HEAD, a 1xx, 204 or 304, and drops what is written for one. */
  #countBody(chunk: unknown, encoding: unknown): void {
    if ((this as unknown as { _hasBody: boolean })._hasBody) this.bodyBytes += chunkBytes(chunk, encoding);
  }

  #holdUntilTurnEnds(): void {
    if (this.#held || this.socket === null) return;
    this.#held = true;
    this.cork();
    if (GatewayServerResponse.#heldResponses.push(this) === 1)
      setImmediate(GatewayServerResponse.#releaseHeld);
  }

  #release(): void {
    if (!this.#held) return;
    this.#held = false;
    const args = this.#endArgs;
    if (args === undefined) this.uncork();
    else super.end(...(args as []));
  }
}

/**
 * The headers set before the head, as [lower-case name, name as spelled, value, checked line or '', …]:
 * a response has a handful, so a scan of one array is cheaper than a Map (which also grows, allocating,
 * past four).
 */
class PendingHeaders {
  readonly #entries: Array<string | HeaderValue> = [];

  #indexOf(key: string): number {
    const entries = this.#entries;
    for (let i = 0; i < entries.length; i += 4) if (entries[i] === key) return i;
    return -1;
  }

  #put(key: string, name: string, value: HeaderValue, line: string): void {
    const at = this.#indexOf(key);
    if (at < 0) {
      this.#entries.push(key, name, value, line);
      return;
    }
    this.#entries[at + 1] = name;
    this.#entries[at + 2] = value;
    this.#entries[at + 3] = line;
  }

  set(name: string, value: HeaderValue): void {
    this.#put(name.toLowerCase(), name, value, '');
  }

  setChecked(header: CheckedHeader): void {
    this.#put(header.key, header.name, header.value, header.line);
  }

  get(name: string): HeaderValue | undefined {
    const at = this.#indexOf(name.toLowerCase());
    return at < 0 ? undefined : (this.#entries[at + 2] as HeaderValue);
  }

  has(name: string): boolean {
    return this.#indexOf(name.toLowerCase()) >= 0;
  }

  delete(name: string): void {
    const at = this.#indexOf(name.toLowerCase());
    if (at >= 0) this.#entries.splice(at, 4);
  }

  names(): string[] {
    const names: string[] = [];
    for (let i = 0; i < this.#entries.length; i += 4) names.push(this.#entries[i] as string);
    return names;
  }

  forEach(each: (name: string, value: HeaderValue) => void): void {
    for (let i = 0; i < this.#entries.length; i += 4)
      each(this.#entries[i + 1] as string, this.#entries[i + 2] as HeaderValue);
  }

  copyTo(headers: OutgoingHttpHeaders): void {
    for (let i = 0; i < this.#entries.length; i += 4)
      headers[this.#entries[i] as string] = this.#entries[i + 2] as OutgoingHttpHeader;
  }

  /**
   * The waiting headers `given` does not replace (names compared case-insensitively), then given's:
   * [name as spelled, value, …] for node to check, and the checked ones' lines. One pass over each,
   * instead of a search of the waiting list per given header (an origin's response brings a dozen).
   * When every waiting header left is a checked one, `given` itself is what node checks (no copy).
   * `checked`: given headers checked in advance (their names not in `given`), as lines after the rest.
   */
  flatWith(
    given: OutgoingHttpHeaders,
    givenLowerCase: boolean,
    checked: readonly CheckedHeader[],
  ): HeadHeaders {
    let respelled: Set<string> | undefined; // given names not written in lower case, lower-cased
    if (!givenLowerCase) {
      for (const name in given) {
        if (given[name] === undefined) continue;
        const lower = name.toLowerCase();
        if (lower === name) continue;
        respelled ??= new Set();
        respelled.add(lower);
      }
    }
    const entries = this.#entries;
    let lines = '';
    let unchecked = false;
    for (let i = 0; i < entries.length; i += 4) {
      if (replacedBy(given, respelled, checked, entries[i] as string)) continue;
      const line = entries[i + 3] as string;
      if (line === '') unchecked = true;
      else lines += line;
    }
    lines += linesOf(checked);
    if (!unchecked && givenLowerCase) return { headers: given, lines };
    const headers: OutgoingHttpHeader[] = [];
    for (let i = 0; i < entries.length; i += 4) {
      if (entries[i + 3] !== '' || replacedBy(given, respelled, checked, entries[i] as string)) continue;
      headers.push(entries[i + 1] as string, entries[i + 2] as OutgoingHttpHeader);
    }
    for (const name in given) {
      const value = given[name];
      if (value !== undefined) headers.push(name, value);
    }
    return { headers, lines };
  }

  /** The waiting headers in the order they were first set, checked ones as lines. */
  flat(): HeadHeaders {
    const headers: OutgoingHttpHeader[] = [];
    let lines = '';
    const entries = this.#entries;
    for (let i = 0; i < entries.length; i += 4) {
      const line = entries[i + 3] as string;
      if (line !== '') lines += line;
      else headers.push(entries[i + 1] as string, entries[i + 2] as OutgoingHttpHeader);
    }
    return { headers, lines };
  }
}

function linesOf(checked: readonly CheckedHeader[]): string {
  let lines = '';
  for (const header of checked) lines += header.line;
  return lines;
}

/**
 * Whether `given` sets the header of lower-case name `key` (spelled any way: `respelled`), or one of
 * the `checked` headers given with it is that header.
 */
function replacedBy(
  given: OutgoingHttpHeaders,
  respelled: Set<string> | undefined,
  checked: readonly CheckedHeader[],
  key: string,
): boolean {
  if ((Object.hasOwn(given, key) && given[key] !== undefined) || respelled?.has(key) === true) return true;
  for (let i = 0; i < checked.length; i++) if (checked[i]!.key === key) return true;
  return false;
}

/** A head's headers: [name as spelled, value, …] for node to check, and checked headers' lines. */
interface HeadHeaders {
  headers: OutgoingHttpHeader[] | OutgoingHttpHeaders;
  lines: string;
}
