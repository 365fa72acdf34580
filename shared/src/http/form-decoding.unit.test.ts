import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formDecoded, formPairs } from './form-decoding.js';

/** A name as node's URLSearchParams reads it. */
function searchParamsName(text: string): string {
  for (const [name] of new URLSearchParams(text)) return name;
  return '';
}

const PIECES = [
  '%',
  '+',
  'a',
  'Z',
  '0',
  '9',
  'f',
  'F',
  'e',
  'u',
  '\u00e9',
  '\u00ff',
  '\u20ac',
  '\ud83d\ude00',
  '\ud800',
];
const BYTES = [
  0x00, 0x2b, 0x41, 0x7f, 0x80, 0x8f, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5,
  0xff,
];
const percentEscape = fc.tuple(fc.constantFrom(...BYTES), fc.boolean()).map(([byte, upper]) => {
  const hex = byte.toString(16).padStart(2, '0');
  return `%${upper ? hex.toUpperCase() : hex}`;
});

describe('formDecoded', () => {
  it('decodes as URLSearchParams does, UTF-8 or not', () => {
    for (const text of [
      'a+b%2B',
      '%C3%A9',
      '%FF',
      '%E2%82',
      '%zz',
      '%',
      'a%4',
      '%ED%A0%80',
      '%F0%9F%98%80',
      '\u00e9%FF',
    ]) {
      expect(formDecoded(text), text).toBe(searchParamsName(text));
    }
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constantFrom(...PIECES), percentEscape), { maxLength: 12 }),
        (parts) => {
          const text = parts.join('');
          expect(formDecoded(text)).toBe(searchParamsName(text));
        },
      ),
      { numRuns: 20_000 },
    );
  });

  it('splits a query into pairs as URLSearchParams does', () => {
    for (const query of ['', '?', '??a=1', 'a=1&&b', '=x&a==b&%FF=%E2%82', 'a=1;b=2&c']) {
      expect(formPairs(query), query).toEqual([...new URLSearchParams(query)]);
    }
    const part = fc.oneof(fc.constantFrom(...PIECES, '&', '=', '?', ';'), percentEscape);
    fc.assert(
      fc.property(fc.array(part, { maxLength: 16 }), (parts) => {
        const query = parts.join('');
        expect(formPairs(query)).toEqual([...new URLSearchParams(query)]);
      }),
      { numRuns: 20_000 },
    );
  });
});
