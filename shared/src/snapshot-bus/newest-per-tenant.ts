import type { SlicedWork } from '../process/event-loop-slices.js';
import { type DecodeResult, decodingSnapshotRecord, HEADER_VERSION, type SnapshotRecord } from './codec.js';
import type { RouteValidationCache } from './route-validation-cache.js';

const DECIMAL = /^\d+$/;

/**
 * Decodes, of records read together (a fetched batch, a backlog), only what a subscriber needs: each
 * tenant's newest record. A subscriber keeps only a tenant's newest version, and decoding a large
 * tenant's snapshot costs a replica hundreds of milliseconds of blocked event loop, so a tenant whose
 * admin churns its config must not cost one decode per version it published while the replica was
 * behind (or since the topic was last compacted, on a cold start).
 *
 * Newest is the highest version header, a tombstone before a snapshot of the same version, then the
 * earlier record (what a subscriber applying them all ends with: it drops a version it has). When
 * that record does not decode, the next newest is tried, so an unreadable record still leaves the
 * tenant at its newest readable version. `decodingAt(index)` decodes to the record's result, or
 * undefined for a record skipped; a tenant's records are decoded when the first of them is asked for,
 * so a caller may yield between tenants, and within one (see runInSlices). `routes` is the
 * subscription's (see decodeSnapshotRecord).
 */
export function decodeNewestPerTenant(
  records: readonly SnapshotRecord[],
  maxDecodedBytes?: number,
  routes?: RouteValidationCache,
): (index: number) => SlicedWork<DecodeResult | undefined> {
  const byTenant = new Map<string, number[]>();
  /** Each record's tenant's records; none for a record not attributable to a tenant's version. */
  const tenantOf: Array<number[] | undefined> = records.map((record, index) => {
    const version = record.headers[HEADER_VERSION];
    if (!record.key || version === undefined || !DECIMAL.test(version)) return undefined;
    const indexes = byTenant.get(record.key) ?? [];
    byTenant.set(record.key, indexes);
    indexes.push(index);
    return indexes;
  });
  const results = new Map<number, DecodeResult>();
  const decided = new Set<number[]>();
  return function* decodingAt(index) {
    const indexes = tenantOf[index];
    // Decoded alone, to report why it is invalid.
    if (!indexes) return yield* decodingSnapshotRecord(records[index]!, maxDecodedBytes);
    if (!decided.has(indexes)) {
      decided.add(indexes);
      const newestFirst = [...indexes].sort((a, b) => compareNewestFirst(records[a]!, records[b]!) || a - b);
      for (const candidate of newestFirst) {
        const result = yield* decodingSnapshotRecord(records[candidate]!, maxDecodedBytes, routes);
        results.set(candidate, result);
        if (result.ok) break;
      }
    }
    return results.get(index);
  };
}

/** Negative when `a` is newer than `b`; a record without a version counts as version 0. */
export function compareNewestFirst(a: SnapshotRecord, b: SnapshotRecord): number {
  const versionA = versionOf(a);
  const versionB = versionOf(b);
  if (versionA !== versionB) return versionA > versionB ? -1 : 1;
  return Number(b.value === null) - Number(a.value === null);
}

/** A record's version header; 0 for a record without a readable one. */
export function versionOf(record: Pick<SnapshotRecord, 'headers'>): bigint {
  const version = record.headers[HEADER_VERSION];
  return version !== undefined && DECIMAL.test(version) ? BigInt(version) : 0n;
}

/** Raises `versions`' entry for the record's tenant to the record's version (a record without a key is skipped). */
export function noteHighestVersion(
  versions: Map<string, bigint>,
  record: Pick<SnapshotRecord, 'key' | 'headers'>,
): void {
  if (!record.key) return;
  const version = versionOf(record);
  if (version > (versions.get(record.key) ?? -1n)) versions.set(record.key, version);
}
