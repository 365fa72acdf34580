/**
 * A query's name or value (no `&`, `=` or leading `?` in it) decoded as node's URLSearchParams decodes
 * it: `+` a space, `%XX` a byte, the bytes read as UTF-8. node tries decodeURIComponent first and,
 * when that throws (an escape that is not UTF-8, a `%` with no two hex digits after it), decodes the
 * bytes instead (querystring.unescape): the URIError, a stack captured per name, costs ≈ 8 µs, so a
 * query of 940 names such as `%FF1` held a replica for ≈ 7 ms. Here the escapes are checked first and
 * nothing is thrown; the result is the same.
 */
export function formDecoded(text: string): string {
  // URLSearchParams takes a USVString: a lone surrogate is U+FFFD (String.prototype.toWellFormed).
  const wellFormed = SURROGATE.test(text) ? text.replace(LONE_SURROGATE, '\ufffd') : text;
  const spaced = wellFormed.includes('+') ? wellFormed.replaceAll('+', ' ') : wellFormed;
  const escapes = escapesOf(spaced);
  if (escapes === NO_ESCAPE) return spaced; // as it is, even a `%` of no escape
  if (escapes === UTF8_ESCAPES) {
    try {
      return decodeURIComponent(spaced);
    } catch {
      // As node does: the bytes.
    }
  }
  return bytesDecoded(spaced);
}

/**
 * node's querystring.unescapeBuffer(text).toString(): each `%XX` a byte, any other character its low
 * byte, the bytes read as UTF-8 (U+FFFD for what is not).
 */
function bytesDecoded(text: string): string {
  const bytes = Buffer.allocUnsafe(text.length);
  let length = 0;
  for (let i = 0; i < text.length; i++) {
    const byte = escapedByte(text, i);
    if (byte < 0) bytes[length++] = text.charCodeAt(i) & 0xff;
    else {
      bytes[length++] = byte;
      i += 2;
    }
  }
  return bytes.toString('utf8', 0, length);
}

const SURROGATE = /[\ud800-\udfff]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

const NO_ESCAPE = 0;
const UTF8_ESCAPES = 1;
const OTHER_ESCAPES = 2;

/**
 * NO_ESCAPE: no `%XX` in `text`; UTF8_ESCAPES: decodeURIComponent takes it (each `%` two hex digits,
 * the escaped bytes UTF-8, RFC 3629); else OTHER_ESCAPES.
 */
function escapesOf(text: string): number {
  let escapes = NO_ESCAPE;
  let valid = true;
  for (let i = text.indexOf('%'); i >= 0; i = text.indexOf('%', i + 1)) {
    const lead = escapedByte(text, i);
    if (lead < 0) {
      valid = false;
      continue;
    }
    escapes = UTF8_ESCAPES;
    i += 2;
    if (lead < 0x80 || !valid) continue;
    let more: number;
    let low = 0x80;
    let high = 0xbf;
    if (lead >= 0xc2 && lead <= 0xdf) more = 1;
    else if (lead >= 0xe0 && lead <= 0xef) {
      more = 2;
      if (lead === 0xe0)
        low = 0xa0; // overlong
      else if (lead === 0xed) high = 0x9f; // a surrogate
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      more = 3;
      if (lead === 0xf0)
        low = 0x90; // overlong
      else if (lead === 0xf4) high = 0x8f; // past U+10FFFF
    } else {
      valid = false;
      continue;
    }
    for (let k = 0; k < more; k++) {
      const byte = escapedByte(text, i + 1);
      if (byte < low || byte > high) {
        valid = false;
        break;
      }
      low = 0x80;
      high = 0xbf;
      i += 3;
    }
  }
  return escapes === NO_ESCAPE ? NO_ESCAPE : valid ? UTF8_ESCAPES : OTHER_ESCAPES;
}

/** The byte `%XX` at `at` escapes; -1 when there is none. */
function escapedByte(text: string, at: number): number {
  if (text.charCodeAt(at) !== 37 || at + 2 >= text.length) return -1;
  const high = hexValue(text.charCodeAt(at + 1));
  const low = hexValue(text.charCodeAt(at + 2));
  return high < 0 || low < 0 ? -1 : high * 16 + low;
}

function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  const letter = code | 0x20;
  return letter >= 97 && letter <= 102 ? letter - 87 : -1;
}

/**
 * The [name, value] pairs of a query (without its `?`) as `new URLSearchParams(query)` reads them, each
 * decoded by formDecoded: pieces between `&`, empty ones skipped, split at their first `=`. A `?` the
 * query begins with is dropped (as URLSearchParams drops it).
 */
export function formPairs(query: string): Array<[string, string]> {
  return rawQueryPairs(query.charCodeAt(0) === 63 /* ? */ ? query.slice(1) : query);
}

/**
 * The [name, value] pairs of what follows a URL's `?` as origins read them (PHP, Rack, qs, Go, Python,
 * a URL's searchParams): as formPairs, but a `?` it begins with is part of the first name (`??a=1` is
 * `?a`, not `a`).
 */
export function rawQueryPairs(raw: string): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  if (raw === '') return pairs;
  for (const piece of raw.split('&')) {
    if (piece === '') continue;
    const equals = piece.indexOf('=');
    pairs.push(
      equals < 0
        ? [formDecoded(piece), '']
        : [formDecoded(piece.slice(0, equals)), formDecoded(piece.slice(equals + 1))],
    );
  }
  return pairs;
}
