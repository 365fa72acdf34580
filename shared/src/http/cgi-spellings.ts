import { sentHeader } from './header-values.js';

type RequestHeaders = Readonly<Record<string, string | string[] | undefined>>;

/**
 * A request header's name as CGI-style origins read it: PHP, Rack and WSGI servers put both X-Real-IP
 * and X_Real_IP in HTTP_X_REAL_IP, so to them a `_` in a name is a `-`. So is a `.` to PHP, which reads
 * one in a variable name as `_`, behind the servers that pass such a name on (Caddy, FrankenPHP,
 * lighttpd, PHP's own): X.Real.IP is HTTP_X_REAL_IP there too.
 */
export function asOriginsReadIt(name: string): string {
  return hasCgiSeparator(name) ? name.replace(CGI_SEPARATORS, '-') : name;
}

const CGI_SEPARATORS = /[_.]/g;

/**
 * Every name CGI-style origins read as `name` (lower case, with `-` alone: asOriginsReadIt's reading),
 * `name` included: each of its `-` as `-`, `_` or `.`, 3^dashes names (asked of names with few). For a
 * set compiled once that a request's names are looked up in as they come, instead of each name being
 * read on every request.
 */
export function spellingsReadAs(name: string): string[] {
  let spellings = [''];
  let from = 0;
  for (let dash = name.indexOf('-'); dash >= 0; dash = name.indexOf('-', dash + 1)) {
    const part = name.slice(from, dash);
    spellings = spellings.flatMap((head) => ['-', '_', '.'].map((separator) => head + part + separator));
    from = dash + 1;
  }
  const rest = name.slice(from);
  return spellings.map((head) => head + rest);
}

/** Whether a name has a character CGI-style origins read as `-` (`_` or `.`). */
function hasCgiSeparator(name: string): boolean {
  return name.includes('_') || name.includes('.');
}

/**
 * The request's header names spelled with `_` or `.`, by their spelling with `-`; null when it has none
 * (nearly every request). Built once per headers object: a response may vary on thousands of names, and
 * each is then looked up without another pass over the request's headers.
 */
const cgiSpellings = new WeakMap<RequestHeaders, Map<string, string[]> | null>();

function cgiSpellingsOf(headers: RequestHeaders): Map<string, string[]> | null {
  const known = cgiSpellings.get(headers);
  if (known !== undefined) return known;
  let byDashed: Map<string, string[]> | null = null;
  for (const sent in headers) {
    if (!hasCgiSeparator(sent) || !Object.hasOwn(headers, sent) || headers[sent] === undefined) continue;
    byDashed ??= new Map();
    const canonical = asOriginsReadIt(sent);
    const spellings = byDashed.get(canonical);
    if (spellings === undefined) byDashed.set(canonical, [sent]);
    else spellings.push(sent);
  }
  cgiSpellings.set(headers, byDashed);
  return byDashed;
}

const NO_SPELLINGS: readonly string[] = [];

/**
 * The names the request sent (lower case) that CGI-style origins read as the field `name` (lower case),
 * `name` itself left out: its spellings with `_` or `.` for `-`, and with `-` for `_` or `.`. Empty for
 * nearly every request.
 */
export function otherSpellingsSent(headers: RequestHeaders, name: string): readonly string[] {
  const canonical = asOriginsReadIt(name);
  const underscored = cgiSpellingsOf(headers)?.get(canonical);
  const dashedSent = canonical !== name && sentHeader(headers, canonical) !== undefined;
  if (underscored === undefined && !dashedSent) return NO_SPELLINGS;
  const spellings = new Set<string>();
  // The spellings were listed when first asked for: a route's transform may have removed some since.
  if (underscored !== undefined)
    for (const sent of underscored) if (sentHeader(headers, sent) !== undefined) spellings.add(sent);
  if (dashedSent) spellings.add(canonical);
  spellings.delete(name);
  return spellings.size === 0 ? NO_SPELLINGS : [...spellings];
}

/**
 * A request field (`name` in lower case) as CGI-style origins read it. PHP, Rack and WSGI servers put
 * `Accept-Language` and `Accept_Language` in one variable (HTTP_ACCEPT_LANGUAGE), and the gateway passes
 * both on, so to such an origin every spelling with `_` (or `.`: asOriginsReadIt) for `-` is the field. Returns the field's own
 * value when no other spelling was sent (nearly every request); otherwise every spelling sent with its
 * value, sorted by spelling, each as `<spelling>\n<value>\n`: no header value holds a line break, so no
 * single value reads as several spellings.
 */
export function fieldAsOriginsReadIt(headers: RequestHeaders, name: string): string | string[] | undefined {
  const own = sentHeader(headers, name);
  const others = otherSpellingsSent(headers, name);
  if (others.length === 0) return own;
  const spellings = new Set(others);
  if (own !== undefined) spellings.add(name);
  let read = '';
  for (const spelling of [...spellings].sort()) {
    const value = headers[spelling]!;
    read += `${spelling}\n${Array.isArray(value) ? value.join(', ') : value}\n`;
  }
  return read;
}

/** What PHP rewrites in a cookie's name: URL-encoding, ` ` and `.`, and an index (`[…]`). */
const PHP_REWRITTEN = /[%+ .[]/;

/**
 * A request cookie's name as PHP reads it (the key of `$_COOKIE`): URL-decoded (`+` is a space), up to
 * a NUL, leading spaces dropped, each ` ` or `.` before the first `[` read as `_`, and then either the
 * name before an index (`a[x]` is an array under `a`) or, when no `]` closes it, that `[` read as `_` too
 * and the rest as it is. So `wordpress.logged_in`, `wordpress logged_in` and `wordpress[logged_in` are all
 * `wordpress_logged_in` to a PHP origin.
 */
export function cookieNameAsPhpReadsIt(sent: string): string {
  if (!PHP_REWRITTEN.test(sent)) return sent;
  const decoded = upToNul(phpUrlDecode(sent)).replace(/^ +/, '');
  let read = '';
  for (let at = 0; at < decoded.length; at++) {
    const char = decoded[at]!;
    if (char === ' ' || char === '.') read += '_';
    else if (char === '[') return decoded.includes(']', at + 1) ? read : `${read}_${decoded.slice(at + 1)}`;
    else read += char;
  }
  return read;
}

/** PHP reads a decoded name as a C string, up to its first NUL. */
function upToNul(name: string): string {
  const nul = name.indexOf('\0');
  return nul < 0 ? name : name.slice(0, nul);
}

/** PHP's urldecode: `+` is a space, `%` and two hex digits a byte; any other `%` stays as it is. */
function phpUrlDecode(value: string): string {
  return value
    .replaceAll('+', ' ')
    .replace(/%([0-9a-fA-F]{2})/g, (_match, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}
