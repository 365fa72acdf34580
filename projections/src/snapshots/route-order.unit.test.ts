import { describe, expect, it } from 'vitest';
import { compareSpecificity } from './route-order.js';

describe('route specificity', () => {
  const sorted = (patterns: string[]) => [...patterns].sort(compareSpecificity);

  it('puts literals before params before prefixes before wildcards, segment by segment', () => {
    expect(sorted(['/a/*', '/a/b*', '/a/:id', '/a/b'])).toEqual(['/a/b', '/a/:id', '/a/b*', '/a/*']);
  });

  it('puts a longer concrete pattern first, but an exact end before a trailing wildcard', () => {
    expect(sorted(['/a', '/a/:id/c'])).toEqual(['/a/:id/c', '/a']);
    expect(sorted(['/a/*', '/a'])).toEqual(['/a', '/a/*']);
  });
});
