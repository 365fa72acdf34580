import { describe, expect, it } from 'vitest';
import { TokenCache } from './token-cache.js';

const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;
const identity = (scopes: number) => ({
  kind: 'user' as const,
  userId: `user_${'x'.repeat(2_000)}`,
  scopes: Array.from({ length: scopes }, (_, i) => `scope:${i}`),
});

/**
 * Regression: the cache was bounded in entries only, and a tenant's identity provider can mint tokens
 * of several KB with a long `sub` and hundreds of scopes: 10,000 of them kept about 280 MB per replica.
 */
describe('TokenCache', () => {
  it('keeps verified tokens within its byte bound, forgetting the least recently used first', () => {
    const cache = new TokenCache(10_000, 1_000_000);
    const tokens = Array.from({ length: 1_000 }, (_, i) => `${i}.${'t'.repeat(7_000)}`);
    for (const token of tokens)
      cache.set(token, { identity: identity(500), verifiedBy: 'clerk' }, inAnHour());
    expect(cache.bytes).toBeLessThanOrEqual(1_000_000);
    expect(cache.get(tokens[0]!)).toBeUndefined();
    expect(cache.get(tokens[999]!)?.identity.scopes).toHaveLength(500);
  });

  it('keeps ordinary tokens up to its entry bound', () => {
    const cache = new TokenCache(3);
    for (const token of ['a', 'b', 'c', 'd'])
      cache.set(
        token,
        { identity: { kind: 'user', userId: token, scopes: [] }, verifiedBy: 'clerk' },
        inAnHour(),
      );
    expect(['a', 'b', 'c', 'd'].map((token) => cache.get(token)?.identity.userId)).toEqual([
      undefined,
      'b',
      'c',
      'd',
    ]);
  });
});
