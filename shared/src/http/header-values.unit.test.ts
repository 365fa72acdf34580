import { describe, expect, it } from 'vitest';
import { cookieHeader, headerList, headerTokens, singleHeader } from './header-values.js';

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
