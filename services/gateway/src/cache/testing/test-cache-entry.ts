import type { CacheEntry } from '../cache-entry.js';

/**
 * A response entry as the cache stores one: a 200 `text/plain` of one byte, stored now and fresh for a
 * minute, with no stale windows, tags or Vary; `overrides` sets what a test is about.
 */
export function testCacheEntry(overrides: Partial<CacheEntry> = {}): CacheEntry {
  return {
    kind: 'response',
    status: 200,
    headers: [['content-type', 'text/plain']],
    body: Buffer.from('x'),
    storedAt: Date.now(),
    freshMs: 60_000,
    staleWhileRevalidateMs: 0,
    staleIfErrorMs: 0,
    mustRevalidate: false,
    immutable: false,
    tags: [],
    varyOn: [],
    ...overrides,
  };
}
