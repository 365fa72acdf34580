import { describe, expect, it } from 'vitest';
import { entityTagListMatches } from './entity-tags.js';

describe('entityTagListMatches (If-None-Match, weak comparison)', () => {
  it('matches the tag strong or weak, one of a list, and *', () => {
    for (const list of ['"3"', 'W/"3"', '"1", "3"', '"1",W/"3"', ' * ']) {
      expect(entityTagListMatches(list, '"3"'), list).toBe(true);
    }
    expect(entityTagListMatches('"3"', 'W/"3"')).toBe(true);
  });

  it('matches nothing else: another tag, a bare or unterminated value, a tag holding a comma', () => {
    for (const list of ['"4"', '"30"', '3', '"3', 'W/"1", x, "3"', '"3,4"']) {
      expect(entityTagListMatches(list, '"3"'), list).toBe(false);
    }
  });
});
