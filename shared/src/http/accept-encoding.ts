import { otherSpellingsSent } from './cgi-spellings.js';
import { sentHeader } from './header-values.js';

/**
 * The content codings that select an encoded response's variant in the cache, as bits: those of RFC
 * 9110 §8.4.1, compress (and `x-compress`), deflate and gzip (and `x-gzip`), and br and zstd, which
 * browsers ask for. A client's Accept-Encoding is read as which of them it accepts: 32 sets and the
 * variant of clients that sent none (ENCODING_VARIANTS), whatever it spells or adds, so a URL varying on
 * Accept-Encoding alone has a bounded number of variants, and its Vary cap leaves room for every one
 * (the gateway's variantCap). A response in another coding (one of the origin's own) is not stored: its
 * clients could not be told apart.
 */
const CODING_BITS: ReadonlyMap<string, number> = new Map([
  ['br', 1],
  ['compress', 2],
  ['x-compress', 2],
  ['deflate', 4],
  ['gzip', 8],
  ['x-gzip', 8],
  ['zstd', 16],
]);

const EVERY_CODING = 31;

/** How many variants Accept-Encoding selects: each set of codings, and a request that sent none. */
export const ENCODING_VARIANTS = EVERY_CODING + 2;

/** The sorted names of each set, by its bits. */
const SET_NAMES: readonly string[] = Array.from({ length: EVERY_CODING + 1 }, (_, bits) =>
  ['br', 'compress', 'deflate', 'gzip', 'zstd'].filter((_, at) => (bits & (1 << at)) !== 0).join(','),
);

/** `br,gzip`: the sorted names of a set of codings, as part of a key. */
export function codingSetName(bits: number): string {
  return SET_NAMES[bits & EVERY_CODING]!;
}

/**
 * The codings a Content-Encoding list applies, as bits, or null when it names a coding other than those
 * (`identity`, which applies none, aside).
 */
export function contentCodings(list: string): number | null {
  let applied = 0;
  for (const item of list.split(',')) {
    const name = item.trim().toLowerCase();
    if (name === '' || name === 'identity') continue;
    const bit = CODING_BITS.get(name);
    if (bit === undefined) return null;
    applied |= bit;
  }
  return applied;
}

/** A weight (RFC 9110 §12.4.2: 0 to 1, at most three decimals); above zero when it has a digit 1–9. */
const WEIGHT = /^q=(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/i;
const NON_ZERO = /[1-9]/;

function isPositiveWeight(parameters: string): boolean {
  return WEIGHT.test(parameters) && NON_ZERO.test(parameters);
}

/**
 * Which of br, compress, deflate, gzip and zstd an Accept-Encoding value (a client's lines joined by
 * commas) accepts, as bits (RFC 9110 §12.5.3): a coding listed with a weight above zero, and through `*`
 * those not listed; a weight of 0 excludes. Order, spacing, case, weights above 0 and other codings do
 * not count. Read so the set is never larger than the client's: a coding listed more than once is accepted only if every
 * entry accepts it, and an entry whose weight is not a valid one, or that carries another parameter,
 * accepts nothing.
 */
export function acceptedCodings(value: string): number {
  let listed = 0;
  let refused = 0;
  let star: boolean | undefined;
  for (const item of value.split(',')) {
    const semicolon = item.indexOf(';');
    const name = (semicolon < 0 ? item : item.slice(0, semicolon)).trim().toLowerCase();
    if (name === '') continue;
    const accepts = semicolon < 0 || isPositiveWeight(item.slice(semicolon + 1).trim());
    if (name === '*') {
      star = star !== false && accepts;
      continue;
    }
    const bit = CODING_BITS.get(name) ?? 0;
    listed |= bit;
    if (!accepts) refused |= bit;
  }
  const accepted = listed & ~refused;
  return star === true ? accepted | (EVERY_CODING & ~listed) : accepted;
}

/**
 * The codings a request accepts (acceptedCodings), undefined when it sent no Accept-Encoding. Every
 * spelling a CGI-style origin reads as the field counts (`Accept_Encoding` too, otherSpellingsSent): a
 * coding is in the set only when each of them accepts it, whichever the origin reads.
 */
export function requestAcceptedCodings(
  headers: Readonly<Record<string, string | string[] | undefined>>,
): number | undefined {
  let accepted: number | undefined;
  const own = sentHeader(headers, 'accept-encoding');
  if (own !== undefined) accepted = acceptedCodings(Array.isArray(own) ? own.join(',') : own);
  for (const spelling of otherSpellingsSent(headers, 'accept-encoding')) {
    const value = headers[spelling]!;
    accepted = (accepted ?? EVERY_CODING) & acceptedCodings(Array.isArray(value) ? value.join(',') : value);
  }
  return accepted;
}
