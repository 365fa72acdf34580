import { describe, expect, it } from 'vitest';
import { rememberVerdicts } from './remembered-verdicts.js';

describe('remembered verdicts', () => {
  it('decides once per value, and keeps at most the limit of the values a client chose', () => {
    const decided: string[] = [];
    const allowed = rememberVerdicts((origin) => {
      decided.push(origin);
      return origin.endsWith('.example');
    }, 3);
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
});
