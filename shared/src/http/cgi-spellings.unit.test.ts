import { describe, expect, it } from 'vitest';
import { asOriginsReadIt, spellingsReadAs } from './cgi-spellings.js';

describe('the spellings CGI-style origins read as one header name', () => {
  it('lists every name that reads as it, itself included, and no other', () => {
    const spellings = spellingsReadAs('x-real-ip');
    expect(spellings).toHaveLength(9);
    expect(new Set(spellings).size).toBe(9);
    expect(spellings).toEqual(expect.arrayContaining(['x-real-ip', 'x_real_ip', 'x.real.ip', 'x.real_ip']));
    for (const spelling of spellings) expect(asOriginsReadIt(spelling)).toBe('x-real-ip');
  });

  it('is the name alone when it has no dash', () => {
    expect(spellingsReadAs('host')).toEqual(['host']);
    expect(spellingsReadAs('-')).toEqual(['-', '_', '.']);
  });
});
