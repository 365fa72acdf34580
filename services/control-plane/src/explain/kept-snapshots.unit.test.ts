import { randomUUID } from 'node:crypto';
import type { TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { describe, expect, it } from 'vitest';
import { KeptSnapshots } from './kept-snapshots.js';

const snapshotOf = (tenantId: string) => ({ tenant_id: tenantId }) as TenantSnapshot;

describe('snapshots explain keeps', () => {
  it('let the least recently used go past the bound, and keep none alone past it', () => {
    const kept = new KeptSnapshots<string>(300);
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()].map(snapshotOf) as [
      TenantSnapshot,
      TenantSnapshot,
      TenantSnapshot,
    ];
    kept.set(a, 'a', 100);
    kept.set(b, 'b', 100);
    expect(kept.get(a)).toBe('a');
    kept.set(c, 'c', 150);
    expect([kept.get(a), kept.get(b), kept.get(c)]).toEqual(['a', undefined, 'c']);
    const huge = snapshotOf(randomUUID());
    kept.set(huge, 'huge', 301);
    expect(kept.get(huge)).toBeUndefined();
  });

  it("keep one tenant's versions to half the bound: another tenant's stay", () => {
    const kept = new KeptSnapshots<number>(1_000);
    const quiet = snapshotOf(randomUUID());
    kept.set(quiet, 0, 100);
    const busy = randomUUID();
    const versions = Array.from({ length: 20 }, () => snapshotOf(busy));
    for (const [at, version] of versions.entries()) kept.set(version, at, 100);
    expect(kept.get(quiet)).toBe(0);
    expect(versions.filter((version) => kept.get(version) !== undefined)).toHaveLength(5);
    expect(kept.get(versions[19]!)).toBe(19);
  });

  it("keep no version of a tenant past its half: it cannot push another tenant's out", () => {
    const kept = new KeptSnapshots<string>(1_000);
    const quiet = snapshotOf(randomUUID());
    kept.set(quiet, 'quiet', 400);
    const large = snapshotOf(randomUUID());
    kept.set(large, 'large', 900);
    expect([kept.get(quiet), kept.get(large)]).toEqual(['quiet', undefined]);
  });
});
