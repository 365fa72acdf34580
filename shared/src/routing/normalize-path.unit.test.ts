import { describe, expect, it } from 'vitest';
import { MAX_QUERY_PAIRS, normalizePath, queryBytesEncoded, queryRefusal } from './normalize-path.js';

const ok = (path: string) => ({ ok: true, path });

describe('normalizePath', () => {
  it.each([
    ['/', '/'],
    ['/api/users/42', '/api/users/42'],
    ['/api/public/../admin/x', '/api/admin/x'],
    ['/api/./public/./x', '/api/public/x'],
    ['/api//public///x', '/api/public/x'],
    ['/../../etc/passwd', '/etc/passwd'],
    ['/a/b/..', '/a/'],
    ['/a/b/.', '/a/b/'],
    ['/a/', '/a/'],
    ['/%61%70%69/users', '/api/users'],
    ['/api/%2e%2e/admin', '/admin'],
    ['/api/%2E%2E/%2e/admin', '/admin'],
    ['/api/.%2e/admin', '/admin'],
    ['/a%7e/%5fb', '/a~/_b'],
    ['/q%3fx/%25', '/q%3Fx/%25'],
    ['/caf\u00e9', '/caf%E9'],
    // Parameters on an ordinary segment stay (an origin may read them, `;jsessionid=…`).
    ['/a;x=1/b;', '/a;x=1/b;'],
    ['/a/...;x/b', '/a/...;x/b'],
  ])('%s → %s', (input, expected) => {
    expect(normalizePath(input)).toEqual(ok(expected));
  });

  it.each([
    ['/api/public%2f..%2fadmin', 'encoded_slash'],
    ['/api/%2F', 'encoded_slash'],
    ['/api/%zz', 'bad_escape'],
    ['/api/%4', 'bad_escape'],
    ['/api/%00', 'forbidden_character'],
    ['/api\\..\\admin', 'forbidden_character'],
    ['/api/%5c..%5cadmin', 'forbidden_character'],
    // Regression: characters node's parser lets through but RFC 3986 does not allow in a path (an
    // origin reads `#` as the start of a fragment: /api/admin#/users reached /api/admin).
    ['/api/admin#/users', 'forbidden_character'],
    ['/a"b', 'forbidden_character'],
    ['/a<b>', 'forbidden_character'],
    ['/a[b]', 'forbidden_character'],
    ['/a^b', 'forbidden_character'],
    ['/a`b', 'forbidden_character'],
    ['/a{b}', 'forbidden_character'],
    ['/a|b', 'forbidden_character'],
    ['/a b', 'forbidden_character'],
    ['/a\tb', 'forbidden_character'],
    // Regression: a dot segment with parameters is `..` to Tomcat, Spring and Jetty, which drop them:
    // /files/..;/..;/secret reached the origin's /secret through a route (and rewrite) for /files/*.
    ['/files/..;/..;/secret', 'dot_segment_parameter'],
    ['/files/..;x=1/secret', 'dot_segment_parameter'],
    ['/files/.;/x', 'dot_segment_parameter'],
    ['/files/%2e%2e;/x', 'dot_segment_parameter'],
    ['/files/.%2E;', 'dot_segment_parameter'],
    ['/files/..;', 'dot_segment_parameter'],
    ['http://evil/x', 'not_origin_form'],
    ['*', 'not_origin_form'],
  ])('rejects %s (%s)', (input, reason) => {
    expect(normalizePath(input)).toEqual({ ok: false, reason });
  });

  it('keeps an encoded slash inside its segment when configured to', () => {
    expect(normalizePath('/files/a%2fb/../c', 'keep')).toEqual(ok('/files/c'));
    expect(normalizePath('/files/a%2fb', 'keep')).toEqual(ok('/files/a%2Fb'));
  });
});

describe('queryRefusal', () => {
  it.each(['?a=1&b=2', "?q=it's;x=(1)", '?items[]=1&f={x}|y^z`', '?a=%23', ''])('accepts %s', (query) => {
    expect(queryRefusal(query)).toBeUndefined();
  });

  it.each(['?q=#admin', '?q="x"', '?q=<script>', '?a b', '?a\u0001'])('refuses %s', (query) => {
    expect(queryRefusal(query)).toContain('percent-encoded');
  });

  it('refuses exactly the controls, space, DEL, `"`, `#`, `<` and `>`', () => {
    const refused = (code: number) => code <= 32 || code === 127 || [34, 35, 60, 62].includes(code);
    const codes = [...Array(0x180).keys(), 0x2028, 0x3000, 0xd800, 0xdc00, 0xfeff, 0xffff];
    for (const code of codes) {
      const query = `?a=1&b${String.fromCharCode(code)}=2`;
      expect(queryRefusal(query) !== undefined, code.toString(16)).toBe(refused(code));
    }
  });

  it('takes as many pairs as origins read with the route’s own, and refuses one more, empty ones counted', () => {
    expect(MAX_QUERY_PAIRS).toBe(940);
    expect(queryRefusal(`?${Array(MAX_QUERY_PAIRS).fill('a=1').join('&')}`)).toBeUndefined();
    for (const query of [
      `?${Array(MAX_QUERY_PAIRS + 1)
        .fill('a=1')
        .join('&')}`,
      `?${Array(MAX_QUERY_PAIRS + 1)
        .fill('a=1')
        .join(';')}`,
      `?${'&'.repeat(MAX_QUERY_PAIRS)}`,
    ])
      expect(queryRefusal(query)).toContain(`more than ${MAX_QUERY_PAIRS} parameters`);
  });
});

describe('queryBytesEncoded', () => {
  it('percent-encodes each character past ASCII as the byte it came as, leaving the rest as sent', () => {
    expect(queryBytesEncoded('?q=caf\u00c3\u00a9&n=%41')).toBe('?q=caf%C3%A9&n=%41');
    expect(queryBytesEncoded('?q=\u00ff\u0080')).toBe('?q=%FF%80');
    const plain = '?a=1&items[]=2';
    expect(queryBytesEncoded(plain)).toBe(plain);
  });

  it('encodes a character past Latin-1 (text an admin typed into explain) as its UTF-8 bytes', () => {
    expect(queryBytesEncoded('?q=\u20ac')).toBe('?q=%E2%82%AC');
  });
});
