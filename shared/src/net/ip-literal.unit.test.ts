import { isIP } from 'node:net';
import { describe, expect, it } from 'vitest';
import { parseCidr } from '../domain/route-policies.js';
import { ipVersion, readCidr } from './ip-literal.js';

/** A seeded generator (mulberry32): the same strings on every run. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Strings near IP literals: groups of 0–5 hex digits (either case) joined by `:`, `::` or `:::`, dotted
 * tails with numbers up to 300 (leading zeros too), zones of legal and illegal characters, stray
 * characters anywhere.
 */
function nearIpLiterals(count: number, seed: number): string[] {
  const next = random(seed);
  const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]!;
  const hex = '0123456789abcdefABCDEF';
  const group = () => Array.from({ length: pick([0, 1, 2, 3, 4, 4, 4, 5]) }, () => pick([...hex])).join('');
  const octet = () =>
    next() < 0.9 ? String(Math.floor(next() * 256)) : pick(['0', '00', '01', '256', '300', '']);
  const ipv4 = () => Array.from({ length: pick([3, 4, 4, 4, 4, 4, 5]) }, octet).join('.');
  const strays = ['', '', '', '', ' ', 'g', 'G', '.', '/', '%', '-', '\n', 'ä', '[', ']', '::', ':'];
  const texts: string[] = [];
  for (let n = 0; n < count; n++) {
    let text = '';
    if (next() < 0.2) {
      text = ipv4();
    } else {
      const groups = Math.floor(next() * 10);
      for (let g = 0; g < groups; g++) {
        if (g > 0 || next() < 0.2) text += pick([':', ':', ':', ':', '::', ':::']);
        text += group();
      }
      if (next() < 0.3) text += pick([':', '::']) + ipv4();
      if (next() < 0.1) text += pick(['::', ':']);
    }
    if (next() < 0.2) text += `%${pick(['', 'eth0', 'en-1.2:3', 'a_b', '%', 'x y', '0', 'Z'])}`;
    if (next() < 0.1) {
      const at = Math.floor(next() * (text.length + 1));
      text = text.slice(0, at) + pick(strays) + text.slice(at);
    }
    texts.push(text);
  }
  return texts;
}

describe('ipVersion (node:net isIP without regular expressions)', () => {
  it('answers what node:net isIP answers for 200,000 strings near IP literals', () => {
    const texts = nearIpLiterals(200_000, 20261204);
    const answers = { 0: 0, 4: 0, 6: 0 };
    for (const text of texts) {
      const expected = isIP(text);
      answers[expected as 0 | 4 | 6]++;
      if (ipVersion(text) !== expected) expect(ipVersion(text), JSON.stringify(text)).toBe(expected);
    }
    // The generated strings reach every answer often enough to mean something.
    expect(answers[4]).toBeGreaterThan(5_000);
    expect(answers[6]).toBeGreaterThan(5_000);
  });

  it('answers isIP for the edges of the IPv6 grammar', () => {
    for (const text of [
      '::',
      '::1',
      ':::',
      ':1::',
      '1::',
      '1:',
      '1:2:3:4:5:6:7::',
      '1:2:3:4:5:6:7::8',
      '1:2:3:4:5:6:7:8',
      '1:2:3:4:5:6:7:8:9',
      '1::2:3:4:5:6:7',
      '1::2:3:4:5:6:7:8',
      '1:2:3:4:5:6:1.2.3.4',
      '1:2:3:4:5::1.2.3.4',
      '1:2:3:4:5:6::1.2.3.4',
      '::ffff:1.2.3.4',
      '::ffff:01.2.3.4',
      '::1.2.3.4:5',
      '1.2.3.4::',
      '12345::',
      'fe80::1%eth0',
      'fe80::1%',
      'fe80::1%eth0%1',
      'fe80::1%en-1.2:3',
      'fe80::1%a_b',
      '1.2.3.4%eth0',
      '0.0.0.0',
      '255.255.255.255',
      '256.1.1.1',
      '1.2.3',
      '1.2.3.4.',
      '',
    ])
      expect(ipVersion(text), JSON.stringify(text)).toBe(isIP(text));
  });
});

describe('readCidr', () => {
  it('takes the ranges parseCidr took with isIP, with the same prefix', () => {
    const next = random(7);
    const prefixes = [
      '',
      '/0',
      '/8',
      '/32',
      '/33',
      '/64',
      '/128',
      '/129',
      '/',
      '/01',
      '/1234',
      '/x',
      '/-1',
      '/ 8',
    ];
    const words = new Uint32Array(4);
    for (const address of nearIpLiterals(50_000, 11)) {
      const text = address + prefixes[Math.floor(next() * prefixes.length)];
      const slash = text.indexOf('/');
      const network = slash < 0 ? text : text.slice(0, slash);
      const version = isIP(network);
      const max = version === 4 ? 32 : 128;
      const prefixText = text.slice(slash + 1);
      const expected =
        version === 0 || (slash >= 0 && (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max))
          ? undefined
          : { prefix: slash < 0 ? max : Number(prefixText), family: version === 4 ? 'ipv4' : 'ipv6' };
      const read = readCidr(text, words);
      const actual = read && { prefix: read.prefix, family: read.family };
      if (JSON.stringify(actual) !== JSON.stringify(expected)) expect(actual, text).toEqual(expected);
      expect(parseCidr(text)?.network, text).toBe(expected && network);
    }
  });
});
