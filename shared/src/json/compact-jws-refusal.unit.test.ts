import { describe, expect, it } from 'vitest';
import { compactJwsRefusal, isCanonicalBase64url } from './compact-jws-refusal.js';

const part = (text: string) => Buffer.from(text).toString('base64url');
const token = (header: string, payload = '{"sub":"a"}', signature = 'c2ln') =>
  `${part(header)}.${part(payload)}.${signature}`;

describe('isCanonicalBase64url', () => {
  it('takes unpadded base64url with its unused bits zero', () => {
    for (const text of ['', 'YQ', 'YWI', 'YWJj', 'a-_9']) expect(isCanonicalBase64url(text), text).toBe(true);
  });

  it('refuses padding, the base64 alphabet, whitespace, unused bits set and impossible lengths', () => {
    for (const text of ['YQ==', 'YWI=', 'a+/9', 'YW Jj', 'YW\tJj', 'YWJj\n', 'YR', 'YWJ', 'YWJjZ']) {
      expect(isCanonicalBase64url(text), JSON.stringify(text)).toBe(false);
    }
  });
});

describe('compactJwsRefusal', () => {
  it('finds nothing in a strict token', () => {
    expect(compactJwsRefusal(token('{"alg":"RS256","kid":"k"}'))).toBeUndefined();
  });

  it('refuses any crit, listed, empty or not an array', () => {
    for (const crit of ['["exp"]', '[]', '"exp"', 'null']) {
      expect(compactJwsRefusal(token(`{"alg":"RS256","crit":${crit}}`))).toMatch(/crit/);
    }
  });

  it('refuses a part that is not canonical base64url, naming it', () => {
    expect(compactJwsRefusal(`${part('{"alg":"RS256"}')}=.${part('{}')}.c2ln`)).toMatch(/header/);
    expect(compactJwsRefusal(token('{"alg":"RS256"}', '{}', 'c2l+'))).toMatch(/signature/);
    expect(compactJwsRefusal(token('{"alg":"RS256"}', '{}', 'c2lr='))).toMatch(/signature/);
  });

  it('refuses a member named twice and what is not three parts', () => {
    expect(compactJwsRefusal(token('{"alg":"RS256","alg":"none"}'))).toMatch(/header\.alg more than once/);
    for (const text of ['', 'abc', 'a.b', 'a.b.c.d.e']) expect(compactJwsRefusal(text)).toMatch(/not a JWT/);
  });
});
