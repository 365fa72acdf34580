/**
 * A normalised path (or a pattern's segment) with its letters in one case, as origins that compare
 * letters in any case read it: Express and Spring compare the path as sent, ASCII letters in any case;
 * ASP.NET and IIS decode it first, so `%C3%89` (É) is `%C3%A9` (é) to them. ASCII letters (the hex of
 * escapes too) are lower-cased; a letter beyond ASCII, which a normalised path carries as escaped
 * UTF-8, is replaced by the lower case of its upper case (`É`, `é` → `é`; `K` (Kelvin) → `k`, which
 * Java's equalsIgnoreCase takes for `k`), escaped again with lower-case hex. A letter whose case form is
 * several characters (`ß` → `SS`) stays. Escapes that are not UTF-8 stay as they are.
 */
export function foldLetters(path: string): string {
  const lower = path.toLowerCase();
  // A UTF-8 sequence beyond ASCII starts with a byte from C2 to F4.
  if (!/%[c-f]/.test(lower)) return lower;
  let folded = '';
  let i = 0;
  while (i < lower.length) {
    const sequence = lower.charCodeAt(i) === 37 ? utf8SequenceAt(lower, i) : undefined;
    if (sequence === undefined) {
      folded += lower[i];
      i++;
      continue;
    }
    folded += escapedFolded(sequence.codePoint);
    i = sequence.end;
  }
  return folded;
}

/** The byte escaped at `at` (lower-case hex), or -1. */
function hexByteAt(text: string, at: number): number {
  if (text.charCodeAt(at) !== 37) return -1;
  const hex = text.slice(at + 1, at + 3);
  return /^[0-9a-f]{2}$/.test(hex) ? Number.parseInt(hex, 16) : -1;
}

/** The code point of the escaped UTF-8 sequence at `at` (shortest form, no surrogate), if there is one. */
function utf8SequenceAt(text: string, at: number): { codePoint: number; end: number } | undefined {
  const lead = hexByteAt(text, at);
  let length: number;
  let codePoint: number;
  if (lead >= 0xc2 && lead <= 0xdf) [length, codePoint] = [2, lead & 0x1f];
  else if (lead >= 0xe0 && lead <= 0xef) [length, codePoint] = [3, lead & 0x0f];
  else if (lead >= 0xf0 && lead <= 0xf4) [length, codePoint] = [4, lead & 0x07];
  else return undefined;
  for (let n = 1; n < length; n++) {
    const byte = hexByteAt(text, at + 3 * n);
    if (byte < 0x80 || byte > 0xbf) return undefined;
    codePoint = (codePoint << 6) | (byte & 0x3f);
  }
  const shortest = length === 2 || (length === 3 ? codePoint >= 0x800 : codePoint >= 0x10000);
  if (!shortest || (codePoint >= 0xd800 && codePoint <= 0xdfff) || codePoint > 0x10ffff) return undefined;
  return { codePoint, end: at + 3 * length };
}

const UTF8 = new TextEncoder();

/** The character's case form (see foldLetters), escaped; an ASCII letter as it is. */
function escapedFolded(codePoint: number): string {
  const character = String.fromCodePoint(codePoint);
  const upper = singleCharacter(character.toUpperCase(), character);
  const folded = singleCharacter(upper.toLowerCase(), upper);
  if (folded.codePointAt(0)! < 0x80) return folded;
  let escaped = '';
  for (const byte of UTF8.encode(folded)) escaped += `%${byte.toString(16).padStart(2, '0')}`;
  return escaped;
}

/** `mapped` when it is one character, else `fallback`. */
function singleCharacter(mapped: string, fallback: string): string {
  return [...mapped].length === 1 ? mapped : fallback;
}
