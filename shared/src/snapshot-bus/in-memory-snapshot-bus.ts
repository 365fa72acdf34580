import { decodeSnapshotRecord, type EncodedSnapshotRecord, encodeSnapshotMessage } from './codec.js';
import type {
  PublishResult,
  SnapshotBus,
  SnapshotHandlers,
  SnapshotMessage,
  SnapshotSubscription,
} from './port.js';

export const DEFAULT_IN_MEMORY_MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

/** Thrown by publish while the log is unavailable (as the Kafka adapter does when the broker is down). */
export class SnapshotBusUnavailableError extends Error {
  override readonly name = 'SnapshotBusUnavailableError';
}

/**
 * The "topic" of the in-memory bus: an append-only list of encoded records that several bus
 * instances in one process may share (the single-process dev mode runs the projector and the
 * gateway against one log). `setAvailable(false)` simulates a broker outage for tests.
 */
export class InMemorySnapshotLog {
  readonly records: EncodedSnapshotRecord[] = [];
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
    this.records.push(...records);
    for (const listener of this.#listeners) listener();
  }

  /** Keeps only the newest record of each tenant, as Kafka's log cleaner eventually does. */
  compact(): void {
    const newest = new Map<string, number>();
    for (const [index, record] of this.records.entries()) newest.set(record.key, index);
    const kept = this.records.filter((record, index) => newest.get(record.key) === index);
    this.records.splice(0, this.records.length, ...kept);
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

export interface InMemorySnapshotBusOptions {
  log?: InMemorySnapshotLog;
  maxMessageBytes?: number;
}

export function createInMemorySnapshotBus(options: InMemorySnapshotBusOptions = {}): SnapshotBus & {
  log: InMemorySnapshotLog;
} {
  const log = options.log ?? new InMemorySnapshotLog();
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_IN_MEMORY_MAX_MESSAGE_BYTES;
  const subscriptions = new Set<SnapshotSubscription>();

  return {
    log,

    async publish(messages: readonly SnapshotMessage[]): Promise<PublishResult> {
      if (!log.available) throw new SnapshotBusUnavailableError('in-memory snapshot log is unavailable');
      const result: PublishResult = { published: [], failed: [] };
      const records: EncodedSnapshotRecord[] = [];
      for (const message of messages) {
        try {
          records.push(encodeSnapshotMessage(message, maxMessageBytes));
          result.published.push(message);
        } catch (error) {
          result.failed.push({ tenantId: message.tenantId, version: message.version, error: error as Error });
        }
      }
      log.append(records);
      return result;
    },

    async subscribe(handlers: SnapshotHandlers): Promise<SnapshotSubscription> {
      // The log position at start, like Kafka's high-water marks: caught up once delivered this far.
      // (A compaction may shorten the log; the cursor then restarts below, which only re-delivers.)
      const highWaterMark = log.records.length;
      let cursor = 0;
      let caughtUp = false;
      let connected: boolean | undefined;
      let closed = false;
      let scheduled = false;

      const pump = (): void => {
        scheduled = false;
        if (closed) return;
        if (connected !== log.available) {
          connected = log.available;
          handlers.onHealth({ connected, lag: log.records.length - cursor });
        }
        if (!log.available) return;
        if (cursor > log.records.length) cursor = 0;
        while (cursor < log.records.length && !closed) {
          const record = log.records[cursor]!;
          cursor += 1;
          const decoded = decodeSnapshotRecord(record);
          if (decoded.ok) handlers.onMessage(decoded.message);
          else handlers.onInvalidMessage?.({ tenantId: record.key, reason: decoded.reason });
          if (!caughtUp && cursor >= highWaterMark) {
            caughtUp = true;
            handlers.onCaughtUp();
          }
        }
        if (!caughtUp && cursor >= highWaterMark && !closed) {
          caughtUp = true;
          handlers.onCaughtUp();
        }
      };
      const schedule = (): void => {
        if (scheduled || closed) return;
        scheduled = true;
        setImmediate(pump);
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
