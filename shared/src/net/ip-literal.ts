/**
 * IP address literals read without regular expressions and without allocating: node:net's isIP
 * (a regular expression per family) costs a replica ≈ 1 µs per range, and a tenant's routes may carry
 * 200 allow + 200 deny ranges each. Accepts exactly what node:net's isIPv4 / isIPv6 accept (the
 * differential test in ip-literal.unit.test.ts compares them).
 */

/** Scratch for the groups of the IPv6 address being read (one at a time: JavaScript is single-threaded). */
const GROUPS = new Uint16Array(8);

/** Dotted-quad IPv4 → unsigned 32-bit number, or -1 when `text` is not exactly one (isIPv4). */
export function ipv4Number(text: string): number {
  return ipv4NumberIn(text, 0, text.length);
}

/** ipv4Number of `text[start..end)`, without slicing it. */
export function ipv4NumberIn(text: string, start: number, end: number): number {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const code = text.charCodeAt(i);
    if (code === 46) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (code >= 48 && code <= 57) {
      if (digits > 0 && part === 0) return -1; // leading zero: not a canonical address
      part = part * 10 + (code - 48);
      if (++digits > 3 || part > 255) return -1;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + part;
}

function hexDigit(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 97 && code <= 102) return code - 87;
  if (code >= 65 && code <= 70) return code - 55;
  return -1;
}

/**
 * The IPv6 address `text[start..end)` (no zone) → four 32-bit words in `out`, high word first; false
 * when it is not one. 1–4 hex digits per group, at most one `::` (standing for one group or more),
 * an IPv4 tail in the last 32 bits.
 */
export function ipv6WordsIn(text: string, start: number, end: number, out: Uint32Array): boolean {
  let i = start;
  // A leading colon only as part of `::`.
  if (end > start && text.charCodeAt(start) === 58) {
    if (end - start < 2 || text.charCodeAt(start + 1) !== 58) return false;
    i = start + 1;
  }
  let count = 0;
  let gap = -1;
  let value = 0;
  let digits = 0;
  let token = i;
  while (i < end) {
    const code = text.charCodeAt(i++);
    const digit = hexDigit(code);
    if (digit >= 0) {
      value = value * 16 + digit;
      if (++digits > 4) return false;
      continue;
    }
    if (code === 58) {
      token = i;
      if (digits === 0) {
        if (gap >= 0) return false;
        gap = count;
        continue;
      }
      if (i === end || count === 8) return false;
      GROUPS[count++] = value;
      value = 0;
      digits = 0;
      continue;
    }
    if (code === 46 && count <= 6) {
      const v4 = ipv4NumberIn(text, token, end);
      if (v4 < 0) return false;
      GROUPS[count++] = v4 >>> 16;
      GROUPS[count++] = v4 & 0xffff;
      digits = 0;
      break;
    }
    return false;
  }
  if (digits > 0) {
    if (count === 8) return false;
    GROUPS[count++] = value;
  }
  if (gap >= 0) {
    if (count === 8) return false;
    const moved = count - gap;
    for (let k = 1; k <= moved; k++) GROUPS[8 - k] = GROUPS[count - k]!;
    for (let k = gap; k < 8 - moved; k++) GROUPS[k] = 0;
    count = 8;
  }
  if (count !== 8) return false;
  for (let word = 0; word < 4; word++) out[word] = ((GROUPS[2 * word]! << 16) | GROUPS[2 * word + 1]!) >>> 0;
  return true;
}

/** A zone id as node:net's isIPv6 takes it after `%`: one or more of `0-9 a-z A-Z - . :`. */
function isZoneId(text: string, start: number, end: number): boolean {
  if (start >= end) return false;
  for (let i = start; i < end; i++) {
    const code = text.charCodeAt(i);
    const alphanumeric =
      (code >= 48 && code <= 57) || (code >= 97 && code <= 122) || (code >= 65 && code <= 90);
    if (!alphanumeric && code !== 45 && code !== 46 && code !== 58) return false;
  }
  return true;
}

/**
 * The IP address literal `text[start..end)` as node:net's isIP reads it: 4 (its value in `out[0]`),
 * 6 (its four words in `out`; a `%zone` is checked, then ignored) or 0.
 */
export function readIpLiteral(text: string, start: number, end: number, out: Uint32Array): 0 | 4 | 6 {
  const v4 = ipv4NumberIn(text, start, end);
  if (v4 >= 0) {
    out[0] = v4;
    return 4;
  }
  let zoneAt = text.indexOf('%', start);
  if (zoneAt < 0 || zoneAt >= end) zoneAt = end;
  else if (!isZoneId(text, zoneAt + 1, end)) return 0;
  return ipv6WordsIn(text, start, zoneAt, out) ? 6 : 0;
}

const SCRATCH = new Uint32Array(4);

/** node:net's isIP(text), without its regular expressions. */
export function ipVersion(text: string): 0 | 4 | 6 {
  return readIpLiteral(text, 0, text.length, SCRATCH);
}

/** A CIDR range as read: its family and prefix length; its address is in the `out` of readCidr. */
export interface CidrRead {
  readonly family: 'ipv4' | 'ipv6';
  readonly prefix: number;
  /** Where the address ends in the text (before `/`, or its length). */
  readonly networkEnd: number;
}

/**
 * `10.0.0.0/8`, `fe80::/10`, or a single address (/32, /128) → its family and prefix, its address in
 * `out` (readIpLiteral); undefined when malformed: the address as isIP reads it, then 1–3 decimal
 * digits up to 32 or 128.
 */
export function readCidr(text: string, out: Uint32Array): CidrRead | undefined {
  const slash = text.indexOf('/');
  const networkEnd = slash < 0 ? text.length : slash;
  const version = readIpLiteral(text, 0, networkEnd, out);
  if (version === 0) return undefined;
  const family = version === 4 ? 'ipv4' : 'ipv6';
  const max = version === 4 ? 32 : 128;
  if (slash < 0) return { family, prefix: max, networkEnd };
  const digits = text.length - slash - 1;
  if (digits < 1 || digits > 3) return undefined;
  let prefix = 0;
  for (let i = slash + 1; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 48 || code > 57) return undefined;
    prefix = prefix * 10 + (code - 48);
  }
  return prefix > max ? undefined : { family, prefix, networkEnd };
}
