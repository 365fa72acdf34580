import { setImmediate as nextTurn } from 'node:timers/promises';
import { type EncodedSnapshotRecord, encodeSnapshotMessage, MAX_DECODED_SNAPSHOT_BYTES } from './codec.js';
import { compareNewestFirst, decodeNewestPerTenant, noteHighestVersion } from './newest-per-tenant.js';
import type {
  PublishResult,
  SnapshotBus,
  SnapshotHandlers,
  SnapshotMessage,
  SnapshotSubscription,
} from './port.js';
import { RouteValidationCache } from './route-validation-cache.js';
import { decodeAndDeliver } from './sliced-delivery.js';

export const DEFAULT_IN_MEMORY_MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

/** Thrown by publish while the log is unavailable (as the Kafka adapter does when the broker is down). */
export class SnapshotBusUnavailableError extends Error {
  override readonly name = 'SnapshotBusUnavailableError';
}

/** A record in the in-memory log; offsets never change, compaction leaves gaps (as in Kafka). */
export type InMemoryRecord = EncodedSnapshotRecord & { offset: number };

/**
 * The "topic" of the in-memory bus: an append-only list of encoded records that several bus
 * instances in one process may share (the single-process dev mode runs the projector and the
 * gateway against one log). `setAvailable(false)` simulates a broker outage for tests.
 */
export class InMemorySnapshotLog {
  records: InMemoryRecord[] = [];
  /** The offset the next record gets: Kafka's high-water mark. */
  nextOffset = 0;
  /** Each key's newest record (the one a subscriber reading them all ends with), and how many others there are. */
  #newest = new Map<string, InMemoryRecord>();
  #superseded = 0;
  /** Where each subscriber reads next. */
  readonly #readers = new Set<{ next: number }>();
  #available = true;
  readonly #listeners = new Set<() => void>();

  get available(): boolean {
    return this.#available;
  }

