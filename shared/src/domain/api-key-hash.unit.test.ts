import { describe, expect, it } from 'vitest';
import {
  apiKeyDisplayPrefix,
  generateApiKey,
  hashApiKey,
  looksLikeApiKey,
  sameApiKeyHash,
} from './api-key-hash.js';

describe('API key crypto', () => {
  it('generates distinct prefixed keys with at least 128 bits of randomness', () => {
    const keys = new Set(Array.from({ length: 1000 }, generateApiKey));
    expect(keys.size).toBe(1000);
    for (const key of keys) {
      expect(key.startsWith('ve_live_')).toBe(true);
      expect(looksLikeApiKey(key)).toBe(true);
      // 32 base64url characters carry 192 bits.
      expect(Buffer.from(key.slice(8), 'base64url').length).toBeGreaterThanOrEqual(16);
    }
  });

  it('hashes with HMAC-SHA-256 keyed by the pepper (known vector)', () => {
    // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?"
    expect(hashApiKey('Jefe', 'what do ya want for nothing?')).toBe(
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
  });

  it('gives different hashes for different peppers and compares hashes exactly', () => {
    const key = generateApiKey();
    const a = hashApiKey('pepper-one', key);
    const b = hashApiKey('pepper-two', key);
    expect(a).not.toBe(b);
    expect(sameApiKeyHash(a, hashApiKey('pepper-one', key))).toBe(true);
    expect(sameApiKeyHash(a, b)).toBe(false);
  });

  it('shows only the prefix and four characters', () => {
    const key = generateApiKey();
    expect(apiKeyDisplayPrefix(key)).toBe(key.slice(0, 12));
    expect(looksLikeApiKey('ve_live_short')).toBe(false);
  });
});
