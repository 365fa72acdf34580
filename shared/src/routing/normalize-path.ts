import { QUERY_TRANSFORM_MAX_NAMES } from '../domain/route-policies.js';
import { percentEncodedBytes } from './percent-encoded-bytes.js';

/**
 * Path normalisation, run on every request before route matching and used for forwarding, so the
 * gateway and the origin always agree on which path was requested: `/api/public/../admin/x` is
 * matched (and forwarded) as `/api/admin/x` and can never match a public route.
 *
 * Steps (RFC 3986 §6.2.2): percent-decode unreserved characters (A-Z a-z 0-9 - . _ ~), upper-case
 * the hex of every other escape, percent-encode bytes outside ASCII, merge duplicate slashes, then
 * remove `.` and `..` segments (`..` above the root stays at the root).
 * Rejected: escapes that are not two hex digits, encoded NUL, control characters, backslashes (some
 * origins treat them as slashes), every other ASCII character RFC 3986 does not allow in a path
 * (`#` — an origin reads the rest as a fragment —, `"`, `<`, `>`, `[`, `]`, `^`, `` ` ``, `{`, `|`, `}`:
 * node's parser lets them through, a client must percent-encode them), and — unless `encodedSlashes`
 * is 'keep' — `%2F` (some origins decode it into a separator, which would re-open the traversal the
 * gateway just closed), and a dot segment with `;` parameters (`..;`, `.;x`, also spelled `%2e%2e;`):
 * Tomcat, Spring and Jetty drop the parameters and read `..;` as `..`, so `/files/..;/admin` would
 * reach the origin's `/admin` through a route for `/files/*`, and out of a rewrite's target prefix.
 */

export type EncodedSlashPolicy = 'reject' | 'keep';

export type NormalizedPath =
  | { ok: true; path: string }
  | {
      ok: false;
      reason:
        | 'not_origin_form'
        | 'bad_escape'
        | 'forbidden_character'
        | 'encoded_slash'
        | 'dot_segment_parameter';
    };

const HEX = '0123456789ABCDEF';

/** ASCII characters RFC 3986 never allows unencoded in a request target (besides controls and space). */
const NOT_IN_REQUEST_TARGET = '"#<>[\\]^`{|}';

/** 1 for ASCII codes allowed unencoded in a path (pchar and `/`, plus `%` which starts an escape). */
const PATH_CHARACTER = new Uint8Array(128);
for (let code = 33; code < 127; code++) PATH_CHARACTER[code] = 1;
for (const character of NOT_IN_REQUEST_TARGET) PATH_CHARACTER[character.charCodeAt(0)] = 0;

function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48; // 0-9
  if (code >= 65 && code <= 70) return code - 55; // A-F
  if (code >= 97 && code <= 102) return code - 87; // a-f
  return -1;
}

function isUnreserved(code: number): boolean {
  return (
    (code >= 65 && code <= 90) ||
    (code >= 97 && code <= 122) ||
    (code >= 48 && code <= 57) ||
    code === 45 || // -
    code === 46 || // .
    code === 95 || // _
    code === 126 // ~
  );
}

/** `rawPath` is the request target without its query string (the part of req.url before `?`). */
export function normalizePath(
  rawPath: string,
  encodedSlashes: EncodedSlashPolicy = 'reject',
): NormalizedPath {
  if (rawPath.charCodeAt(0) !== 47) return { ok: false, reason: 'not_origin_form' };
  // Fast path: the common clean path needs no rewriting at all.
  if (isAlreadyNormal(rawPath)) return { ok: true, path: rawPath };

  const segments: string[] = [];
  let segment = '';
  const length = rawPath.length;
  for (let i = 1; i <= length; i++) {
    const code = i < length ? rawPath.charCodeAt(i) : 47;
    if (code === 47) {
      if (isDotSegmentWithParameters(segment)) return { ok: false, reason: 'dot_segment_parameter' };
      pushSegment(segments, segment, i === length);
      segment = '';
      continue;
    }
    if (code === 37) {
      const high = hexValue(rawPath.charCodeAt(i + 1));
      const low = hexValue(rawPath.charCodeAt(i + 2));
      if (high < 0 || low < 0) return { ok: false, reason: 'bad_escape' };
      const byte = high * 16 + low;
      if (byte === 0) return { ok: false, reason: 'forbidden_character' };
      if (byte === 47 && encodedSlashes === 'reject') return { ok: false, reason: 'encoded_slash' };
      if (byte === 92) return { ok: false, reason: 'forbidden_character' };
      segment += isUnreserved(byte) ? String.fromCharCode(byte) : `%${HEX[high]}${HEX[low]}`;
      i += 2;
      continue;
    }
    if (code < 128 && PATH_CHARACTER[code] === 0) return { ok: false, reason: 'forbidden_character' };
    if (code > 127) {
      // node's parser hands us bytes as latin1 characters; re-encode them.
      if (code > 255) return { ok: false, reason: 'forbidden_character' };
      segment += `%${HEX[code >> 4]}${HEX[code & 15]}`;
      continue;
    }
    segment += rawPath[i];
  }
  return { ok: true, path: `/${segments.join('/')}` };
}

