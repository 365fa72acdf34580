import { type decodeSnapshotRecord, HEADER_VERSION } from './codec.js';
import { compareNewestFirst } from './newest-per-tenant.js';

type SnapshotRecord = Parameters<typeof decodeSnapshotRecord>[0];

/** The newest record, and the one before it should the newest not decode. */
const KEPT_PER_TENANT = 2;

const DECIMAL = /^\d+$/;

/**
 * What a replica reading the topic from the beginning has read before it is caught up: each tenant's
 * newest two records, not yet decoded. A tenant's history not yet compacted may span many fetches;
 * decoding its newest record of each fetch would cost one gunzip, parse and compile per fetch before
 * the replica is ready, where decoding once at the end costs one. The second record keeps the
 * tenant's previous version when the newest cannot be decoded.
 *
 * Values are copied: a record read from Kafka is a view of its whole fetch response, which would
 * otherwise stay in memory for as long as one of its records is held.
 */
export class CatchUpBacklog {
  readonly #byTenant = new Map<string, SnapshotRecord[]>();
  /** Records without a tenant id or a version; kept only to be reported as invalid. */
  readonly #unattributed: SnapshotRecord[] = [];

  add(record: SnapshotRecord): void {
    const held = { ...record, value: record.value === null ? null : Buffer.from(record.value) };
    const version = held.headers[HEADER_VERSION];
    if (!held.key || version === undefined || !DECIMAL.test(version)) {
      this.#unattributed.push(held);
      return;
    }
    const kept = this.#byTenant.get(held.key) ?? [];
    this.#byTenant.set(held.key, kept);
    // Read again after the consumer restarted: the previous version must not make way for a copy.
    if (kept.some((other) => sameRecord(held, other))) return;
    // Equally new records keep their order: the earlier one is the one a subscriber applying all ends with.
    const position = kept.findIndex((other) => compareNewestFirst(held, other) < 0);
    if (position === -1) kept.push(held);
    else kept.splice(position, 0, held);
    kept.length = Math.min(kept.length, KEPT_PER_TENANT);
  }

  /** Everything held, a tenant's records newest first; the backlog is empty afterwards. */
  take(): SnapshotRecord[] {
    const records = [...[...this.#byTenant.values()].flat(), ...this.#unattributed];
    this.#byTenant.clear();
    this.#unattributed.length = 0;
    return records;
  }
}

function sameRecord(a: SnapshotRecord, b: SnapshotRecord): boolean {
  if (compareNewestFirst(a, b) !== 0) return false;
  return a.value === null || b.value === null ? a.value === b.value : a.value.equals(b.value);
}
