import { compilePattern } from '@vantageedge/shared/routing/route-matcher';
import { describe, expect, it } from 'vitest';
import { PATH_PATTERN_SYNTAX, pathPatternProblem } from './path-pattern.js';

/**
 * A path pattern the control plane accepts is one the gateway can read and that stays where it is
 * written: the gateway compiles it through the normalisation every request path goes through. Otherwise
 * it skips the route (an escape it cannot read) or serves it at another path (dot segments).
 */
describe('path patterns the gateway would skip or move', () => {
  it.each([
    ['/api/%zz', '%'],
    ['/api/%', '%'],
    ['/api/%4', '%'],
    ['/api/%00', 'NUL'],
    ['/api/%5C', 'backslash'],
    ['/api/%5c', 'backslash'],
    ['/x/../admin/*', '. or ..'],
    ['/a/./b', '. or ..'],
    ['/a/..', '. or ..'],
    ['/./*', '. or ..'],
    ['/a/%2E%2E/admin', '. or ..'],
    ['/a/%2e/b', '. or ..'],
    ['/a/..;x/b', '. or ..'],
    ['/a/%2e;/b', '. or ..'],
  ])('refuses %s', (pattern, said) => {
    const problem = pathPatternProblem(pattern);
    expect(problem).not.toBeNull();
    expect(problem).toContain(said);
  });

  // Regression: patterns the gateway had always served (an escape in lower case, an escaped unreserved
  // character) were refused, and so were a tenant's own exported documents and rollbacks holding them.
  it.each(['/caf%c3%a9/*', '/api/%41', '/api/%7e', '/api/%2D'])(
    'accepts %s, which the gateway reads as every request path spelled so',
    (pattern) => {
      expect(pathPatternProblem(pattern)).toBeNull();
      expect(() => compilePattern('r', pattern)).not.toThrow();
    },
  );

  it.each([
    '/',
    '/*',
    '/api/users/*',
    '/api/users/:id',
    '/a.b~c-d',
    '/a/.well-known/*',
    '/a/.../b',
    '/a/..b/c.',
    '/caf%C3%A9',
    '/with%20space',
    '/x%2Fy',
    "/s!$&'()+,;=@",
  ])('accepts %s, which the gateway compiles as written', (pattern) => {
    expect(pathPatternProblem(pattern)).toBeNull();
    expect(() => compilePattern('r', pattern)).not.toThrow();
  });

  it('describes the same syntax in /openapi.json', () => {
    const syntax = new RegExp(PATH_PATTERN_SYNTAX);
    const samples = [
      '/',
      '/*',
      '/api/users/:id/*',
      '/a/.well-known/*',
      '/a/.../b',
      '/caf%C3%A9',
      '/with%20space',
      '/x%2Fy',
      '/api/%zz',
      '/api/%',
      '/api/%00',
      '/api/%5C',
      '/api/%41',
      '/api/%7E',
      '/api/%2D',
      '/api/%2e',
      '/caf%c3%a9',
      '/x/../admin/*',
      '/a/./b',
      '/a/..',
      '/a//b',
      '/a/*/b',
      '/a/..;x/b',
      '/a/.;/b',
      '/a/...;x/b',
      '/a/%2e%2e%2e/b',
    ];
    for (const pattern of samples)
      expect(syntax.test(pattern), pattern).toBe(pathPatternProblem(pattern) === null);
  });

  it('allows exactly the escapes the control plane accepts', () => {
    const syntax = new RegExp(PATH_PATTERN_SYNTAX);
    for (let byte = 0; byte < 256; byte++) {
      for (const hex of new Set([
        byte.toString(16).padStart(2, '0'),
        byte.toString(16).padStart(2, '0').toUpperCase(),
      ])) {
        const pattern = `/a%${hex}`;
        expect(syntax.test(pattern), pattern).toBe(pathPatternProblem(pattern) === null);
      }
    }
  });
});
