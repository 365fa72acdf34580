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
 * A 304 updates the stored response's fields (RFC 9111 §3.2, §4.3.4), but the stored body is still the
 * body: the fields that describe its bytes stay those it was stored with. A 304 naming another
 * Content-Encoding (an origin answering for its compressed representation, whose weak ETag matched the
 * stored one) would otherwise label the stored plain bytes gzip for every client of the entry, whose
 * browsers then fail to decode the page.
 */
describe('a revalidation answered 304 with fields about the body', () => {
  const tenantId = randomUUID();
  const policy = publicRouteCachePolicy(tenantId);
  let clock = 1_800_000_000_000;
  let cache: ResponseCache;

  const request = (headers: IncomingHttpHeaders): CacheRequest => ({
    method: 'GET',
    path: '/page',
    query: '',
    headers,
  });
  const leaderFill = async (headers: IncomingHttpHeaders): Promise<CacheFill> => {
    const lookup = await cache.lookup(policy, request(headers), {});
    if (lookup.outcome !== 'MISS' || lookup.fill === null)
      throw new Error(`expected to lead a fill, got ${lookup.outcome}`);
    return lookup.fill;
  };

  beforeEach(async () => {
    cache = memoryResponseCache({ now: () => clock });
    await cache.prepareTenant(tenantId);
  });

  afterEach(async () => {
    await cache.close();
  });

  it('keeps the stored Content-Encoding: a 304 saying gzip does not relabel a plain body', async () => {
    const client = { 'accept-encoding': 'gzip' };
    const fill = await leaderFill(client);
    await cache.store(fill, 'GET', {
      status: 200,
      headers: { 'cache-control': 'max-age=1', etag: 'W/"v1"', 'content-type': 'text/html' },
      body: Buffer.from('<p>plain</p>'),
    });
    clock += 2_000;

    const revalidation = await leaderFill(client);
    const answered = cache.revalidated(revalidation, {
      etag: 'W/"v1"',
      'cache-control': 'max-age=600',
      'content-encoding': 'gzip',
      'content-length': '31',
    });
    expect(answered.body.toString()).toBe('<p>plain</p>');
    expect(header(answered, 'content-encoding')).toBeUndefined();
    expect(header(answered, 'cache-control')).toBe('max-age=600');

    const next = await cache.lookup(policy, request(client), {});
    expect(next.outcome).toBe('HIT');
    if (next.outcome !== 'HIT') return;
    expect(next.entry.body.toString()).toBe('<p>plain</p>');
    expect(header(next.entry, 'content-encoding')).toBeUndefined();
  });
});

/**
 * RFC 9111 §4.3.4: a 304 updates the stored responses its validator selects. One naming another entity
 * tag than the entry's (the origin's current representation is another) selects none: relabelled, the
 * stored body would go out under a tag and fields that belong to other bytes, and clients holding that
 * tag would be told their copy is this one.
 */
describe('a revalidation answered 304 with another ETag than the stored one', () => {
  const tenantId = randomUUID();
  const policy = publicRouteCachePolicy(tenantId);
  let clock = 1_800_000_000_000;
  let cache: ResponseCache;

  const request: CacheRequest = { method: 'GET', path: '/report', query: '', headers: {} };
  const leaderFill = async (): Promise<CacheFill> => {
    const lookup = await cache.lookup(policy, request, {});
    if (lookup.outcome !== 'MISS' || lookup.fill === null)
      throw new Error(`expected to lead a fill, got ${lookup.outcome}`);
    return lookup.fill;
  };
  const storeStale = async (etag: string): Promise<void> => {
    await cache.store(await leaderFill(), 'GET', {
      status: 200,
      headers: { 'cache-control': 'max-age=1', etag, 'content-type': 'text/plain' },
      body: Buffer.from('first report'),
    });
    clock += 2_000;
  };

  beforeEach(async () => {
    cache = memoryResponseCache({ now: () => clock });
    await cache.prepareTenant(tenantId);
  });

  afterEach(async () => {
    await cache.close();
  });

  it('leaves the stored entry as it was, and answers with its own fields', async () => {
    await storeStale('"r1"');
    const answered = cache.revalidated(await leaderFill(), {
      etag: '"r2"',
      'cache-control': 'max-age=600',
      'content-type': 'application/json',
    });
    expect(answered.body.toString()).toBe('first report');
    expect(header(answered, 'etag')).toBe('"r1"');
    expect(header(answered, 'content-type')).toBe('text/plain');

    // Still stale: the next request revalidates it again, with its own tag.
    const next = await cache.lookup(policy, request, {});
    expect(next.outcome).toBe('MISS');
    if (next.outcome !== 'MISS') return;
    expect(next.fill?.revalidating && header(next.fill.revalidating, 'etag')).toBe('"r1"');
    expect(next.fill?.revalidating && header(next.fill.revalidating, 'cache-control')).toBe('max-age=1');
  });

  it('updates it when the tags are the same but for weakness (a compressing origin weakens its 200s only)', async () => {
    await storeStale('W/"r1"');
    const answered = cache.revalidated(await leaderFill(), { etag: '"r1"', 'cache-control': 'max-age=600' });
    expect(header(answered, 'cache-control')).toBe('max-age=600');
    expect((await cache.lookup(policy, request, {})).outcome).toBe('HIT');
  });

  it('updates it from a 304 without an ETag (its Last-Modified or nothing to compare)', async () => {
    await storeStale('"r1"');
    cache.revalidated(await leaderFill(), { 'cache-control': 'max-age=600' });
    expect((await cache.lookup(policy, request, {})).outcome).toBe('HIT');
  });
});
