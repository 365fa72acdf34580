/**
 * Reading header values the way they really arrive. node:http gives a request header as a string
 * (repeated lines joined, a few singleton fields keep the first, Set-Cookie is an array), but undici
 * gives an origin's repeated response lines as an array, and `IncomingHttpHeaders`' types claim a
 * string for names they know. Every header read in the gateway goes through one of these, so no value
 * shape (absent, one line, several lines, a number set by the gateway itself) can throw.
 */
export type HeaderValue = string | readonly string[] | number | undefined;

/**
 * The request's field `name` (lower-case) as node gives it, only when the client sent it. A request's
 * headers object inherits from Object.prototype, so reading a name someone else chose (a route's match
 * condition or traffic split, an origin's Vary) as `headers[name]` finds `constructor` (a function)
 * or `__proto__` on every request.
 */
export function sentHeader(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  name: string,
): string | string[] | undefined {
  return Object.hasOwn(headers, name) ? headers[name] : undefined;
}

/** Fields of which node:http keeps a request's first line and drops the others (Node 24). */
const FIRST_LINE_ONLY: ReadonlySet<string> = new Set([
  'age',
  'authorization',
  'content-length',
  'content-type',
  'etag',
  'expires',
  'from',
  'host',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'referer',
  'retry-after',
  'server',
  'user-agent',
]);

/**
 * A request's header lines (names in any case, in the order sent) as node:http gives them to the
 * gateway: names in lower case, a name's lines joined with ", " (Cookie's with "; "), only the first
 * line of the fields node keeps once, Set-Cookie as a list. How a request described as lines (explain)
 * is read as the gateways would read it.
 */
export function headersAsNodeGivesThem(
  lines: Iterable<readonly [name: string, value: string]>,
): Record<string, string | string[]> {
  const byName = new Map<string, string[]>();
  for (const [name, value] of lines) {
    const lower = name.toLowerCase();
    const values = byName.get(lower);
    if (values === undefined) byName.set(lower, [value]);
    else values.push(value);
  }
  return Object.fromEntries(
    [...byName].map(([name, values]) => [
      name,
      name === 'set-cookie'
        ? values
        : FIRST_LINE_ONLY.has(name)
          ? values[0]!
          : values.join(name === 'cookie' ? '; ' : ', '),
    ]),
  );
}

/**
 * A list-valued field (Cache-Control, Vary, Connection, Pragma, X-Forwarded-For, …) as one
 * comma-separated string: several lines of a field are one list (RFC 9110 §5.3). Undefined when
 * absent or empty.
 */
export function headerList(value: HeaderValue): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value === '' ? undefined : value;
  if (typeof value === 'number') return String(value);
  const joined = value.filter((line) => line !== '').join(', ');
  return joined === '' ? undefined : joined;
}

/**
 * A field that must appear once (Authorization, X-API-Key, X-Request-Id, Host, …). Undefined when
 * absent, empty, or sent on several lines: a repeated singleton is ambiguous, and picking one of the
 * copies would let a client choose which one a later reader sees.
 */
export function singleHeader(value: HeaderValue): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value === '' ? undefined : value;
  if (typeof value === 'number') return String(value);
  return value.length === 1 && value[0] !== '' ? value[0] : undefined;
}

/**
 * The Cookie header as one string. Cookie pairs are separated by "; " (RFC 6265 §5.4), and that is
 * also how node joins several Cookie lines.
 */
export function cookieHeader(value: HeaderValue): string | undefined {
  if (value === undefined || typeof value === 'string' || typeof value === 'number') return headerList(value);
  const joined = value.filter((line) => line !== '').join('; ');
  return joined === '' ? undefined : joined;
}

/**
 * The value of cookie `name` in a Cookie header ("a=1; b=2"), without splitting the whole header. The
 * first pair of that name decides (an empty value is no value): gateways and explain read it alike.
 * Only spaces and tabs around the value are dropped: a UTF-8 client's `à` ends in byte 0xA0, which
 * node reads as U+00A0, whitespace to String.prototype.trim.
 */
export function cookieValue(header: string, name: string): string | undefined {
  let from = 0;
  while (from < header.length) {
    let end = header.indexOf(';', from);
    if (end < 0) end = header.length;
    let start = from;
    while (start < end && header.charCodeAt(start) === 32) start++;
    if (header.startsWith(name, start) && header.charCodeAt(start + name.length) === 61 /* = */) {
      let first = start + name.length + 1;
      let last = end;
      while (first < last && isSpaceOrTab(header.charCodeAt(first))) first++;
      while (last > first && isSpaceOrTab(header.charCodeAt(last - 1))) last--;
      return first === last ? undefined : header.slice(first, last);
    }
    from = end + 1;
  }
  return undefined;
}

/**
 * The cookies of a few names, read from one pass over a Cookie header: what cookieValue gives for
 * each name (the first pair of a name decides), without scanning the header once per name. A client
 * chooses the header (thousands of pairs), a route the names (a traffic split's keys).
 */
export class CookieNames {
  readonly #names: ReadonlySet<string>;
  /**
   * The names' lengths, each once, shortest first: only a pair with `=` after one of them is looked up,
   * the first such `=` (a name has none).
   */
  readonly #lengths: readonly number[];

  constructor(names: Iterable<string>) {
    this.#names = new Set(names);
    this.#lengths = [...new Set([...this.#names].map((name) => name.length))].sort((a, b) => a - b);
  }

  /** Each name's value in `header` (undefined: empty), for the names the header has. */
  valuesIn(header: string): Map<string, string | undefined> {
    const values = new Map<string, string | undefined>();
    const lengths = this.#lengths;
    let from = 0;
    while (from < header.length && values.size < this.#names.size) {
      let end = header.indexOf(';', from);
      if (end < 0) end = header.length;
      let start = from;
      while (start < end && header.charCodeAt(start) === 32) start++;
      for (let i = 0; i < lengths.length; i++) {
        const equals = start + lengths[i]!;
        // A name holds no `=` or `;`: the pair's first `=` ends it, within the pair.
        if (equals >= end || header.charCodeAt(equals) !== 61 /* = */) continue;
        const name = header.slice(start, equals);
        if (this.#names.has(name) && !values.has(name)) {
          let first = equals + 1;
          let last = end;
          while (first < last && isSpaceOrTab(header.charCodeAt(first))) first++;
          while (last > first && isSpaceOrTab(header.charCodeAt(last - 1))) last--;
          values.set(name, first === last ? undefined : header.slice(first, last));
        }
        break;
      }
      from = end + 1;
    }
    return values;
  }
}

function isSpaceOrTab(code: number): boolean {
  return code === 32 || code === 9;
}

/** The comma-separated tokens of a list-valued field, trimmed and lower-cased, empty ones dropped. */
export function headerTokens(value: HeaderValue): string[] {
  const list = headerList(value);
  if (list === undefined) return [];
  const tokens: string[] = [];
  for (const token of list.split(',')) {
    const trimmed = token.trim().toLowerCase();
    if (trimmed !== '') tokens.push(trimmed);
  }
  return tokens;
}
