import { PURGE_FENCE_MAX_LISTINGS, PURGE_FENCE_MS } from '@vantageedge/shared/cache-purge/purge-protocol';
import { describe, expect, it } from 'vitest';
import { PurgeFence } from './purge-fence.js';

describe('PurgeFence (the in-memory store)', () => {
  it('a listing purged at or after a fill was asked fences it; another listing or tenant does not', () => {
    let now = 1_000;
    const fence = new PurgeFence(() => now);
    fence.purged('a', 'tag-1');
    expect(fence.purgedSince('a', ['path', 'tag-1'], 1_000)).toBe(true);
    expect(fence.purgedSince('a', ['path', 'tag-1'], 1_001)).toBe(false);
    expect(fence.purgedSince('a', ['path', 'tag-2'], 0)).toBe(false);
    expect(fence.purgedSince('b', ['tag-1'], 0)).toBe(false);
    now += PURGE_FENCE_MS;
    fence.purged('a', 'tag-2');
    // Older than any fill may run: forgotten.
    expect(fence.purgedSince('a', ['tag-1'], 0)).toBe(false);
  });

  it('anyPurgedSince: a purge of any listing of the tenant at or after the time, and only of that tenant', () => {
    let now = 1_000;
    const fence = new PurgeFence(() => now);
    fence.purged('a', 'path-1');
    expect(fence.anyPurgedSince('a', 1_000)).toBe(true);
    expect(fence.anyPurgedSince('a', 1_001)).toBe(false);
    expect(fence.anyPurgedSince('b', 0)).toBe(false);
    now += PURGE_FENCE_MS;
    expect(fence.anyPurgedSince('a', 0)).toBe(false);
  });

  it('past the most listings the oldest leave, and their latest time fences every listing', () => {
    let now = 0;
    const fence = new PurgeFence(() => now);
    for (let i = 0; i < PURGE_FENCE_MAX_LISTINGS + 10; i++) {
      now += 1;
      fence.purged('a', `tag-${i}`);
    }
    // tag-10 left at time 11: a fill asked before then is fenced whatever its listings.
    expect(fence.purgedSince('a', ['never-purged'], 11)).toBe(true);
    expect(fence.purgedSince('a', ['never-purged'], 12)).toBe(false);
    expect(fence.purgedSince('a', [`tag-${PURGE_FENCE_MAX_LISTINGS}`], 12)).toBe(true);
  });

  it("a tenant's purges are forgotten PURGE_FENCE_MS after its last, as the Redis fence expires", () => {
    let now = 0;
    const fence = new PurgeFence(() => now);
    // A client POSTing to fresh paths of one tenant, then nothing more from it.
    for (let i = 0; i < PURGE_FENCE_MAX_LISTINGS; i++) fence.purged('a', `path-${i}`);
    now += PURGE_FENCE_MS;
    fence.purged('b', 'tag-1');
    expect(fence.size).toBe(1);
    expect(fence.purgedSince('a', ['path-1'], 0)).toBe(false);
  });
});
