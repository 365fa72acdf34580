import { randomUUID } from 'node:crypto';
import { CONTROL_PLANE_UPCASTERS } from '../../domain/event-upcasters.js';
import {
  type AppendOptions,
  type AppendResult,
  type EventStore,
  type NewEvent,
  type ReadAllOptions,
  type ReadStreamOptions,
  type RecordedEvent,
  type SubscribeOptions,
  type Subscription,
  UniquenessViolationError,
  WrongExpectedRevisionError,
} from '../port.js';
import { storedJsonBytes, upToStoredBytes } from '../stored-bytes.js';
import { ChangeSignal, catchUpSubscription } from '../subscription.js';
import type { UpcasterRegistry } from '../upcasting.js';
import {
  assertAppendInput,
  assertReadAllOptions,
  assertReadStreamOptions,
  assertStreamName,
  jsonRoundTrip,
  revisionMatches,
} from '../validation.js';

export interface InMemoryEventStoreOptions {
  /** Applied to every event read; default: the control plane's (old event names read as current ones). */
  upcasters?: UpcasterRegistry;
}

/**
 * The event store in process memory, for fast unit tests of the domain. It passes the same contract
 * suite as the PostgreSQL adapter. Appends run synchronously between awaits, so each one is atomic
 * and positions follow commit order by construction.
 */
export class InMemoryEventStore implements EventStore {
  private readonly log: RecordedEvent[] = [];
  private readonly streams = new Map<string, RecordedEvent[]>();
  /** reserved value → stream holding it */
  private readonly reservations = new Map<string, string>();
  private readonly changes = new ChangeSignal();
  private readonly subscriptions = new Set<Subscription>();
  private readonly upcasters: UpcasterRegistry;
  private closed = false;

  constructor({ upcasters = CONTROL_PLANE_UPCASTERS }: InMemoryEventStoreOptions = {}) {
    this.upcasters = upcasters;
  }

  async appendToStream(
    stream: string,
    events: readonly NewEvent[],
    options: AppendOptions = {},
  ): Promise<AppendResult> {
    this.assertOpen();
    assertAppendInput(stream, events, options);
    const expected = options.expectedRevision ?? 'any';
    const existing = this.streams.get(stream);
    const actual = existing ? BigInt(existing.length - 1) : 'no_stream';
    if (!revisionMatches(expected, actual)) throw new WrongExpectedRevisionError(stream, expected, actual);

    // Decide every reservation before changing anything, so a violation leaves no trace.
    const released = new Set(
      (options.reservations?.release ?? []).filter((value) => this.reservations.get(value) === stream),
    );
    for (const value of options.reservations?.claim ?? []) {
      const holder = this.reservations.get(value);
      if (holder !== undefined && holder !== stream && !released.has(value)) {
        throw new UniquenessViolationError(value, holder);
      }
    }

    const recorded = existing ?? [];
    let revision = existing ? BigInt(existing.length) : 0n;
    for (const event of events) {
      const data = jsonRoundTrip(event.data);
      const metadata = jsonRoundTrip(event.metadata);
      const record: RecordedEvent = {
        id: event.id ?? randomUUID(),
        type: event.type,
        stream,
        revision,
        position: BigInt(this.log.length + 1),
        data,
        metadata,
        storedBytes: storedJsonBytes(data, metadata),
      };
      recorded.push(record);
      this.log.push(record);
      revision += 1n;
    }
    this.streams.set(stream, recorded);
    for (const value of released) this.reservations.delete(value);
    for (const value of options.reservations?.claim ?? []) this.reservations.set(value, stream);
    this.changes.notify();
    return { nextExpectedRevision: revision - 1n, position: BigInt(this.log.length) };
  }

  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    this.assertOpen();
    assertStreamName(stream);
    assertReadStreamOptions(options);
    const events = this.streams.get(stream) ?? [];
    const direction = options.direction ?? 'forwards';
    const limit = options.maxCount ?? Number.POSITIVE_INFINITY;
    const from = options.fromRevision ?? (direction === 'forwards' ? 'start' : 'end');
    let selected: RecordedEvent[];
    if (direction === 'forwards') {
      const start = from === 'start' ? 0 : from === 'end' ? events.length : Number(from);
      selected = events.slice(start, start + Math.min(limit, events.length));
    } else {
      const last = from === 'end' ? events.length - 1 : from === 'start' ? 0 : Number(from);
      const end = Math.min(last, events.length - 1) + 1;
      selected = events.slice(Math.max(0, end - Math.min(limit, events.length)), end).reverse();
    }
    return upToStoredBytes(selected, options.maxBytes).map((event) => this.present(event));
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    this.assertOpen();
    assertReadAllOptions(options);
    // position p sits at index p - 1
    const start = Number(options.fromPosition ?? 0n);
    const limit = options.maxCount ?? this.log.length;
    return upToStoredBytes(this.log.slice(start, start + limit), options.maxBytes).map((event) =>
      this.present(event),
    );
  }

  subscribeToAll(options: SubscribeOptions = {}): Subscription {
    this.assertOpen();
    assertReadAllOptions(options);
    const subscription = catchUpSubscription(
      {
        readAfter: (position, maxCount) => this.readAll({ fromPosition: position, maxCount }),
        nextChange: (signal) => this.changes.next(signal),
        isTransient: () => false,
      },
      options.fromPosition ?? 0n,
      { onClose: () => this.subscriptions.delete(subscription) },
    );
    this.subscriptions.add(subscription);
    return subscription;
  }

  async headPosition(): Promise<bigint> {
    this.assertOpen();
    return BigInt(this.log.length);
  }

  async reservationHolder(value: string): Promise<string | null> {
    this.assertOpen();
    return this.reservations.get(value) ?? null;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.subscriptions].map((subscription) => subscription.close()));
  }

  private present(event: RecordedEvent): RecordedEvent {
    return this.upcasters.apply({
      ...event,
      data: jsonRoundTrip(event.data),
      metadata: jsonRoundTrip(event.metadata),
    });
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('the event store is closed');
  }
}
