import { describe, expect, it } from 'vitest';
import { compactJwsRefusal, isCanonicalBase64url, readCompactJws } from './compact-jws-refusal.js';

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

describe('readCompactJws', () => {
  it('decodes the header and the claims of a strict token, as jose reads them', () => {
    const jws = readCompactJws(token('{"alg":"RS256","kid":"k"}', '{"sub":"a","n":[1,{"b":2}]}'));
    expect(jws).toEqual({
      refusal: undefined,
      header: { alg: 'RS256', kid: 'k' },
      claims: { sub: 'a', n: [1, { b: 2 }] },
    });
    expect(readCompactJws(token('\ufeff{"alg":"RS256"}', '\ufeff{"sub":"a"}')).claims).toEqual({ sub: 'a' });
  });

  it('gives no claims where a JWT library reads none: not JSON, not an object, not UTF-8', () => {
    const notUtf8 = Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]).toString('base64url');
    for (const payload of [part('{"sub":'), part('[]'), part('null'), part('"a"'), notUtf8, '']) {
      const jws = readCompactJws(`${part('{"alg":"RS256"}')}.${payload}.c2ln`);
      expect(jws.claims, payload).toBeUndefined();
      expect(jws.header).toEqual({ alg: 'RS256' });
    }
  });

  it('refuses as compactJwsRefusal does, decoding nothing before the parts are base64url', () => {
    for (const text of ['a.b', `${part('{"alg":"RS256"}')}=.${part('{}')}.c2ln`, token('{"crit":[]}')]) {
      expect(readCompactJws(text).refusal).toBe(compactJwsRefusal(text));
    }
    expect(readCompactJws(`${part('{}')}.${part('{}')}=.c2ln`)).toEqual({
      refusal: "the bearer token's payload is not base64url",
      header: undefined,
      claims: undefined,
    });
    expect(readCompactJws(token('{"alg":"RS256"}', '{"sub":"a","sub":"b"}'))).toMatchObject({
      refusal: 'the bearer token names payload.sub more than once',
      claims: { sub: 'b' },
    });
  });
});
