import { describe, expect, it } from 'vitest';
import { withoutSpacesAndTabsAtEdges } from './field-value-edges.js';

describe('withoutSpacesAndTabsAtEdges', () => {
  it('takes the spaces and tabs at the edges only, as an HTTP/1.1 parser does', () => {
    expect(withoutSpacesAndTabsAtEdges(" \tdefault-src 'self' \t")).toBe("default-src 'self'");
    expect(withoutSpacesAndTabsAtEdges('a \t b')).toBe('a \t b');
    expect(withoutSpacesAndTabsAtEdges('\u00a0a\n')).toBe('\u00a0a\n');
    expect(withoutSpacesAndTabsAtEdges(' \t ')).toBe('');
  });

  // Every value an HTTP/2 client is sent went through /^[\t ]+|[\t ]+$/g, which backtracks over a run of
  // spaces inside a value from each of them: an origin's 16 KiB line held the event loop for 0.7 s.
  it('reads a long run of spaces inside a value in linear time', () => {
    const value = `a${' '.repeat(160_000)}b`;
    const started = performance.now();
    expect(withoutSpacesAndTabsAtEdges(value)).toBe(value);
    expect(performance.now() - started).toBeLessThan(500);
  });
});
