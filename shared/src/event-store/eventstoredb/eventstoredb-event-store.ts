import { randomUUID } from 'node:crypto';
import {
  type AllStreamResolvedEvent,
  type AppendExpectedRevision,
  BACKWARDS,
  CancelledError,
  DeadlineExceededError,
  END,
  EventStoreDBClient,
  excludeSystemEvents,
  FORWARDS,
  jsonEvent,
  NotLeaderError,
  type Position,
  type ReadPosition,
  type ResolvedEvent,
  START,
  StreamNotFoundError,
  UnavailableError,
  WrongExpectedVersionError,
} from '@eventstore/db-client';
import { CONTROL_PLANE_UPCASTERS } from '../../domain/event-upcasters.js';
import { jsonByteLength } from '../../json/json-bytes.js';
import {
  type AppendOptions,
  type AppendResult,
  type EventMetadata,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
  type ReadAllOptions,
  type ReadStreamOptions,
  ReadTimeoutError,
  type RecordedEvent,
  type SubscribeOptions,
  type Subscription,
  UniquenessViolationError,
  WrongExpectedRevisionError,
} from '../port.js';
import type { UpcasterRegistry } from '../upcasting.js';
import {
  assertAppendInput,
  assertReadAllOptions,
  assertReadStreamOptions,
  assertStreamName,
} from '../validation.js';
import { withoutQuotedConnectionString } from './connection-string.js';

/**
 * The event store on EventStoreDB (EVENT_STORE=eventstoredb, EVENTSTOREDB_URL), @eventstore/db-client 6.2.1.
 *
 * Positions: the port's single bigint `position` is the event's *prepare* position in the
 * transaction log (unique per event and increasing in $all order for gRPC appends). Reading after a
 * position p starts $all at {commit: p, prepare: p} and drops anything at or before p.
 *
 * Reservations: EventStoreDB has no multi-stream transaction, so each reserved value is its own
 * stream (`ve-reservation-<value>`) whose last event says who holds it, changed only with an
 * expected revision; the server's optimistic check is what makes two concurrent claims have one
 * winner. An append claims its values first, then appends, then releases; if the append fails the
 * values it took while free are released again, unless the reservation was written since: another
 * append of the same stream claimed the value too, and may be the one that was appended (a request
 * sent twice; should both fail, the value stays held by the stream — held too long, never held by
 * two). A crash between those steps can leave a value claimed by a
 * stream that never got its event: that is the price of no transactions, and differs from the
 * PostgreSQL adapter (which does all of it in one transaction).
 *
 * This adapter is written against the documented client API and type-checked, but no EventStoreDB
 * server can run where it was written: run the contract suite with EVENTSTOREDB_URL set before
 * trusting it.
 */

const RESERVATION_PREFIX = 've-reservation-';
const RESERVED = 'ValueReserved';
const RELEASED = 'ValueReleased';
const READ_PAGE = 500;

export interface EventStoreDbEventStoreOptions {
  /** e.g. esdb://127.0.0.1:2113?tls=false */
  url: string;
  /** Applied to every event read; default: the control plane's (old event names read as current ones). */
  upcasters?: UpcasterRegistry;
  onConnectionError?: (error: unknown) => void;
}

interface ReservationState {
  holder: string | undefined;
  revision: bigint | 'no_stream';
}

export class EventStoreDbEventStore implements EventStore {
  private readonly client: EventStoreDBClient;
  private readonly upcasters: UpcasterRegistry;
  private readonly onConnectionError: (error: unknown) => void;
  private readonly subscriptions = new Set<Subscription>();
  private closed = false;

  constructor({
    url,
    upcasters = CONTROL_PLANE_UPCASTERS,
    onConnectionError,
  }: EventStoreDbEventStoreOptions) {
    this.client = withoutQuotedConnectionString(url, () => EventStoreDBClient.connectionString(url));
    this.upcasters = upcasters;
    this.onConnectionError = onConnectionError ?? (() => undefined);
  }