/** `.;…` or `..;…`: a dot segment to an origin that drops `;` parameters. */
function isDotSegmentWithParameters(segment: string): boolean {
  if (segment.charCodeAt(0) !== 46) return false;
  const semicolon = segment.indexOf(';');
  return semicolon === 1 || (semicolon === 2 && segment.charCodeAt(1) === 46);
}

/** Applies one segment; `last` keeps a trailing slash (`/a/` stays `/a/`, `/a/..` becomes `/`). */
function pushSegment(segments: string[], segment: string, last: boolean): void {
  if (segment === '.') {
    if (last) segments.push('');
    return;
  }
  if (segment === '..') {
    segments.pop();
    if (last) segments.push('');
    return;
  }
  if (segment === '') {
    // Duplicate slashes collapse; a trailing slash is kept as an empty last segment.
    if (last && segments[segments.length - 1] !== '') segments.push('');
    return;
  }
  if (segments[segments.length - 1] === '') segments.pop();
  segments.push(segment);
}

/** True when the path has no escapes, dot segments, duplicate slashes or odd characters. */
function isAlreadyNormal(path: string): boolean {
  let previous = 47;
  for (let i = 1; i < path.length; i++) {
    const code = path.charCodeAt(i);
    if (code === 37 || code >= 127 || PATH_CHARACTER[code] === 0) return false;
    if (code === 47 && previous === 47) return false;
    if (code === 46 && previous === 47) {
      // ".", "..", "./" or "../" segment, or one with parameters (".;", "..;")
      const next = path.charCodeAt(i + 1);
      if (Number.isNaN(next) || next === 47 || next === 59) return false;
      if (next === 46) {
        const after = path.charCodeAt(i + 2);
        if (Number.isNaN(after) || after === 47 || after === 59) return false;
      }
    }
    previous = code;
  }
  return true;
}

/**
 * The most pairs a query may carry, counted at every `&` and `;` (empty ones too). PHP
 * (max_input_vars), node's querystring (Express), qs and Tomcat read the first 1,000 pairs and drop the
 * rest, qs and node counting empty ones: a parameter past them — one a route's condition reads, or
 * one the route's query transform writes (at most 2 × QUERY_TRANSFORM_MAX_NAMES pairs more) — would be
 * one the gateway reads and the origin does not. Counting stops the parsing of a query a client made
 * of thousands of pairs.
 */
export const MAX_QUERY_PAIRS = 1000 - 2 * QUERY_TRANSFORM_MAX_NAMES;

const UNENCODED_CHARACTER = 'the query string contains a character that must be percent-encoded';
const TOO_MANY_PAIRS = `the query string has more than ${MAX_QUERY_PAIRS} parameters (pairs separated by & or ;)`;

/**
 * Why a query string (with its `?`) is refused (400 `invalid_query`); undefined when it is not. The
 * query as an origin will read it: `#` would end it (the rest is a fragment to the origin but part of
 * the cache key here) and `"`, `<`, `>` are never sent unencoded by browsers. `[`, `]`, `{`, `}`, `|`,
 * `^` and `` ` `` are accepted here although RFC 3986 reserves them, because browsers send them
 * unencoded in queries (`?items[]=1`). Nor may it have more pairs than origins read (MAX_QUERY_PAIRS).
 */
export function queryRefusal(query: string): string | undefined {
  if (UNENCODED_IN_QUERY.test(query)) return UNENCODED_CHARACTER;
  // Each separator is one character: a shorter query has too few to count.
  if (query.length < MAX_QUERY_PAIRS) return undefined;
  let separators = 0;
  for (let i = 0; i < query.length; i++) {
    const code = query.charCodeAt(i);
    if (code === 38 || code === 59) separators++;
  }
  return separators >= MAX_QUERY_PAIRS ? TOO_MANY_PAIRS : undefined;
}

const PAST_ASCII = /[\x80-\uffff]/;
const EVERY_PAST_ASCII = /[\x80-\uffff]/g;

/**
 * The query as the origin is sent it: each character past ASCII percent-encoded. HTTP/1.1's parser
 * refuses such a byte in a request target; an HTTP/2 `:path` carries it (curl and scripts send a URL as
 * typed), and written raw into the origin's HTTP/1.1 request line it was refused by node's and Tomcat's
 * parsers (a bare 400, the pooled connection closed) and read by nginx. Encoded, the origin, the route's
 * query conditions and the cache read the same bytes as UTF-8, as a browser would have sent them.
 */
export function queryBytesEncoded(query: string): string {
  return PAST_ASCII.test(query) ? query.replace(EVERY_PAST_ASCII, percentEncodedBytes) : query;
}

/** Controls, space, DEL, `"`, `#`, `<`, `>`: one native scan, a third of a loop over the characters. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the controls are what it looks for
const UNENCODED_IN_QUERY = /[\x00-\x20\x7f"#<>]/;
