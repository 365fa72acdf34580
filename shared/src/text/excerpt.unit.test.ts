import { describe, expect, it } from 'vitest';
import { storableExcerpt } from './excerpt.js';

const pairSplit = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

describe('a storable excerpt', () => {
  it('keeps a short text as it is', () => {
    expect(storableExcerpt('connection refused', 300)).toBe('connection refused');
  });

  it('cuts a long one to the length, with an ellipsis, never through a surrogate pair', () => {
    for (let at = 1; at < 12; at++) {
      const text = `${'x'.repeat(at)}${'😀'.repeat(10)}`;
      const cut = storableExcerpt(text, 10);
      expect(cut.length).toBeLessThanOrEqual(10);
      expect(cut.endsWith('…')).toBe(true);
      expect(pairSplit.test(cut), cut).toBe(false);
    }
  });

  it('replaces NUL and unpaired surrogates, which PostgreSQL refuses', () => {
    expect(storableExcerpt('a\u0000b\uD83Dc', 300)).toBe('a\uFFFDb\uFFFDc');
  });
});
