import { randomUUID } from 'node:crypto';
import {
  type AppendOptions,
  type AppendResult,
  type EventStore,
  type NewEvent,
  type ReadStreamOptions,
  type RecordedEvent,
  UniquenessViolationError,
  WrongExpectedRevisionError,
} from '@vantageedge/shared/event-store/port';
import { storedJsonBytes } from '@vantageedge/shared/event-store/stored-bytes';

/**
 * An event store that keeps appends in memory, on top of the real one, which it never writes. A config
 * apply or rollback runs its steps on it first, through the very commands that then run for real, so a
 * step that would be refused (access, validation, the tenant's hosts and origins, limits, a taken
 * unique value) is refused before anything is appended. Streams, revisions and reservations read
 * through it include what was appended to it; the global log (`readAll`, `subscribeToAll`) is the real
 * one's, which no command reads.
 */
export function rehearsalStore(real: EventStore): EventStore {
  const appended = new Map<string, RecordedEvent[]>();
  /** Unique values as the appends left them: held by a stream, or released (null). */
  const holders = new Map<string, string | null>();
  let count = 0n;

  const allOf = async (stream: string) => [
    ...(await real.readStream(stream)),
    ...(appended.get(stream) ?? []),
  ];
  const holderOf = async (value: string) =>
    holders.has(value) ? (holders.get(value) ?? null) : real.reservationHolder(value);

  return {
    async appendToStream(stream: string, events: readonly NewEvent[], options: AppendOptions = {}) {
      const existing = await allOf(stream);
      const revision = existing.at(-1)?.revision ?? null;
      const expected = options.expectedRevision ?? 'any';
      const matches =
        expected === 'any' ||
        (expected === 'no_stream' && revision === null) ||
        (expected === 'stream_exists' && revision !== null) ||
        expected === revision;
      if (!matches) throw new WrongExpectedRevisionError(stream, expected, revision ?? 'no_stream');
      for (const value of options.reservations?.claim ?? []) {
        const holder = await holderOf(value);
        if (holder !== null && holder !== stream) throw new UniquenessViolationError(value, holder);
      }
      for (const value of options.reservations?.release ?? []) {
        if ((await holderOf(value)) === stream) holders.set(value, null);
      }
      for (const value of options.reservations?.claim ?? []) holders.set(value, stream);
      const head = (await real.headPosition()) + count;
      const recorded = events.map(
        (event, index): RecordedEvent => ({
          id: event.id ?? randomUUID(),
          type: event.type,
          stream,
          revision: (revision ?? -1n) + 1n + BigInt(index),
          position: head + 1n + BigInt(index),
          data: event.data,
          metadata: event.metadata,
          storedBytes: storedJsonBytes(event.data, event.metadata),
        }),
      );
      count += BigInt(recorded.length);
      appended.set(stream, [...(appended.get(stream) ?? []), ...recorded]);
      const last = recorded.at(-1);
      return {
        nextExpectedRevision: last?.revision ?? revision ?? -1n,
        position: last?.position ?? head,
      } satisfies AppendResult;
    },
    async readStream(stream: string, options: ReadStreamOptions = {}) {
      const own = appended.get(stream);
      if (own === undefined) return real.readStream(stream, options);
      const from = options.fromRevision;
      // A fold read on from its revision, or a page of one (aggregate-folds.ts), reads the real stream
      // from there too.
      if (typeof from === 'bigint' && options.direction !== 'backwards') {
        const { maxCount } = options;
        const events = [
          ...(await real.readStream(stream, {
            fromRevision: from,
            ...(maxCount === undefined ? {} : { maxCount }),
          })),
          ...own.filter((event) => event.revision >= from),
        ];
        return maxCount === undefined ? events : events.slice(0, maxCount);
      }
      return select(await allOf(stream), options);
    },
    readAll: (options) => real.readAll(options),
    subscribeToAll: (options) => real.subscribeToAll(options),
    headPosition: async () => (await real.headPosition()) + count,
    reservationHolder: holderOf,
    // The real store is the caller's to close.
    close: async () => {},
  };
}

/** A stream's events as ReadStreamOptions choose them (the port's semantics: revisions from 0). */
function select(events: RecordedEvent[], options: ReadStreamOptions): RecordedEvent[] {
  const backwards = options.direction === 'backwards';
  const limit = options.maxCount ?? events.length;
  const from = options.fromRevision ?? (backwards ? 'end' : 'start');
  if (!backwards) {
    const start = from === 'start' ? 0 : from === 'end' ? events.length : Number(from);
    return events.slice(start, start + limit);
  }
  const last = from === 'end' ? events.length - 1 : from === 'start' ? 0 : Number(from);
  const end = Math.min(last, events.length - 1) + 1;
  return events.slice(Math.max(0, end - limit), end).reverse();
}
