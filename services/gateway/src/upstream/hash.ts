const FNV_OFFSET = 0x811c9dc5;

/**
 * 32-bit FNV-1a over UTF-16 code units, finished with murmur3's fmix32 avalanche. Plain FNV-1a
 * clusters strings that differ only in their last characters ("target#1", "target#2"), which would
 * bunch a target's virtual nodes together on the ring; the finaliser spreads them. No allocation.
 */
export function hash32(text: string): number {
  return finish(fnv1a(FNV_OFFSET, text));
}

/**
 * hash32(`${prefix}${n}`) for a non-negative integer n, without building the string: `state` is
 * fnv1aPrefix(prefix), shared by every n (a hash ring's points are `<id>#0`, `<id>#1`, …).
 */
export function hash32WithNumber(state: number, n: number): number {
  let h = state;
  let unit = 1;
  while (unit * 10 <= n) unit *= 10;
  for (; unit >= 1; unit /= 10) {
    h ^= 48 + (Math.floor(n / unit) % 10);
    h = Math.imul(h, 0x01000193);
  }
  return finish(h);
}

/** hash32(`${prefix}${text}`), without building the string: `state` is fnv1aPrefix(prefix). */
export function hash32WithText(state: number, text: string): number {
  return finish(fnv1a(state, text));
}

/** The FNV-1a state after `prefix` (for hash32WithNumber and hash32WithText). */
export function fnv1aPrefix(prefix: string): number {
  return fnv1a(FNV_OFFSET, prefix);
}

function fnv1a(state: number, text: string): number {
  let h = state;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h;
}

function finish(state: number): number {
  let h = state;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
