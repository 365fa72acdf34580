import type { SnapshotState } from './fold.js';
import type { SavedState } from './snapshot-state-store.js';

export type LiveSnapshotState = Extract<SnapshotState, { status: 'live' }>;

/**
 * Identifies one write of a tenant's `snapshot_state` row: its version and the time of the transaction
 * that wrote it (snapshot-state-store.ts computes it in SQL, on save and on load).
 */
export type SaveMark = string;

export interface KeptSnapshot {
  state: LiveSnapshotState;
  mark: SaveMark;
}

/** 32 MiB of JSON: the last ~15 tenants at the 2 MiB snapshot bound, thousands of ordinary ones. */
export const DEFAULT_KEPT_SNAPSHOT_BYTES = 32 * 1024 * 1024;

/**
 * The live snapshots the projector saved last, each with the mark of its save, the least recently
 * saved dropped first beyond `maxJsonBytes` of JSON. A tenant changing live (each change a batch of its
 * own) is folded onto the kept state instead of having its whole snapshot read back and parsed for every
 * change. A kept state is used only while its row still carries the same mark: a rolled-back save, a
 * refold or another writer changes the mark, and the stored row is read instead.
 */
export class KeptSnapshots {
  readonly #maxJsonBytes: number;
  readonly #entries = new Map<string, KeptSnapshot & { jsonBytes: number }>();
  #jsonBytes = 0;

  constructor(maxJsonBytes = DEFAULT_KEPT_SNAPSHOT_BYTES) {
    this.#maxJsonBytes = maxJsonBytes;
  }

  /** The kept snapshots of these tenants (a copy: what a load may use whatever is saved meanwhile). */
  pick(tenantIds: readonly string[]): Map<string, KeptSnapshot> {
    const picked = new Map<string, KeptSnapshot>();
    for (const tenantId of tenantIds) {
      const entry = this.#entries.get(tenantId);
      if (entry) picked.set(tenantId, { state: entry.state, mark: entry.mark });
    }
    return picked;
  }

  /** `state` was saved with `mark`: keeps it (a deleted tenant, or one larger than the bound, is dropped). */
  remember(tenantId: string, state: SnapshotState, saved: SavedState | undefined): void {
    this.forget(tenantId);
    if (state.status !== 'live' || !saved || saved.jsonBytes > this.#maxJsonBytes) return;
    this.#entries.set(tenantId, { state, ...saved });
    this.#jsonBytes += saved.jsonBytes;
    for (const [oldest, entry] of this.#entries) {
      if (this.#jsonBytes <= this.#maxJsonBytes) break;
      this.#entries.delete(oldest);
      this.#jsonBytes -= entry.jsonBytes;
    }
  }

  forget(tenantId: string): void {
    const entry = this.#entries.get(tenantId);
    if (!entry) return;
    this.#entries.delete(tenantId);
    this.#jsonBytes -= entry.jsonBytes;
  }

  /** JSON bytes of the kept snapshots. */
  get jsonBytes(): number {
    return this.#jsonBytes;
  }
}
