import { afterEach, describe, expect, it, vi } from 'vitest';
import { type CachedToken, TokenCache } from './token-cache.js';

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
  afterEach(() => {
    vi.useRealTimers();
  });

  it('keeps verified tokens within its byte bound, forgetting the least recently used first', () => {
    const cache = new TokenCache(10_000, 1_000_000);
    const tokens = Array.from({ length: 1_000 }, (_, i) => `${'t'.repeat(7_000)}.${i}`);
    for (const token of tokens)
      cache.set(
        'acme',
        token,
        { identity: identity(500), verifiedBy: 'clerk', expiresAtMs: inAnHour() * 1000 },
        inAnHour(),
      );
    expect(cache.bytes).toBeLessThanOrEqual(1_000_000);
    expect(cache.get('acme', tokens[0]!)).toBeUndefined();
    expect(cache.get('acme', tokens[999]!)?.identity?.scopes).toHaveLength(500);
  });

  it('keeps ordinary tokens up to its entry bound', () => {
    const cache = new TokenCache(3, undefined, 1);
    for (const token of ['a', 'b', 'c', 'd'])
      cache.set(
        'acme',
        token,
        {
          identity: { kind: 'user', userId: token, scopes: [] },
          verifiedBy: 'clerk',
          expiresAtMs: inAnHour() * 1000,
        },
        inAnHour(),
      );
    expect(['a', 'b', 'c', 'd'].map((token) => cache.get('acme', token)?.identity?.userId)).toEqual([
      undefined,
      'b',
      'c',
      'd',
    ]);
  });

  it('forgets a token at its exp', () => {
    vi.useFakeTimers({ now: 1_800_000_000_000 });
    const cache = new TokenCache(10);
    const expiresAt = Math.floor(Date.now() / 1000) + 60;
    const accepted = (exp: number) => ({
      identity: identity(0),
      verifiedBy: 'clerk',
      expiresAtMs: exp * 1000,
    });
    cache.set('acme', 't', accepted(expiresAt), expiresAt);
    cache.set('acme', 'gone', accepted(expiresAt - 120), expiresAt - 120);
    expect(cache.get('acme', 'gone')).toBeUndefined();
    vi.advanceTimersByTime(59_000);
    expect(cache.get('acme', 't')).toBeDefined();
    vi.advanceTimersByTime(1_000);
    expect(cache.get('acme', 't')).toBeUndefined();
    expect([cache.size, cache.bytes]).toEqual([0, 0]);
  });

  /** A tenant controls its own signing keys (OIDC JWKS, service keys): it can mint any number of valid tokens. */
  describe('one tenant cannot evict the others', () => {
    const entryOf = (tenant: string, i: number): CachedToken => ({
      identity: { kind: 'user', userId: `${tenant}-user-${i}`, scopes: [] },
      verifiedBy: `oidc:${tenant}:1`,
      expiresAtMs: inAnHour() * 1000,
    });
    const tokenOf = (tenant: string, i: number) => `${tenant}.${i}.${'t'.repeat(100)}`;
    const kept = (cache: TokenCache, tenant: string, from: number, to: number) =>
      Array.from({ length: to - from }, (_, i) => from + i).filter(
        (i) => cache.get(tenant, tokenOf(tenant, i))?.identity?.userId === `${tenant}-user-${i}`,
      );

    it.each([
      // 403 bytes each of A's last thousand entries: A's quarter of 100,000 bytes holds 62 of them.
      ['bytes', () => new TokenCache(10_000, 100_000), 62],
      // Small entries: the entry bound (100) is reached long before the byte bound; A's quarter is 25.
      ['entries', () => new TokenCache(100, 32 * 1024 * 1024), 25],
    ])(
      'tenant A minting more tokens than the cache holds (%s bound) keeps B’s entries and only its own newest',
      (_bound, create, aShare) => {
        const cache = create();
        for (let i = 0; i < 20; i++)
          cache.set('tenant-b', tokenOf('tenant-b', i), entryOf('tenant-b', i), inAnHour());
        for (let i = 0; i < 2_000; i++)
          cache.set('tenant-a', tokenOf('tenant-a', i), entryOf('tenant-a', i), inAnHour());

        expect(kept(cache, 'tenant-b', 0, 20)).toHaveLength(20);
        expect(cache.bytesOf('tenant-a')).toBeLessThanOrEqual(cache.tenantMaxBytes);
        // LRU within A: exactly its newest tokens, as many as its share holds.
        const keptA = kept(cache, 'tenant-a', 0, 2_000);
        expect(keptA).toEqual(Array.from({ length: aShare }, (_, i) => 2_000 - aShare + i));
      },
    );

    it("a tenant's recently used token survives its own flood; the least recently used go first", () => {
      const cache = new TokenCache(40); // 10 a tenant
      for (let i = 0; i < 10; i++)
        cache.set('tenant-a', tokenOf('tenant-a', i), entryOf('tenant-a', i), inAnHour());
      expect(cache.get('tenant-a', tokenOf('tenant-a', 0))).toBeDefined(); // now A's most recent
      for (let i = 10; i < 15; i++)
        cache.set('tenant-a', tokenOf('tenant-a', i), entryOf('tenant-a', i), inAnHour());
      expect(kept(cache, 'tenant-a', 0, 15)).toEqual([0, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    });

    it('the cache-wide bound still holds, dropping the least recently used of all tenants', () => {
      const cache = new TokenCache(8); // 2 a tenant, 8 in all
      for (const tenant of ['t1', 't2', 't3', 't4', 't5'])
        for (let i = 0; i < 2; i++) cache.set(tenant, tokenOf(tenant, i), entryOf(tenant, i), inAnHour());
      expect(cache.size).toBe(8);
      expect(['t1', 't2', 't3', 't4', 't5'].map((tenant) => kept(cache, tenant, 0, 2).length)).toEqual([
        0, 2, 2, 2, 2,
      ]);
    });

    it('a share of 1 is one LRU shared by all tenants', () => {
      const cache = new TokenCache(10, undefined, 1);
      for (let i = 0; i < 5; i++)
        cache.set('tenant-b', tokenOf('tenant-b', i), entryOf('tenant-b', i), inAnHour());
      for (let i = 0; i < 10; i++)
        cache.set('tenant-a', tokenOf('tenant-a', i), entryOf('tenant-a', i), inAnHour());
      expect(kept(cache, 'tenant-b', 0, 5)).toEqual([]);
      expect(kept(cache, 'tenant-a', 0, 10)).toHaveLength(10);
    });
  });

  it('serves a long token only to its exact text, whatever other tokens share its length and ending', () => {
    const cache = new TokenCache(100);
    const signature = 's'.repeat(342);
    const kept = `header.${'a'.repeat(12_000)}.${signature}`;
    const forged = `header.${'b'.repeat(12_000)}.${signature}`;
    const entry: CachedToken = { identity: identity(0), verifiedBy: 'clerk', expiresAtMs: inAnHour() * 1000 };
    cache.set('acme', kept, entry, inAnHour());
    expect(cache.get('acme', forged)).toBeUndefined();
    expect(cache.get('acme', Buffer.from(kept).toString('latin1'))).toBe(entry);
    // Verified too (its issuer signed both), it takes the place of the first.
    const other: CachedToken = { ...entry, verifiedBy: 'clerk:org_1' };
    cache.set('acme', forged, other, inAnHour());
    expect(cache.get('acme', forged)).toBe(other);
    expect(cache.get('acme', kept)).toBeUndefined();
    expect(cache.size).toBe(1);
  });

  it('scopes every token to the tenant it was verified for', () => {
    const cache = new TokenCache(100);
    const entry: CachedToken = { identity: identity(0), verifiedBy: 'clerk', expiresAtMs: inAnHour() * 1000 };
    cache.set('acme', 'shared-token', entry, inAnHour());
    expect(cache.get('globex', 'shared-token')).toBeUndefined();
    expect(cache.get('acme', 'shared-token')).toBe(entry);
  });
});
