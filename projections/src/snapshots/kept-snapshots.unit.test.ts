import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { SnapshotState } from './fold.js';
import { KeptSnapshots } from './kept-snapshots.js';

function live(tenantId: string): SnapshotState {
  return { status: 'live', snapshot: { tenant_id: tenantId } } as unknown as SnapshotState;
}

describe('kept snapshots', () => {
  it('keeps at most its bound of JSON, dropping the least recently saved tenant first', () => {
    const kept = new KeptSnapshots(1000);
    const [first, second, third] = [randomUUID(), randomUUID(), randomUUID()];
    kept.remember(first!, live(first!), { mark: '1@1', jsonBytes: 400 });
    kept.remember(second!, live(second!), { mark: '2@1', jsonBytes: 400 });
    // Saved again: now the most recent.
    kept.remember(first!, live(first!), { mark: '3@2', jsonBytes: 400 });
    kept.remember(third!, live(third!), { mark: '4@3', jsonBytes: 400 });
    expect([...kept.pick([first!, second!, third!]).keys()]).toEqual([first, third]);
    expect(kept.jsonBytes).toBe(800);
  });

  it('keeps neither a deleted tenant nor a snapshot larger than the bound', () => {
    const kept = new KeptSnapshots(1000);
    const [large, deleted] = [randomUUID(), randomUUID()];
    kept.remember(large!, live(large!), { mark: '1@1', jsonBytes: 1001 });
    kept.remember(deleted!, live(deleted!), { mark: '2@1', jsonBytes: 10 });
    kept.remember(
      deleted!,
      { status: 'deleted', tenantId: deleted!, version: 3n, eventTime: new Date().toISOString() },
      { mark: '3@2', jsonBytes: 0 },
    );
    expect(kept.pick([large!, deleted!]).size).toBe(0);
    expect(kept.jsonBytes).toBe(0);
  });
});
