import { ipv4Number, ipv4NumberIn, ipv6WordsIn, readCidr } from '../net/ip-literal.js';

const MAPPED_IPV4 = '::ffff:';

/** Scratch for the address being looked up (one lookup at a time: JavaScript is single-threaded). */
const ADDRESS = new Uint32Array(4);

/**
 * A list of CIDR ranges compiled once per rule set into sorted, merged, disjoint ranges in typed arrays,
 * looked up by binary search without allocating. Everything is on the V8 heap (no node:net BlockList,
 * whose native ranges the GC neither sees nor hurries to free).
 *
 * - IPv4 addresses (also an IPv4-mapped IPv6 address written `::ffff:a.b.c.d`, as a dual-stack socket
 *   reports it) are looked up among the IPv4 ranges, which also hold the part of every IPv6 range that
 *   lies in the IPv4-mapped block `::ffff:0:0/96` (so `::ffff:192.0.2.0/120` or `::/0` covers IPv4
 *   clients, as node:net's BlockList decided).
 * - Other IPv6 addresses (any spelling node:net reads: case, leading zeros, `::`, an embedded IPv4
 *   tail, a `%zone`, which is ignored) are looked up among the IPv6 ranges, each bound stored as four
 *   32-bit words (the two 64-bit halves, high word first).
 *
 * Entries that do not parse are skipped (the control plane refuses them). Answers are node:net's for
 * every address it reads, except one quirk not copied: node:net cuts a `%zone`-qualified address at 39
 * characters before parsing it (a long non-canonical spelling with a zone), which the gateway never
 * passes (its client addresses are canonical).
 */
export class AddressMatcher {
  /** First and last address of each IPv4 range (unsigned 32-bit, inclusive), sorted, disjoint. */
  readonly #v4First: Uint32Array;
  readonly #v4Last: Uint32Array;
  /** The same for IPv6: four words per bound. */
  readonly #v6First: Uint32Array;
  readonly #v6Last: Uint32Array;
  /** Entries compiled (0: matches nothing). */
  readonly size: number;

  constructor(cidrs: readonly string[]) {
    const v4: Array<[number, number]> = [];
    const v6: Array<[Words, Words]> = [];
    let entries = 0;
    for (const text of cidrs) {
      // One pass over the text: what parseCidr accepts, the address read into ADDRESS.
      const cidr = readCidr(text, ADDRESS);
      if (cidr === undefined) continue;
      if (cidr.family === 'ipv4') {
        const mask = prefixMask(cidr.prefix);
        const first = (ADDRESS[0]! & mask) >>> 0;
        v4.push([first, (first | ~mask) >>> 0]);
        entries++;
      } else {
        const first: Words = [0, 0, 0, 0];
        const last: Words = [0, 0, 0, 0];
        for (let word = 0; word < 4; word++) {
          const mask = prefixMask(Math.min(32, Math.max(0, cidr.prefix - 32 * word)));
          first[word] = (ADDRESS[word]! & mask) >>> 0;
          last[word] = (first[word]! | ~mask) >>> 0;
        }
        v6.push([first, last]);
        entries++;
        // The part of the range in ::ffff:0:0/96 is what it covers of IPv4 (clients are IPv4 there).
        const low = compareWords(first, MAPPED_FIRST) > 0 ? first : MAPPED_FIRST;
        const high = compareWords(last, MAPPED_LAST) < 0 ? last : MAPPED_LAST;
        if (compareWords(low, high) <= 0) v4.push([low[3], high[3]]);
      }
    }
    this.size = entries;

    v4.sort((a, b) => a[0] - b[0]);
    const v4Merged: Array<[number, number]> = [];
    for (const range of v4) {
      const previous = v4Merged[v4Merged.length - 1];
      if (previous !== undefined && range[0] <= previous[1] + 1)
        previous[1] = Math.max(previous[1], range[1]);
      else v4Merged.push([range[0], range[1]]);
    }
    this.#v4First = Uint32Array.from(v4Merged, (range) => range[0]);
    this.#v4Last = Uint32Array.from(v4Merged, (range) => range[1]);

    v6.sort((a, b) => compareWords(a[0], b[0]));
    const v6Merged: Array<[Words, Words]> = [];
    for (const [first, last] of v6) {
      const previous = v6Merged[v6Merged.length - 1];
      if (previous !== undefined && adjoins(previous[1], first)) {
        if (compareWords(last, previous[1]) > 0) previous[1] = last;
      } else {
        v6Merged.push([first, last]);
      }
    }
    this.#v6First = new Uint32Array(v6Merged.length * 4);
    this.#v6Last = new Uint32Array(v6Merged.length * 4);
    v6Merged.forEach(([first, last], i) => {
      this.#v6First.set(first, i * 4);
      this.#v6Last.set(last, i * 4);
    });
  }

  /** Does a range contain `address` (as the gateway resolved the client: dotted IPv4 or IPv6 text)? */
  has(address: string): boolean {
    let v4 = ipv4Number(address);
    if (v4 < 0 && address.startsWith(MAPPED_IPV4))
      v4 = ipv4NumberIn(address, MAPPED_IPV4.length, address.length);
    if (v4 >= 0) {
      const firsts = this.#v4First;
      // The last range starting at or before v4.
      let low = 0;
      let high = firsts.length;
      while (low < high) {
        const middle = (low + high) >>> 1;
        if (firsts[middle]! <= v4) low = middle + 1;
        else high = middle;
      }
      return low > 0 && v4 <= this.#v4Last[low - 1]!;
    }
    const firsts = this.#v6First;
    if (firsts.length === 0 || address.indexOf(':') < 0 || !parseIpv6(address, ADDRESS)) return false;
    let low = 0;
    let high = firsts.length >>> 2;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (compareAt(firsts, middle << 2, ADDRESS) <= 0) low = middle + 1;
      else high = middle;
    }
    return low > 0 && compareAt(this.#v6Last, (low - 1) << 2, ADDRESS) >= 0;
  }
}

type Words = [number, number, number, number];

const MAPPED_FIRST: Words = [0, 0, 0xffff, 0];
const MAPPED_LAST: Words = [0, 0, 0xffff, 0xffffffff];

/** The top `bits` of 32 set (0 ≤ bits ≤ 32). */
function prefixMask(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

function compareWords(a: Words, b: Words): number {
  for (let word = 0; word < 4; word++) if (a[word] !== b[word]) return a[word]! - b[word]!;
  return 0;
}

/** The 128-bit value at `words[offset..offset+4)` compared with `address`. */
function compareAt(words: Uint32Array, offset: number, address: Uint32Array): number {
  for (let word = 0; word < 4; word++) {
    const difference = words[offset + word]! - address[word]!;
    if (difference !== 0) return difference;
  }
  return 0;
}

/** Does a range starting at `first` overlap or directly follow one ending at `last`? */
function adjoins(last: Words, first: Words): boolean {
  if (compareWords(first, last) <= 0) return true;
  // first === last + 1
  const next: Words = [...last];
  for (let word = 3; word >= 0; word--) {
    if (next[word] === 0xffffffff) {
      next[word] = 0;
    } else {
      next[word]!++;
      return compareWords(first, next) === 0;
    }
  }
  return false; // last was the very last address: nothing follows it
}

/** IPv6 text (a `%zone` ignored) → four 32-bit words in `out`; false when it is not an address. */
function parseIpv6(text: string, out: Uint32Array): boolean {
  const zoneAt = text.indexOf('%');
  return ipv6WordsIn(text, 0, zoneAt < 0 ? text.length : zoneAt, out);
}
