import { generateApiKey, hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { describe, expect, it } from 'vitest';
import { ApiKeyDigests } from './api-key-digests.js';

const PEPPER = 'unit-pepper-0123456789abcdef0123456789abcdef';

function counting() {
  const calls: string[] = [];
  const hash = (pepper: string, key: string) => {
    calls.push(key);
    return hashApiKey(pepper, key);
  };
  return { calls, hash };
}

describe('API-key digests', () => {
  it('computes the HMAC of a key presented again and again once, and gives the same digest', () => {
    const { calls, hash } = counting();
    const digests = new ApiKeyDigests(PEPPER, 100, hash);
    const key = generateApiKey();
    const results = Array.from({ length: 50 }, () => digests.digest(key));
    expect(new Set(results)).toEqual(new Set([hashApiKey(PEPPER, key)]));
    expect(calls).toHaveLength(1);
  });

  it('forgets the least recently used key beyond its size', () => {
    const { calls, hash } = counting();
    const digests = new ApiKeyDigests(PEPPER, 2, hash);
    const [a, b, c] = [generateApiKey(), generateApiKey(), generateApiKey()];
    for (const key of [a, b, a, c, a, b]) digests.digest(key);
    // a stays (recently used), b was dropped for c and is hashed again.
    expect(calls).toEqual([a, b, c, b]);
  });

  it('never remembers values that are not shaped like keys, so clients cannot fill memory with junk', () => {
    const { calls, hash } = counting();
    const digests = new ApiKeyDigests(PEPPER, 100, hash);
    const junk = 'x'.repeat(8_000);
    digests.digest(junk);
    digests.digest(junk);
    expect(calls).toHaveLength(2);
    expect(digests.digest(junk)).toBe(hashApiKey(PEPPER, junk));
  });

  it('hashes every time when the cache is off', () => {
    const { calls, hash } = counting();
    const digests = new ApiKeyDigests(PEPPER, 0, hash);
    const key = generateApiKey();
    digests.digest(key);
    digests.digest(key);
    expect(calls).toHaveLength(2);
  });
});
