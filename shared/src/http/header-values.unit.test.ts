import { describe, expect, it } from 'vitest';
import {
  CookieNames,
  cookieHeader,
  cookieValue,
  headerList,
  headerTokens,
  singleHeader,
} from './header-values.js';

describe('header values in every shape they arrive in', () => {
  it('list fields: several lines are one comma-separated list', () => {
    expect(headerList(undefined)).toBeUndefined();
    expect(headerList('')).toBeUndefined();
    expect(headerList('max-age=5')).toBe('max-age=5');
    expect(headerList(['public', '', 'max-age=5'])).toBe('public, max-age=5');
    expect(headerList([])).toBeUndefined();
    expect(headerList(12)).toBe('12');
  });

  it('singleton fields: a repeated or empty one counts as absent', () => {
    expect(singleHeader('Bearer a')).toBe('Bearer a');
    expect(singleHeader(['only'])).toBe('only');
    expect(singleHeader(['first', 'second'])).toBeUndefined();
    expect(singleHeader([''])).toBeUndefined();
    expect(singleHeader('')).toBeUndefined();
    expect(singleHeader(undefined)).toBeUndefined();
  });

  it('cookies: several Cookie lines are joined with "; "', () => {
    expect(cookieHeader(['a=1', 'b=2'])).toBe('a=1; b=2');
    expect(cookieHeader('a=1; b=2')).toBe('a=1; b=2');
    expect(cookieHeader(undefined)).toBeUndefined();
  });

  it('tokens: trimmed, lower-cased, empty ones dropped, across lines', () => {
    expect(headerTokens(['Keep-Alive, X-Hop', ' ,upgrade'])).toEqual(['keep-alive', 'x-hop', 'upgrade']);
    expect(headerTokens(undefined)).toEqual([]);
  });
});

describe('CookieNames', () => {
  it('reads each name as cookieValue does, in one pass', () => {
    const names = ['a', 'ab', 'session', 'x.y', 'lang'];
    const headers = [
      'a=1; ab=2; session=s',
      'ab=2;a=1',
      'a=; a=2; ab= 3 ; session=\tx\t',
      'aa=1; a b=2; session',
      'a=b=c; ab=x=y; =z; session==1',
      ' lang=voil\u00c3\u00a0; x.y=1;;; ab',
      'session=1; session=2',
      '',
      'no-pairs-here',
    ];
    const reader = new CookieNames(names);
    for (const header of headers) {
      const values = reader.valuesIn(header);
      for (const name of names)
        expect(values.get(name), `${name} in ${header}`).toBe(cookieValue(header, name));
    }
  });
});
