import type { TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { gzipBound, snapshotJsonBytes } from '@vantageedge/shared/snapshot-bus/codec';

/**
 * An upper estimate of a tenant snapshot's gzipped size from the last one gzipped for the tenant, so
 * that the snapshot guard does not stringify and gzip the whole snapshot (≈ 300 ms of CPU for 13 MB of
 * JSON) for every command of a large tenant:
 *
 *   estimate = last exact gzip size + gzipBound(JSON bytes of the entries not in that snapshot)
 *            + GZIP_WINDOW_SLACK per place where entries were inserted, removed or moved.
 *
 * Entries are the items of the snapshot's lists (routes, origins, …), known by identity: the control
 * plane's folds share every unchanged (frozen) entry with the fold before. Deflate only refers back
 * 32 KiB, so an edit changes how at most the next 32 KiB compress; the rest of the snapshot compresses
 * as before. A guard gzips again when the estimate is over its limit, and an exact size resets it.
 */

/** Deflate's window and longest match, and a block's Huffman tables: what one edit can cost besides its bytes. */
export const GZIP_WINDOW_SLACK = 32 * 1024 + 258 + 1024;

const LISTS = ['custom_domains', 'users', 'origins', 'routes', 'api_keys', 'certificates'] as const;
type List = (typeof LISTS)[number];

/** Tenants whose last measurement is kept (each a few numbers), least recently measured out. */
const MAX_TENANTS = 10_000;

interface Baseline {
  measurement: number;
  valueBytes: number;
  lengths: Record<List, number>;
}

interface Place {
  measurement: number;
  list: List;
  index: number;
}

export interface SnapshotSizeEstimates {
  /** The estimated gzip size of the tenant's snapshot; undefined until one of its snapshots was gzipped. */
  estimate(tenantId: string, snapshot: TenantSnapshot): number | undefined;
  /** Records the exact gzip size of the tenant's snapshot (the base of later estimates). */
  remember(tenantId: string, snapshot: TenantSnapshot, valueBytes: number): void;
}

export function createSnapshotSizeEstimates(): SnapshotSizeEstimates {
  const baselines = new Map<string, Baseline>();
  const places = new WeakMap<object, Place>();
  let measurements = 0;

  return {
    estimate(tenantId, snapshot) {
      const base = baselines.get(tenantId);
      if (base === undefined) return undefined;
      // The tenant object and the scalars around the lists: counted as changed every time.
      let changedBytes = snapshotJsonBytes(snapshot.tenant) + 256;
      let edits = 1;
      for (const list of LISTS) {
        let expected = 0;
        let inserting = false;
        for (const entry of snapshot[list] ?? []) {
          const place = places.get(entry);
          if (place?.measurement !== base.measurement || place.list !== list) {
            changedBytes += snapshotJsonBytes(entry) + 1;
            if (!inserting) edits += 1;
            inserting = true;
            continue;
          }
          inserting = false;
          if (place.index !== expected) edits += 1;
          expected = place.index + 1;
        }
        if (expected !== base.lengths[list]) edits += 1;
      }
      return base.valueBytes + gzipBound(changedBytes) + edits * GZIP_WINDOW_SLACK;
    },
    remember(tenantId, snapshot, valueBytes) {
      measurements += 1;
      const lengths = {} as Record<List, number>;
      for (const list of LISTS) {
        const entries = snapshot[list] ?? [];
        entries.forEach((entry, index) => {
          places.set(entry, { measurement: measurements, list, index });
        });
        lengths[list] = entries.length;
      }
      baselines.delete(tenantId);
      baselines.set(tenantId, { measurement: measurements, valueBytes, lengths });
      for (const oldest of baselines.keys()) {
        if (baselines.size <= MAX_TENANTS) break;
        baselines.delete(oldest);
      }
    },
  };
}
