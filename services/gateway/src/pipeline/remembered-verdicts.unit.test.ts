import { describe, expect, it } from 'vitest';
import { rememberVerdicts } from './remembered-verdicts.js';

describe('remembered verdicts', () => {
  it('decides once per value, and keeps at most the limit of the values a client chose', () => {
    const decided: string[] = [];
    const allowed = rememberVerdicts(
      (origin) => {
        decided.push(origin);
        return origin.endsWith('.example');
      },
      { entries: 3 },
    );
    expect([allowed('a.example'), allowed('b.evil'), allowed('a.example'), allowed('b.evil')]).toEqual([
      true,
      false,
      true,
      false,
    ]);
    expect(decided).toEqual(['a.example', 'b.evil']);
    // A client cycling through values cannot grow the memory: when full, it starts again.
    allowed('c.example');
    allowed('d.example');
    allowed('a.example');
    expect(decided).toEqual(['a.example', 'b.evil', 'c.example', 'd.example', 'a.example']);
  });

  it('never keeps a value longer than the length limit: a client cannot fill memory with long values', () => {
    const decided: string[] = [];
    const allowed = rememberVerdicts(
      (origin) => {
        decided.push(origin);
        return origin.endsWith('.example');
      },
      { valueLength: 20 },
    );
    const long = `https://${'a'.repeat(15_000)}.example`;
    expect([
      allowed(long),
      allowed(long),
      allowed('https://a.example'),
      allowed('https://a.example'),
    ]).toEqual([true, true, true, true]);
    expect(decided).toEqual([long, long, 'https://a.example']);
  });
});
