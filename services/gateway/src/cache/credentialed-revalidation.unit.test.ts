import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { CacheRequest } from '@vantageedge/shared/gateway-policies/cache-key';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { publicRouteCachePolicy } from '../testing/cache-policies.js';
import type { CacheEntry } from './cache-entry.js';
import type { CacheFill, ResponseCache } from './response-cache.js';
import { memoryResponseCache } from './testing/memory-response-cache.js';

const header = (entry: CacheEntry, name: string) => entry.headers.find(([stored]) => stored === name)?.[1];

/**
 * A 304 updates the stored response it validated (RFC 9111 §4.3.4), and the updated response is then
 * what every caller of the shared key gets. On a public route a response to a request with
 * Authorization or a Cookie may be shared only with the origin's consent (RFC 9111 §3.5): so may a 304
 * to such a request, whose header fields (a user's name, their plan) and lifetime were chosen for that
 * caller. Without that consent in the 304 itself, the caller is answered from the entry once and the
 * shared entry stays as the origin last gave it to everyone.
 */
describe('a revalidation answered 304 for a request with credentials', () => {
  const tenantId = randomUUID();
  const policy = publicRouteCachePolicy(tenantId);
  let clock = 1_800_000_000_000;
  let cache: ResponseCache;

  const request = (headers: IncomingHttpHeaders = {}): CacheRequest => ({
    method: 'GET',
    path: '/articles/1',
    query: '',
    headers,
  });
  const leaderFill = async (headers: IncomingHttpHeaders = {}): Promise<CacheFill> => {
    const lookup = await cache.lookup(policy, request(headers), {});
    if (lookup.outcome !== 'MISS' || lookup.fill === null)
      throw new Error(`expected to lead a fill, got ${lookup.outcome}`);
    return lookup.fill;
  };
  /** Stored from an anonymous request, then left to go stale. */
  const storeStale = async (cacheControl: string) => {
    const fill = await leaderFill();
    await cache.store(fill, 'GET', {
      status: 200,
      headers: { 'cache-control': cacheControl, etag: '"v1"' },
      body: Buffer.from('article v1'),
    });
    clock += 2_000;
  };
  /** What the next anonymous request is answered with, and the stored entry it is answered from. */
  const anonymousLookup = async () => {
    const lookup = await cache.lookup(policy, request(), {});
    if (lookup.outcome === 'MISS') {
      if (lookup.fill !== null) cache.abandon(lookup.fill);
      return { outcome: lookup.outcome, entry: lookup.fill?.revalidating ?? null };
    }
    if (lookup.outcome === 'BYPASS') throw new Error(`bypassed: ${lookup.reason}`);
    return { outcome: lookup.outcome, entry: lookup.entry };
  };

  beforeEach(async () => {
    cache = memoryResponseCache({
      now: () => clock,
    });
    await cache.prepareTenant(tenantId);
  });

  afterEach(async () => {
    await cache.close();
  });

  it('an anonymous 304 refreshes the shared entry with the 304’s fields', async () => {
    await storeStale('max-age=1');
    const fill = await leaderFill();
    expect(fill.revalidating?.body.toString()).toBe('article v1');
    cache.revalidated(fill, { etag: '"v1"', 'cache-control': 'max-age=60', 'x-edition': 'morning' });
    const next = await anonymousLookup();
    expect(next.outcome).toBe('HIT');
    expect(header(next.entry!, 'x-edition')).toBe('morning');
  });

  it.each([
    ['Authorization', { authorization: 'Bearer alice-session' }],
    ['a Cookie', { cookie: 'session=alice' }],
  ])(
    'with %s and no consent to share, answers the caller and leaves the shared entry as it was',
    async (_credential, credentials) => {
      await storeStale('max-age=1');
      const fill = await leaderFill(credentials);
      const answered = cache.revalidated(fill, {
        etag: '"v1"',
        'cache-control': 'max-age=600',
        'x-signed-in-as': 'alice',
      });
      expect(answered.body.toString()).toBe('article v1');
      expect(header(answered, 'x-signed-in-as')).toBe('alice');

      const next = await anonymousLookup();
      expect(next.outcome).toBe('MISS'); // still stale: revalidated again for the next caller
      expect(next.entry?.body.toString()).toBe('article v1');
      expect(header(next.entry!, 'x-signed-in-as')).toBeUndefined();
    },
  );

  it('with Authorization and the origin’s consent in the 304, refreshes the shared entry', async () => {
    await storeStale('max-age=1');
    const fill = await leaderFill({ authorization: 'Bearer alice-session' });
    cache.revalidated(fill, { etag: '"v1"', 'cache-control': 'public, max-age=600' });
    const next = await anonymousLookup();
    expect(next.outcome).toBe('HIT');
    expect(header(next.entry!, 'cache-control')).toBe('public, max-age=600');
  });

  it('with Authorization, does not take the stored response’s consent for the 304’s', async () => {
    // `public` was the origin's word on the anonymous response; its 304 to Alice says nothing of sharing.
    await storeStale('public, max-age=1');
    const fill = await leaderFill({ authorization: 'Bearer alice-session' });
    const answered = cache.revalidated(fill, { etag: '"v1"', 'x-signed-in-as': 'alice' });
    expect(header(answered, 'x-signed-in-as')).toBe('alice');

    const next = await anonymousLookup();
    expect(next.outcome).toBe('MISS');
    expect(header(next.entry!, 'x-signed-in-as')).toBeUndefined();
  });
});
