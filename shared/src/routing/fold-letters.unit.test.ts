import { describe, expect, it } from 'vitest';
import { foldLetters } from './fold-letters.js';

describe('foldLetters', () => {
  it.each([
    ['/Api/ADMIN', '/api/admin'],
    ['/a%2Cb%20', '/a%2cb%20'],
    // é and É (escaped UTF-8) are one letter in either case.
    ['/%C3%A9t%C3%A9', '/%c3%a9t%c3%a9'],
    ['/%C3%89T%C3%89', '/%c3%a9t%c3%a9'],
    // Greek and Cyrillic capitals, a letter of four bytes (Deseret 𐐀 → 𐐨).
    ['/%CE%A3%D0%96', '/%cf%83%d0%b6'],
    ['/%F0%90%90%80', '/%f0%90%90%a8'],
    // The Kelvin sign is `k` to Java's equalsIgnoreCase.
    ['/%E2%84%AAeys', '/keys'],
    // ß upper-cases to SS, two letters: it stays.
    ['/Stra%C3%9Fe', '/stra%c3%9fe'],
  ])('%s → %s', (input, expected) => {
    expect(foldLetters(input)).toBe(expected);
  });

  it.each([
    ['/%C0%AE%C0%AE'], // overlong `.`
    ['/%C3'], // cut short
    ['/%C3%41'], // no continuation byte
    ['/%ED%A0%80'], // a surrogate
    ['/%F5%80%80%80'], // beyond U+10FFFF
    ['/%E9t%E9'], // latin1, not UTF-8
  ])('leaves %s (not UTF-8) as it is, hex in lower case', (input) => {
    expect(foldLetters(input)).toBe(input.toLowerCase());
  });

  it('is idempotent', () => {
    for (const path of ['/%C3%89T%C3%89', '/%E2%84%AAeys', '/%C4%B0x', '/%C5%BF']) {
      expect(foldLetters(foldLetters(path))).toBe(foldLetters(path));
    }
  });
});
