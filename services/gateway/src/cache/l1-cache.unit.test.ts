import { pathTags } from '@vantageedge/shared/cache-purge/path-prefix';
import { describe, expect, it } from 'vitest';
import { type CacheEntry, recordSize } from './cache-entry.js';
import { storedHeaders } from './cacheability.js';
import { L1Cache } from './l1-cache.js';

/**
 * Regression: the L1 counted an entry as its body plus 64 bytes plus its header characters, while each
 * header costs ~74 bytes of heap and each entry ~2.5 KB (measured: cache-entry.ts). A 4 MiB L1 kept
 * 63 MB of responses with 1,000 tiny headers, or 40 MB of tiny responses. The floors below are well
 * under the measured costs, so the tests do not depend on this machine's heap.
 */
const L1_BYTES = 1024 * 1024;
/** Floors of what the heap really holds: per header, and per entry (its keys, tags and slots). */
const HEADER_FLOOR = 64;
const ENTRY_FLOOR = 1_024;

function entry(path: string, headers: number, body: Buffer): CacheEntry {
  // As the proxy hands them over: a fresh object with fresh strings per response.
  const incoming: Record<string, string> = { 'cache-control': 'public, max-age=600' };
  for (let i = 0; i < headers; i++) incoming[`h${i}`] = 'v';
  return {
    kind: 'response',
    status: 200,
    headers: storedHeaders(incoming, false),
    body,
    storedAt: Date.now(),
    freshMs: 600_000,
    staleWhileRevalidateMs: 0,
    staleIfErrorMs: 0,
    mustRevalidate: false,
    immutable: false,
    tags: pathTags(path),
    varyOn: [],
  };
}

/** Keys as long as the response cache's (tenant, generations, route, digests). */
function keyOf(n: number): { key: string; pathIndexKey: string } {
  const base = `c:{00000000-0000-0000-0000-${String(n).padStart(12, '0')}}:0:${'r'.repeat(36)}:0:${'p'.repeat(43)}`;
  return { key: `${base}:${'v'.repeat(43)}`, pathIndexKey: `${base}:idx` };
}

function fill(l1: L1Cache, count: number, make: (n: number) => CacheEntry): number {
  for (let n = 0; n < count; n++) {
    const { key, pathIndexKey } = keyOf(n);
    l1.set(key, make(n), pathIndexKey);
  }
  let kept = 0;
  for (let n = 0; n < count; n++) if (l1.get(keyOf(n).key) !== undefined) kept++;
  return kept;
}

describe('L1 accounting: what an entry holds in the heap', () => {
  it('counts a fixed cost per header: responses with 1,000 tiny headers stay within the bound', () => {
    const l1 = new L1Cache(L1_BYTES);
    const kept = fill(l1, 500, (n) => entry(`/u/${n}`, 1_000, Buffer.from('x')));
    expect(kept).toBeGreaterThan(0);
    expect(kept * 1_000 * HEADER_FLOOR).toBeLessThanOrEqual(L1_BYTES);
  });

  it('counts a fixed cost per entry: tiny responses stay within the bound', () => {
    const l1 = new L1Cache(L1_BYTES);
    const kept = fill(l1, 5_000, (n) => entry(`/u/${n}`, 0, Buffer.from('x')));
    expect(kept).toBeGreaterThan(0);
    expect(kept * ENTRY_FLOOR).toBeLessThanOrEqual(L1_BYTES);
  });

  it('keeps a body in a buffer of its own, not a view that pins a larger one', () => {
    const l1 = new L1Cache(L1_BYTES);
    const reply = Buffer.alloc(64 * 1024, 120); // e.g. the Redis reply or a Buffer.concat pool
    const { key, pathIndexKey } = keyOf(1);
    l1.set(key, entry('/u/1', 0, reply.subarray(100, 110)), pathIndexKey);
    const kept = l1.get(key);
    if (kept?.kind !== 'response') throw new Error('expected the entry');
    expect(kept.body.toString()).toBe('x'.repeat(10));
    expect(kept.body.buffer.byteLength).toBe(10);
  });

  it("leaves the stores' count (the per-tenant bound) as it was", () => {
    const one = entry('/u/1', 2, Buffer.from('body'));
    let expected = one.body.length + 64;
    for (const [name, value] of one.headers) expected += name.length + (value as string).length;
    expect(recordSize(one)).toBe(expected);
  });
});
