/**
 * The event store port. Its semantics mirror EventStoreDB's so that the PostgreSQL adapter (default),
 * the EventStoreDB adapter and the in-memory adapter are interchangeable; one contract suite
 * (`contract.ts`) proves each of them.
 *
 * - A stream is an ordered list of events; revisions start at 0.
 * - Every event also gets a global `position` (bigint, strictly increasing in commit order) across
 *   all streams; `readAll`/`subscribeToAll` never skip a position that later becomes visible.
 */

export type ExpectedRevision = 'no_stream' | 'stream_exists' | 'any' | bigint;

export interface EventMetadata {
  actor: string;
  tenant_id: string | null;
  correlation_id: string;
  causation_id: string | null;
  occurred_at: string; // ISO-8601
  schema_version: number;
  /**
   * The control plane's Idempotency-Key attempt that appended it (a token the server made), when the
   * request sent a key: a retry finds the attempt's events by it, and in PostgreSQL the event is stored
   * only while that attempt holds its key (migration 0205).
   */
  idempotency_attempt?: string;
  /**
   * The Idempotency-Key attempt whose events this one undoes (a failed API key rotation revoking the
   * key it had issued): that attempt left nothing applied, so a retry that finds it runs the command.
   */
  idempotency_undoes?: string;
}

/** What a command hands to the store. */
export interface NewEvent<Type extends string = string, Data = unknown> {
  id?: string; // uuid; generated when absent
  type: Type;
  data: Data;
  metadata: EventMetadata;
}

/** What the store hands back. */
export interface RecordedEvent<Type extends string = string, Data = unknown> {
  id: string;
  type: Type;
  stream: string;
  revision: bigint;
  position: bigint;
  data: Data;
  metadata: EventMetadata;
  /**
   * The event's size as the store holds it, in bytes: its data's and metadata's serialised JSON (UTF-8).
   * Lets a reader bound the work a read costs by what it really read, not by how many events it was.
   */
  storedBytes: number;
}

/**
 * A unique value claimed by an append (e.g. `subdomain:acme`, `clerk_org:org_1`, `api_key:<hash>`).
 * `claim` fails the whole append with UniquenessViolationError if another stream holds the value;
 * `release` frees values this stream holds (releasing a value it does not hold is a no-op).
 */
export interface Reservations {
  claim?: readonly string[];
  release?: readonly string[];
}

export interface AppendOptions {
  expectedRevision?: ExpectedRevision; // default 'any'
  reservations?: Reservations;
}

export interface AppendResult {
  /** Revision of the last event appended. */
  nextExpectedRevision: bigint;
  /** Global position of the last event appended. */
  position: bigint;
}

export interface ReadStreamOptions {
  fromRevision?: bigint | 'start' | 'end';
  direction?: 'forwards' | 'backwards';
  maxCount?: number;
  /**
   * The read ends after the event that brings the events' `storedBytes` to this many: however large
   * the events, a read holds about this much (and at least one event, so a reader always moves on).
   * Default: no limit.
   */
  maxBytes?: number;
  /** The read is cut off after this many milliseconds (ReadTimeoutError). Default: no limit. */
  timeoutMs?: number;
}

export interface ReadAllOptions {
  /** Exclusive: events with position > fromPosition. Omit to read from the start. */
  fromPosition?: bigint;
  maxCount?: number;
  /**
   * The read ends after the event that brings the events' `storedBytes` to this many: however large
   * the events, a read holds about this much (and at least one event, so a reader always moves on).
   * Default: no limit.
   */
  maxBytes?: number;
  /** The read is cut off after this many milliseconds (ReadTimeoutError). Default: no limit. */
  timeoutMs?: number;
}

export interface SubscribeOptions {
  /** Exclusive checkpoint, as in ReadAllOptions. */
  fromPosition?: bigint;
}

/** Catch-up then live subscription. Iterate it; call close() to stop. */
export interface Subscription extends AsyncIterable<RecordedEvent> {
  close(): Promise<void>;
  /**
   * While the subscription reads events the store already holds: settles (never rejects) when that read
   * is done. Null while it waits for new events or for a retry. Lets a consumer that takes what is
   * available count a read in flight as available (adapters that push events need not have it).
   */
  readInFlight?(): Promise<void> | null;
}

/** Turns an old version of an event's data into the current one, on read. */
export type Upcaster = (event: RecordedEvent) => RecordedEvent;

export interface EventStore {
  appendToStream(stream: string, events: readonly NewEvent[], options?: AppendOptions): Promise<AppendResult>;
  /** Events of one stream; [] when the stream does not exist. */
  readStream(stream: string, options?: ReadStreamOptions): Promise<RecordedEvent[]>;
  readAll(options?: ReadAllOptions): Promise<RecordedEvent[]>;
  subscribeToAll(options?: SubscribeOptions): Subscription;
  /** The position of the newest committed event, 0n when empty. */
  headPosition(): Promise<bigint>;
  /** The stream holding a reserved value, or null when nobody holds it: a unique index over streams. */
  reservationHolder(value: string): Promise<string | null>;
  close(): Promise<void>;
}

export class WrongExpectedRevisionError extends Error {
  override readonly name = 'WrongExpectedRevisionError';
  constructor(
    readonly stream: string,
    readonly expected: ExpectedRevision,
    /** The stream's current revision, or 'no_stream'. */
    readonly actual: bigint | 'no_stream',
  ) {
    super(`stream ${stream}: expected revision ${String(expected)}, actual ${String(actual)}`);
  }
}

/** A read given `timeoutMs` ran past it; nothing was returned. */
export class ReadTimeoutError extends Error {
  override readonly name = 'ReadTimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`the event-store read ran past ${timeoutMs} ms`);
  }
}

export class UniquenessViolationError extends Error {
  override readonly name = 'UniquenessViolationError';
  constructor(
    readonly value: string,
    readonly heldBy: string | undefined,
  ) {
    super(`value ${value} is already reserved${heldBy ? ` by ${heldBy}` : ''}`);
  }
}
