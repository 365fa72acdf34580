import { generateApiKey, hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { describe, expect, it } from 'vitest';
import { ApiKeyDigests } from './api-key-digests.js';

const PEPPER = 'unit-pepper-0123456789abcdef0123456789abcdef';
const TENANT = 'tenant-a';

function counting() {
  const calls: string[] = [];
  const hash = (pepper: string, key: string) => {
    calls.push(key);
    return hashApiKey(pepper, key);
  };
  return { calls, hash };
}

/** A tenant's key index (digest → entry) holding these keys. */
const indexOf = (...keys: string[]) => new Map(keys.map((key) => [hashApiKey(PEPPER, key), key]));

describe('API-key digests', () => {
  it('computes the HMAC of a key presented again and again once, and finds its entry', () => {
    const { calls, hash } = counting();
    const digests = new ApiKeyDigests(PEPPER, 100, hash);
    const key = generateApiKey();
    const index = indexOf(key);
    const results = Array.from({ length: 50 }, () => digests.find(TENANT, key, index));
    expect(new Set(results)).toEqual(new Set([key]));
    expect(calls).toHaveLength(1);
  });

  it('forgets the least recently used key beyond its size', () => {
    const { calls, hash } = counting();
    const digests = new ApiKeyDigests(PEPPER, 2, hash);
    const [a, b, c] = [generateApiKey(), generateApiKey(), generateApiKey()];
    const index = indexOf(a, b, c);
    for (const key of [a, b, a, c, a, b]) digests.find(TENANT, key, index);
    // a stays (recently used), b was dropped for c and is hashed again.
    expect(calls).toEqual([a, b, c, b]);
  });

  it('never remembers values that are not shaped like keys, so clients cannot fill memory with junk', () => {
    const { calls, hash } = counting();
    const digests = new ApiKeyDigests(PEPPER, 100, hash);
    const junk = 'x'.repeat(8_000);
    const index = indexOf(junk);
    digests.find(TENANT, junk, index);
    digests.find(TENANT, junk, index);
    expect(calls).toHaveLength(2);
    expect(digests.find(TENANT, junk, index)).toBe(junk);
  });

  it("never remembers keys the tenant's index does not hold", () => {
    const { calls, hash } = counting();
    const digests = new ApiKeyDigests(PEPPER, 100, hash);
    const unknown = generateApiKey();
    expect(digests.find(TENANT, unknown, indexOf())).toBeUndefined();
    expect(digests.find(TENANT, unknown, indexOf())).toBeUndefined();
    expect(calls).toHaveLength(2);
  });

  it('keeps one tenant from evicting the keys of another: a tenant churning keys loses its own', () => {
    const { calls, hash } = counting();
    const digests = new ApiKeyDigests(PEPPER, 10, hash);
    const quiet = generateApiKey();
    digests.find('quiet', quiet, indexOf(quiet));
    const noisyKeys = Array.from({ length: 50 }, () => generateApiKey());
    const noisyIndex = indexOf(...noisyKeys);
    for (const key of noisyKeys) digests.find('noisy', key, noisyIndex);
    calls.length = 0;
    expect(digests.find('quiet', quiet, indexOf(quiet))).toBe(quiet);
    expect(calls).toEqual([]);
  });

  it("finds a remembered key only in the tenant's own index", () => {
    const digests = new ApiKeyDigests(PEPPER, 100);
    const key = generateApiKey();
    expect(digests.find(TENANT, key, indexOf(key))).toBe(key);
    expect(digests.find('other', key, indexOf())).toBeUndefined();
    expect(digests.find(TENANT, key, indexOf())).toBeUndefined();
  });

  it('hashes every time when the cache is off', () => {
    const { calls, hash } = counting();
    const digests = new ApiKeyDigests(PEPPER, 0, hash);
    const key = generateApiKey();
    digests.find(TENANT, key, indexOf(key));
    digests.find(TENANT, key, indexOf(key));
    expect(calls).toHaveLength(2);
  });
});
