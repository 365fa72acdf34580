import { describe, expect, it } from 'vitest';
import { missingScope } from './auth-rules.js';

/**
 * A route may require 50 scopes, and a token from a tenant's own OIDC issuer may carry thousands (as
 * many as its header holds). Looking each required scope up in the token's list cost a replica's event
 * loop ≈260 µs per request (50 × 2,000 comparisons); a verified token's identity is kept while it is
 * cached, so its scopes are indexed once.
 */

/** The granted list as a token's identity holds it, counting how many of its elements are read. */
function countedScopes(scopes: readonly string[]): { list: readonly string[]; reads: () => number } {
  let reads = 0;
  const list = new Proxy([...scopes], {
    get(target, property, receiver) {
      if (typeof property === 'string' && /^\d+$/.test(property)) reads++;
      return Reflect.get(target, property, receiver);
    },
  });
  return { list, reads: () => reads };
}

describe('required scopes against a long list of granted ones', () => {
  const granted = Array.from({ length: 2000 }, (_, i) => `orders:${i}`);
  const required = Array.from({ length: 50 }, (_, i) => `orders:${1950 + i}`);

  it('reads a token’s scopes about once, not once per required scope and request', () => {
    const { list, reads } = countedScopes(granted);
    for (let request = 0; request < 10; request++) expect(missingScope(required, list)).toBeUndefined();
    expect(reads()).toBeLessThanOrEqual(2 * granted.length);
  });

  it('names the first required scope the token lacks', () => {
    const { list } = countedScopes(granted);
    expect(missingScope([...required, 'admin', 'orders:1'], list)).toBe('admin');
    expect(missingScope(['orders:7', 'orders:2000'], list)).toBe('orders:2000');
    expect(missingScope(['a', 'b'], ['b', 'a'])).toBeUndefined();
    expect(missingScope(['a', 'c'], ['b', 'a'])).toBe('c');
    expect(missingScope([], [])).toBeUndefined();
  });
});
