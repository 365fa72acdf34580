import { describe, expect, it } from 'vitest';
import { StoredSizes } from './stored-sizes.js';

describe('StoredSizes', () => {
  it('forgets the least recently stored tenant beyond its bound, and knows the others', () => {
    const sizes = new StoredSizes(2);
    sizes.record('a', 3_000_000);
    sizes.record('b', 10);
    sizes.record('a', 3_100_000);
    sizes.record('c', 0);
    expect([sizes.of('a'), sizes.of('b'), sizes.of('c')]).toEqual([3_100_000, undefined, 0]);
  });
});
