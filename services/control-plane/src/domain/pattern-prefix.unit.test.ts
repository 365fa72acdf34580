import { describe, expect, it } from 'vitest';
import { patternPathsCanStartWith } from './pattern-prefix.js';

describe('patternPathsCanStartWith', () => {
  it.each([
    ['/api/*', '/api', true],
    ['/api/*', '/api/', true],
    ['/api/*', '/api/v1/x', true],
    ['/api', '/api', true],
    ['/users/:id/*', '/users/7', true],
    ['/*', '/anything/at/all', true],
    ['/%7Euser/*', '/~user', true],
    ['/~user/*', '/%7euser', true],
    ['/api/*', '/', true],
    // A pattern recorded with a trailing `abc*` segment (older releases) takes any segment starting so.
    ['/files/v*', '/files/v2/x', true],
    ['/api/*', '/v1', false],
    ['/api/*', '/API', false],
    ['/api/*', '/ap', false],
    ['/api', '/api/v1', false],
    ['/users/:id', '/users/7/orders', false],
    ['/', '/api', false],
    ['/files/v*', '/files/w2', false],
  ])('%s with %s: %s', (pattern, prefix, expected) => {
    expect(patternPathsCanStartWith(pattern, prefix)).toBe(expected);
  });
});