  setAvailable(available: boolean): void {
    this.#available = available;
    for (const listener of this.#listeners) listener();
  }

  append(records: readonly EncodedSnapshotRecord[]): void {
    for (const encoded of records) {
      const record = { ...encoded, offset: this.nextOffset++ };
      this.records.push(record);
      if (this.#newest.has(record.key)) this.#superseded++;
      this.#keepIfNewest(record);
    }
    // As Kafka's log cleaner at its default min.cleanable.dirty.ratio (0.5), leaving the records a
    // subscriber has not read yet (the cleaner leaves the head of the log): about two records per key.
    if (this.#superseded > this.#newest.size) this.#clean(this.#readFrom(), false);
    for (const listener of this.#listeners) listener();
  }

  /**
   * Keeps only the newest record of each tenant, as Kafka's log cleaner eventually does; with
   * `dropTombstones` also removes tombstones (as after the topic's delete.retention.ms).
   */
  compact({ dropTombstones = false } = {}): void {
    this.#clean(this.nextOffset, dropTombstones);
  }

  /** A subscriber's read position (`next`: the next offset it reads); compaction leaves what is past it. */
  trackReader(reader: { next: number }): () => void {
    this.#readers.add(reader);
    return () => this.#readers.delete(reader);
  }

  #readFrom(): number {
    let from = this.nextOffset;
    for (const reader of this.#readers) from = Math.min(from, reader.next);
    return from;
  }

  /** Removes the records before `before` that are not their key's newest. */
  #clean(before: number, dropTombstones: boolean): void {
    this.records = this.records.filter(
      (record) =>
        record.offset >= before ||
        (this.#newest.get(record.key) === record && !(dropTombstones && record.value === null)),
    );
    this.#newest.clear();
    for (const record of this.records) this.#keepIfNewest(record);
    this.#superseded = this.records.length - this.#newest.size;
  }

  /** A key's newest is what decodeNewestPerTenant picks: its highest version, a tombstone at a tie. */
  #keepIfNewest(record: InMemoryRecord): void {
    const held = this.#newest.get(record.key);
    if (!held || compareNewestFirst(record, held) < 0) this.#newest.set(record.key, record);
  }

  /** Index of the first record at or after `offset`. */
  indexFrom(offset: number): number {
    let low = 0;
    let high = this.records.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (this.records[middle]!.offset < offset) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

export interface InMemorySnapshotBusOptions {
  log?: InMemorySnapshotLog;
  maxMessageBytes?: number;
  /** The gateways' inflate limit (default MAX_DECODED_SNAPSHOT_BYTES; tests set a smaller one). */
  maxDecodedBytes?: number;
}

export function createInMemorySnapshotBus(options: InMemorySnapshotBusOptions = {}): SnapshotBus & {
  log: InMemorySnapshotLog;
} {
  const log = options.log ?? new InMemorySnapshotLog();
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_IN_MEMORY_MAX_MESSAGE_BYTES;
  const maxDecodedBytes = options.maxDecodedBytes ?? MAX_DECODED_SNAPSHOT_BYTES;
  const subscriptions = new Set<SnapshotSubscription>();

  return {
    log,

    async publish(messages: readonly SnapshotMessage[]): Promise<PublishResult> {
      if (!log.available) throw new SnapshotBusUnavailableError('in-memory snapshot log is unavailable');
      const result: PublishResult = { published: [], failed: [] };
      const records: EncodedSnapshotRecord[] = [];
      for (const message of messages) {
        try {
          records.push(encodeSnapshotMessage(message, maxMessageBytes, maxDecodedBytes));
          result.published.push(message);
        } catch (error) {
          result.failed.push({ tenantId: message.tenantId, version: message.version, error: error as Error });
        }
      }
      log.append(records);
      return result;
    },

    async readNewestVersions(): Promise<Map<string, bigint>> {
      if (!log.available) throw new SnapshotBusUnavailableError('in-memory snapshot log is unavailable');
      const versions = new Map<string, bigint>();
      for (const record of log.records) noteHighestVersion(versions, record);
      return versions;
    },

    async subscribe(handlers: SnapshotHandlers): Promise<SnapshotSubscription> {
      // The high-water mark at start: caught up once the cursor (next offset to read) reaches it.
      const highWaterMark = log.nextOffset;
      /** `next`: the next offset to read (the cursor). */
      const reader = { next: 0 };
      const untrack = log.trackReader(reader);
      let caughtUp = false;
      let connected: boolean | undefined;
      let closed = false;
      /** A pump is scheduled or running; `changed`: the log changed since it read it. */
      let pumping = false;
      let changed = false;
      const routes = new RouteValidationCache();

      const pump = async (): Promise<void> => {
        if (connected !== log.available) {
          connected = log.available;
          handlers.onHealth({ connected, lag: Math.max(0, log.nextOffset - reader.next) });
        }
        if (!log.available) return;
        // The log as it is now; what is appended while this pump yields is the next one's.
        const end = log.nextOffset;
        const backlog = log.records.slice(log.indexFrom(reader.next));
        const decodingAt = decodeNewestPerTenant(backlog, maxDecodedBytes, routes);
        let delivered = false;
        for (const [index, record] of backlog.entries()) {
          // Other work gets the event loop between two tenants' decodes and within one, as with Kafka.
          if (delivered) await nextTurn();
          if (closed) return;
          reader.next = record.offset + 1;
          const delivery = await decodeAndDeliver(decodingAt(index), record.key, handlers, () => !closed);
          if (delivery === 'stopped') return;
          delivered = delivery === 'delivered';
          if (!caughtUp && reader.next >= highWaterMark) {
            caughtUp = true;
            handlers.onCaughtUp();
          }
        }
        reader.next = Math.max(reader.next, end);
        if (!caughtUp) {
          caughtUp = true;
          handlers.onCaughtUp();
        }
      };
      const schedule = (): void => {
        if (closed) return;
        changed = true;
        if (pumping) return;
        pumping = true;
        setImmediate(async () => {
          try {
            while (changed && !closed) {
              changed = false;
              await pump();
            }
          } finally {
            pumping = false;
          }
        });
      };
      const unlisten = log.onChange(schedule);
      schedule();

      const subscription: SnapshotSubscription = {
        async close() {
          closed = true;
          unlisten();
          untrack();
          subscriptions.delete(subscription);
        },
      };
      subscriptions.add(subscription);
      return subscription;
    },

    async close(): Promise<void> {
      await Promise.all([...subscriptions].map((subscription) => subscription.close()));
    },
  };
}
