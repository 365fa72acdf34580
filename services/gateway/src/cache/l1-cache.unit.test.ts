import { randomUUID } from 'node:crypto';
import { pathTags } from '@vantageedge/shared/cache-purge/path-prefix';
import { describe, expect, it } from 'vitest';
import { type CacheEntry, recordSize } from './cache-entry.js';
import { storedHeaders } from './cacheability.js';
import { L1Cache } from './l1-cache.js';
import { testCacheEntry } from './testing/test-cache-entry.js';

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
  return testCacheEntry({
    headers: storedHeaders(incoming, false),
    body,
    freshMs: 600_000,
    tags: pathTags(path),
  });
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

/**
 * Regression: tenant, route and hard tag purges scanned the whole L1 on every replica (37–42 ms with
 * 48,000 entries), so one tenant purging in a loop stalled every other tenant's requests on all replicas.
 * A purge now looks only at the purging tenant's entries, and a tag purge only at the entries it drops.
 */
describe('L1 purges: only the purging tenant pays for them', () => {
  const OTHER_TENANT_ENTRIES = 10_000;
  const ROUTES = ['00000000-0000-0000-0000-00000000aaaa', '00000000-0000-0000-0000-00000000bbbb'];

  function tenantKey(tenantId: string, routeId: string, n: number): { key: string; pathIndexKey: string } {
    const base = `c:{${tenantId}}:0:${routeId}:0:${String(n).padStart(43, 'p')}`;
    return { key: `${base}:${'v'.repeat(43)}`, pathIndexKey: `${base}:idx` };
  }

  function tagged(tags: string[]): CacheEntry {
    return { ...entry('/u', 0, Buffer.from('x')), tags };
  }

  /** The purging tenant: 50 entries on each of two routes, every tenth of them tagged `sale`. */
  function replicaWithNeighbour(): {
    l1: L1Cache;
    purging: string;
    neighbour: string;
    has: (n: number) => boolean;
  } {
    const l1 = new L1Cache(256 * 1024 * 1024, 1);
    const purging = randomUUID();
    const neighbour = randomUUID();
    for (let n = 0; n < OTHER_TENANT_ENTRIES; n++) {
      const { key, pathIndexKey } = tenantKey(neighbour, ROUTES[n % 2]!, n);
      l1.set(key, tagged(['sale', `/u/${n}`]), pathIndexKey);
    }
    for (let n = 0; n < 100; n++) {
      const { key, pathIndexKey } = tenantKey(purging, ROUTES[n % 2]!, n);
      l1.set(key, tagged(n % 10 === 0 ? ['sale', `/u/${n}`] : [`/u/${n}`]), pathIndexKey);
    }
    const has = (n: number) => l1.get(tenantKey(purging, ROUTES[n % 2]!, n).key) !== undefined;
    return { l1, purging, neighbour, has };
  }

  function neighbourEntriesKept(l1: L1Cache, neighbour: string): number {
    let kept = 0;
    for (let n = 0; n < OTHER_TENANT_ENTRIES; n++)
      if (l1.get(tenantKey(neighbour, ROUTES[n % 2]!, n).key) !== undefined) kept++;
    return kept;
  }

  it("a tenant purge drops the tenant's entries without visiting another tenant's", () => {
    const { l1, purging, neighbour, has } = replicaWithNeighbour();
    const before = l1.purgeVisits;
    l1.deleteTenant(purging);
    expect(l1.purgeVisits - before).toBeLessThanOrEqual(100);
    expect([0, 1, 50, 99].filter(has)).toEqual([]);
    expect(neighbourEntriesKept(l1, neighbour)).toBe(OTHER_TENANT_ENTRIES);
  });

  it("a route purge drops the route's entries, visiting neither other routes' nor other tenants'", () => {
    const { l1, purging, neighbour, has } = replicaWithNeighbour();
    const before = l1.purgeVisits;
    l1.deleteRoute(purging, ROUTES[0]!);
    expect(l1.purgeVisits - before).toBeLessThanOrEqual(50);
    expect([0, 2, 98].filter(has)).toEqual([]);
    expect([1, 3, 99].filter(has)).toEqual([1, 3, 99]);
    expect(neighbourEntriesKept(l1, neighbour)).toBe(OTHER_TENANT_ENTRIES);
  });

  it('a tag purge visits only the tagged entries it drops, and nothing when repeated', () => {
    const { l1, purging, neighbour, has } = replicaWithNeighbour();
    const before = l1.purgeVisits;
    l1.deleteTagged(purging, ['sale']);
    expect(l1.purgeVisits - before).toBeLessThanOrEqual(10);
    expect([0, 10, 90].filter(has)).toEqual([]);
    expect([1, 11, 99].filter(has)).toEqual([1, 11, 99]);
    expect(neighbourEntriesKept(l1, neighbour)).toBe(OTHER_TENANT_ENTRIES);

    const again = l1.purgeVisits;
    for (let i = 0; i < 100; i++) l1.deleteTagged(purging, ['sale', 'missing']);
    expect(l1.purgeVisits - again).toBe(0);
  });

  it('a response stored again with other tags is purged by its new tags, not its former ones', () => {
    const { l1, purging, has } = replicaWithNeighbour();
    const { key, pathIndexKey } = tenantKey(purging, ROUTES[0]!, 0);
    l1.set(key, tagged(['new-arrivals']), pathIndexKey);
    l1.deleteTagged(purging, ['sale']);
    expect(has(0)).toBe(true);
    l1.deleteTagged(purging, ['new-arrivals']);
    expect(has(0)).toBe(false);
  });
});

describe('the Vary cap in the L1', () => {
  it("a new variant takes the place of the URL's least recently used one, not of one read since", () => {
    const l1 = new L1Cache(L1_BYTES);
    const { key: urlKey, pathIndexKey } = keyOf(1);
    const variant = (name: string) => `${urlKey}:${name}`;
    const store = (name: string) =>
      l1.set(variant(name), entry('/p', 1, Buffer.from(name)), pathIndexKey, urlKey);
    for (const name of ['a', 'b', 'c']) {
      expect(l1.makeRoomForVariant(urlKey, variant(name), 3)).toBe(0);
      store(name);
    }
    l1.get(variant('a'));
    expect(l1.makeRoomForVariant(urlKey, variant('d'), 3)).toBe(1);
    store('d');
    expect(l1.get(variant('b'))).toBeUndefined();
    for (const name of ['a', 'c', 'd']) expect(l1.get(variant(name))?.kind).toBe('response');
    // Storing a variant kept already makes no room.
    expect(l1.makeRoomForVariant(urlKey, variant('a'), 3)).toBe(0);
    // A lower cap drops as many as it takes, least recently used first.
    expect(l1.makeRoomForVariant(urlKey, variant('e'), 2)).toBe(2);
    expect(l1.get(variant('d'))?.kind).toBe('response');
    expect(l1.get(variant('a'))).toBeUndefined();
  });

  it('holds the cap for every variant it keeps, and a variant stored again counts as used', () => {
    const l1 = new L1Cache(L1_BYTES, undefined, 2);
    const { key: urlKey, pathIndexKey } = keyOf(2);
    const variant = (name: string) => `${urlKey}:${name}`;
    const store = (name: string) =>
      l1.set(variant(name), entry('/p', 1, Buffer.from(name)), pathIndexKey, urlKey);
    store('a');
    store('b');
    // a refreshed (read again from the shared store, or revalidated): b is the least recently used.
    store('a');
    store('c');
    expect(l1.get(variant('b'))).toBeUndefined();
    for (const name of ['a', 'c']) expect(l1.get(variant(name))?.kind).toBe('response');
  });
});