  async appendToStream(
    stream: string,
    events: readonly NewEvent[],
    options: AppendOptions = {},
  ): Promise<AppendResult> {
    this.assertOpen();
    assertAppendInput(stream, events, options);
    if (stream.startsWith(RESERVATION_PREFIX) || stream.startsWith('$')) {
      throw new TypeError(`stream: ${stream} is reserved for the event store's own use`);
    }
    events.forEach((event, index) => {
      if (event.data === null || typeof event.data !== 'object') {
        throw new TypeError(`events[${index}].data: EventStoreDB JSON events need an object or array`);
      }
    });
    const expected = options.expectedRevision ?? 'any';
    const claim = [...new Set(options.reservations?.claim ?? [])].sort();
    const claimSet = new Set(claim);
    // Releasing and claiming the same value in one append leaves it held, as in PostgreSQL.
    const release = [...new Set(options.reservations?.release ?? [])].filter((value) => !claimSet.has(value));

    const taken: Array<{ value: string; revision: bigint }> = [];
    try {
      for (const value of claim) {
        const revision = await this.claim(value, stream);
        if (revision !== null) taken.push({ value, revision });
      }
      const result = await this.client.appendToStream(
        stream,
        events.map((event) =>
          jsonEvent({
            id: event.id ?? randomUUID(),
            type: event.type,
            data: event.data as Record<string, unknown>,
            metadata: event.metadata as unknown as Record<string, unknown>,
          }),
        ),
        { expectedRevision: toEsdbExpected(expected) },
      );
      for (const value of release) await this.release(value, stream);
      const position = result.position?.prepare;
      return {
        nextExpectedRevision: result.nextExpectedRevision,
        position: position ?? (await this.headPosition()),
      };
    } catch (error) {
      // Undo the claims of values that were free before this append.
      for (const { value, revision } of taken) {
        await this.undoClaim(value, stream, revision).catch(this.onConnectionError);
      }
      if (error instanceof WrongExpectedVersionError) {
        throw new WrongExpectedRevisionError(
          stream,
          expected,
          typeof error.actualVersion === 'bigint' ? error.actualVersion : 'no_stream',
        );
      }
      throw error;
    }
  }

  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    this.assertOpen();
    assertStreamName(stream);
    assertReadStreamOptions(options);
    const direction = options.direction ?? 'forwards';
    const from = options.fromRevision ?? (direction === 'forwards' ? 'start' : 'end');
    const events: RecordedEvent[] = [];
    const deadline = readDeadline(options.timeoutMs);
    try {
      const read = this.client.readStream(stream, {
        direction: direction === 'forwards' ? FORWARDS : BACKWARDS,
        fromRevision: from === 'start' ? START : from === 'end' ? END : from,
        ...(options.maxCount === undefined ? {} : { maxCount: options.maxCount }),
        ...deadline.left(),
      });
      let bytes = 0;
      for await (const resolved of read as AsyncIterable<ResolvedEvent>) {
        const event = this.toRecorded(resolved);
        if (!event) continue;
        events.push(event);
        bytes += event.storedBytes;
        // Leaving the loop cancels the rest of the read.
        if (options.maxBytes !== undefined && bytes >= options.maxBytes) break;
      }
    } catch (error) {
      if (error instanceof StreamNotFoundError) return [];
      throw deadline.translate(error);
    }
    return events;
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    this.assertOpen();
    assertReadAllOptions(options);
    const wanted = options.maxCount ?? Number.POSITIVE_INFINITY;
    const maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
    let bytes = 0;
    const after = options.fromPosition ?? 0n;
    const events: RecordedEvent[] = [];
    let from: ReadPosition = toReadPosition(after);
    // Page through $all, skipping system and reservation events, until enough user events are found.
    let delivered = after; // prepare position of the last record handed out or skipped
    // One deadline for every page the read takes.
    const deadline = readDeadline(options.timeoutMs);
    try {
      for (;;) {
        let last: Position | undefined;
        let seen = 0;
        const read = this.client.readAll({
          fromPosition: from,
          direction: FORWARDS,
          maxCount: READ_PAGE,
          ...deadline.left(),
        });
        for await (const resolved of read as AsyncIterable<AllStreamResolvedEvent>) {
          seen += 1;
          const position = resolved.event?.position;
          // readAll's start is inclusive: the record a page starts at was seen on the previous page.
          if (!position || position.prepare <= delivered) continue;
          last = position;
          delivered = position.prepare;
          const event = this.toRecorded(resolved);
          if (!event) continue;
          events.push(event);
          bytes += event.storedBytes;
          if (events.length >= wanted || bytes >= maxBytes) return events;
        }
        if (seen < READ_PAGE || !last) return events;
        from = last;
      }
    } catch (error) {
      throw deadline.translate(error);
    }
  }

  subscribeToAll(options: SubscribeOptions = {}): Subscription {
    this.assertOpen();
    assertReadAllOptions(options);
    const client = this.client;
    const toRecorded = (resolved: AllStreamResolvedEvent) => this.toRecorded(resolved);
    const onConnectionError = this.onConnectionError;
    let stopped = false;
    let current: { unsubscribe(): Promise<void> } | undefined;

    // EventStoreDB's own catch-up subscription, re-opened from the last delivered position when it
    // fails on a transient error; events at or before that position are dropped, so none repeats.
    async function* follow(): AsyncGenerator<RecordedEvent, void, undefined> {
      let checkpoint = options.fromPosition ?? 0n;
      let failures = 0;
      while (!stopped) {
        const native = client.subscribeToAll({
          fromPosition: toReadPosition(checkpoint),
          filter: excludeSystemEvents(),
        });
        current = native;
        try {
          for await (const resolved of native as AsyncIterable<AllStreamResolvedEvent>) {
            failures = 0;
            const event = toRecorded(resolved);
            if (!event || event.position <= checkpoint) continue;
            checkpoint = event.position;
            yield event;
          }
        } catch (error) {
          if (stopped) return;
          if (!isTransient(error)) throw error;
          failures += 1;
          onConnectionError(error);
          await new Promise((resolve) => setTimeout(resolve, Math.min(50 * 2 ** (failures - 1), 2_000)));
        } finally {
          await native.unsubscribe().catch(() => undefined);
        }
      }
    }

    const iterator = follow();
    const subscription: Subscription = {
      [Symbol.asyncIterator]: () => iterator,
      close: async () => {
        stopped = true;
        await current?.unsubscribe().catch(() => undefined);
        await iterator.return(undefined);
        this.subscriptions.delete(subscription);
      },
    };
    this.subscriptions.add(subscription);
    return subscription;
  }

  async headPosition(): Promise<bigint> {
    this.assertOpen();
    let from: ReadPosition = END;
    for (;;) {
      let seen = 0;
      let last: Position | undefined;
      const read = this.client.readAll({ fromPosition: from, direction: BACKWARDS, maxCount: READ_PAGE });
      for await (const resolved of read as AsyncIterable<AllStreamResolvedEvent>) {
        seen += 1;
        last = resolved.event?.position;
        const event = this.toRecorded(resolved);
        if (event) return event.position;
      }
      if (seen < READ_PAGE || !last) return 0n;
      from = last;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.subscriptions].map((subscription) => subscription.close()));
    await this.client.dispose();
  }

  async reservationHolder(value: string): Promise<string | null> {
    this.assertOpen();
    return (await this.reservation(value)).holder ?? null;
  }

  /**
   * Claims `value` for `stream`: the reservation's revision this claim wrote when the value was free
   * (what `undoClaim` may free again), null when the stream held it already. A value the stream holds
   * is claimed again all the same, so that the reservation shows this claim to an append of the same
   * stream that took the value a moment before and then fails.
   */
  private async claim(value: string, stream: string): Promise<bigint | null> {
    for (;;) {
      const state = await this.reservation(value);
      if (state.holder !== undefined && state.holder !== stream) {
        throw new UniquenessViolationError(value, state.holder);
      }
      try {
        const written = await this.client.appendToStream(
          RESERVATION_PREFIX + value,
          jsonEvent({ type: RESERVED, data: { value, stream } }),
          { expectedRevision: state.revision },
        );
        return state.holder === undefined ? written.nextExpectedRevision : null;
      } catch (error) {
        // Someone changed the reservation between our read and our write: read it again.
        if (!(error instanceof WrongExpectedVersionError)) throw error;
      }
    }
  }

  /** Frees a value a failed append took, unless its reservation was written after that claim. */
  private async undoClaim(value: string, stream: string, claimedAt: bigint): Promise<void> {
    const state = await this.reservation(value);
    if (state.holder !== stream || state.revision !== claimedAt) return;
    await this.client
      .appendToStream(RESERVATION_PREFIX + value, jsonEvent({ type: RELEASED, data: { value, stream } }), {
        expectedRevision: claimedAt,
      })
      .catch((error: unknown) => {
        // Claimed again since by an append of the same stream: it stays held.
        if (!(error instanceof WrongExpectedVersionError)) throw error;
      });
  }

  private async release(value: string, stream: string): Promise<void> {
    const state = await this.reservation(value);
    if (state.holder !== stream || state.revision === 'no_stream') return;
    await this.client
      .appendToStream(RESERVATION_PREFIX + value, jsonEvent({ type: RELEASED, data: { value, stream } }), {
        expectedRevision: state.revision,
      })
      .catch((error: unknown) => {
        // A concurrent change of this stream's own reservation; what it decided stands.
        if (!(error instanceof WrongExpectedVersionError)) throw error;
      });
  }

  private async reservation(value: string): Promise<ReservationState> {
    try {
      const read = this.client.readStream<{ type: string; data: { value: string; stream: string } }>(
        RESERVATION_PREFIX + value,
        { direction: BACKWARDS, fromRevision: END, maxCount: 1 },
      );
      for await (const resolved of read) {
        const event = resolved.event;
        if (!event) continue;
        return { holder: event.type === RESERVED ? event.data.stream : undefined, revision: event.revision };
      }
    } catch (error) {
      if (!(error instanceof StreamNotFoundError)) throw error;
    }
    return { holder: undefined, revision: 'no_stream' };
  }

  /** undefined for events the port does not expose: system streams, reservation streams, links. */
  private toRecorded(resolved: ResolvedEvent | AllStreamResolvedEvent): RecordedEvent | undefined {
    const event = resolved.event;
    if (!event || event.streamId.startsWith('$') || event.streamId.startsWith(RESERVATION_PREFIX))
      return undefined;
    if (event.type.startsWith('$')) return undefined;
    const data = event.isJson
      ? event.data
      : JSON.parse(Buffer.from(event.data as Uint8Array).toString('utf8'));
    const metadata =
      event.metadata instanceof Uint8Array
        ? (JSON.parse(Buffer.from(event.metadata).toString('utf8')) as EventMetadata)
        : (event.metadata as unknown as EventMetadata);
    // The client hands JSON data and metadata over parsed, without their bytes: those are measured again.
    const storedBytes =
      (event.data instanceof Uint8Array ? event.data.byteLength : jsonByteLength(event.data)) +
      (event.metadata instanceof Uint8Array ? event.metadata.byteLength : jsonByteLength(event.metadata));
    return this.upcasters.apply({
      id: event.id,
      type: event.type,
      stream: event.streamId,
      revision: event.revision,
      // $all reads always carry the position; stream reads only on servers that report it.
      position: event.position?.prepare ?? resolved.commitPosition ?? -1n,
      data,
      metadata,
      storedBytes,
    });
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('the event store is closed');
  }
}

function toEsdbExpected(expected: ExpectedRevision): AppendExpectedRevision {
  return expected;
}

function toReadPosition(after: bigint): ReadPosition {
  return after === 0n ? START : { commit: after, prepare: after };
}

/**
 * A read's `timeoutMs` as the client's deadline of each call it makes (what is left of it), and the
 * client's DeadlineExceededError as the port's ReadTimeoutError. Without `timeoutMs`: the client's own.
 */
function readDeadline(timeoutMs: number | undefined) {
  const until = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
  return {
    left(): { deadline?: number } {
      if (until === undefined || timeoutMs === undefined) return {};
      const left = until - Date.now();
      if (left <= 0) throw new ReadTimeoutError(timeoutMs);
      return { deadline: left };
    },
    translate(error: unknown): unknown {
      return timeoutMs !== undefined && error instanceof DeadlineExceededError
        ? new ReadTimeoutError(timeoutMs)
        : error;
    },
  };
}

function isTransient(error: unknown): boolean {
  return (
    error instanceof UnavailableError ||
    error instanceof DeadlineExceededError ||
    error instanceof CancelledError ||
    error instanceof NotLeaderError
  );
}
