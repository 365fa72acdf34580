import { setImmediate as nextTurn } from 'node:timers/promises';
import { type EncodedSnapshotRecord, encodeSnapshotMessage, MAX_DECODED_SNAPSHOT_BYTES } from './codec.js';
import { decodeNewestPerTenant } from './newest-per-tenant.js';
import type {
  PublishResult,
  SnapshotBus,
  SnapshotHandlers,
  SnapshotMessage,
  SnapshotSubscription,
} from './port.js';
import { RouteValidationCache } from './route-validation-cache.js';

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
    for (const record of records) this.records.push({ ...record, offset: this.nextOffset++ });
    for (const listener of this.#listeners) listener();
  }

  /**
   * Keeps only the newest record of each tenant, as Kafka's log cleaner eventually does; with
   * `dropTombstones` also removes tombstones (as after the topic's delete.retention.ms).
   */
  compact({ dropTombstones = false } = {}): void {
    const newest = new Map<string, number>();
    for (const record of this.records) newest.set(record.key, record.offset);
    this.records = this.records.filter(
      (record) => newest.get(record.key) === record.offset && !(dropTombstones && record.value === null),
    );
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

    async subscribe(handlers: SnapshotHandlers): Promise<SnapshotSubscription> {
      // The high-water mark at start: caught up once the cursor (next offset to read) reaches it.
      const highWaterMark = log.nextOffset;
      let cursor = 0;
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
          handlers.onHealth({ connected, lag: Math.max(0, log.nextOffset - cursor) });
        }
        if (!log.available) return;
        // The log as it is now; what is appended while this pump yields is the next one's.
        const end = log.nextOffset;
        const backlog = log.records.slice(log.indexFrom(cursor));
        const decodedAt = decodeNewestPerTenant(backlog, maxDecodedBytes, routes);
        let delivered = false;
        for (const [index, record] of backlog.entries()) {
          // Other work gets the event loop between two tenants' decodes, as with the Kafka bus.
          if (delivered) await nextTurn();
          if (closed) return;
          cursor = record.offset + 1;
          const decoded = decodedAt(index);
          delivered = decoded !== undefined;
          if (decoded?.ok) handlers.onMessage(decoded.message);
          else if (decoded) handlers.onInvalidMessage?.({ tenantId: record.key, reason: decoded.reason });
          if (!caughtUp && cursor >= highWaterMark) {
            caughtUp = true;
            handlers.onCaughtUp();
          }
        }
        cursor = Math.max(cursor, end);
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
