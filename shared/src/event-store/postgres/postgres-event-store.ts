import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { CONTROL_PLANE_UPCASTERS } from '../../domain/event-upcasters.js';
import {
  type AppendOptions,
  type AppendResult,
  type EventMetadata,
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
import { catchUpSubscription } from '../subscription.js';
import type { UpcasterRegistry } from '../upcasting.js';
import {
  assertAppendInput,
  assertReadAllOptions,
  assertReadStreamOptions,
  assertStreamName,
} from '../validation.js';
import { NotificationListener } from './notification-listener.js';

/** Must match the channel `event_store_append` (migrations/sql/0001_event_store.up.sql) notifies. */
export const APPEND_CHANNEL = 'event_store_appended';

export interface PostgresEventStoreOptions {
  /** Serves appends and reads; subscriptions also open one dedicated LISTEN connection. */
  pool: pg.Pool;
  /** Applied to every event read; default: the control plane's (old event names read as current ones). */
  upcasters?: UpcasterRegistry;
  /** Events per read while a subscription catches up. */
  subscriptionBatchSize?: number;
  /** Connection problems the store recovers from (lost LISTEN connection, retried reads). */
  onConnectionError?: (error: unknown) => void;
}

interface EventRow {
  position: string;
  id: string;
  stream: string;
  revision: string;
  type: string;
  data: unknown;
  metadata: EventMetadata;
}

const EVENT_COLUMNS = 'position, id, stream, revision, type, data, metadata';

/**
 * The default event store, on PostgreSQL (schema: migrations/sql/0001_event_store.up.sql).
 * Every append is one call of `event_store_append`, which decides expected revision and
 * reservations in the database and allocates positions in commit order (see the migration).
 */
export class PostgresEventStore implements EventStore {
  private readonly pool: pg.Pool;
  private readonly upcasters: UpcasterRegistry;
  private readonly listener: NotificationListener;
  private readonly subscriptions = new Set<Subscription>();
  private readonly batchSize: number;
  private readonly onConnectionError: (error: unknown) => void;
  private readonly onPoolError = (error: unknown) => this.onConnectionError(error);
  private closed = false;

  constructor({
    pool,
    upcasters = CONTROL_PLANE_UPCASTERS,
    subscriptionBatchSize = 500,
    onConnectionError,
  }: PostgresEventStoreOptions) {
    this.pool = pool;
    this.upcasters = upcasters;
    this.batchSize = subscriptionBatchSize;
    this.onConnectionError = onConnectionError ?? (() => undefined);
    this.listener = new NotificationListener({
      // keepAlive so a silently dead LISTEN connection is noticed and replaced
      connection: { ...pool.options, keepAlive: true },
      channel: APPEND_CHANNEL,
      onError: this.onConnectionError,
    });
    // An idle pooled connection that the server drops is reported as a pool 'error' event; without
    // a listener Node would crash the process. The next query simply gets a fresh connection.
    pool.on('error', this.onPoolError);
  }

  async appendToStream(
    stream: string,
    events: readonly NewEvent[],
    options: AppendOptions = {},
  ): Promise<AppendResult> {
    this.assertOpen();
    assertAppendInput(stream, events, options);
    const expected = options.expectedRevision ?? 'any';
    const claim = [...new Set(options.reservations?.claim ?? [])].sort();
    const release = [...new Set(options.reservations?.release ?? [])];
    try {
      const { rows } = await this.pool.query<{ next_expected_revision: string; last_position: string }>({
        // named: prepared once per connection, no parse/plan on every append
        name: 've_event_store_append',
        text: 'select next_expected_revision, last_position from event_store_append($1, $2, $3, $4, $5::jsonb[], $6::jsonb[], $7, $8)',
        values: [
          stream,
          String(expected),
          events.map((event) => event.id ?? randomUUID()),
          events.map((event) => event.type),
          events.map((event) => JSON.stringify(event.data)),
          events.map((event) => JSON.stringify(event.metadata)),
          claim,
          release,
        ],
      });
      const row = rows[0];
      if (!row) throw new Error('event_store_append returned no row');
      return {
        nextExpectedRevision: BigInt(row.next_expected_revision),
        position: BigInt(row.last_position),
      };
    } catch (error) {
      throw translateAppendError(error, stream, expected);
    }
  }

  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    this.assertOpen();
    assertStreamName(stream);
    assertReadStreamOptions(options);
    const direction = options.direction ?? 'forwards';
    const from = options.fromRevision ?? (direction === 'forwards' ? 'start' : 'end');
    const limit = options.maxCount ?? null;
    const { rows } =
      direction === 'forwards'
        ? await this.pool.query<EventRow>(
            `select ${EVENT_COLUMNS} from event_store_events
              where stream = $1 and revision >= $2 order by revision limit $3`,
            // 'end' forwards reads nothing, as in EventStoreDB
            [
              stream,
              from === 'start' ? '0' : from === 'end' ? '9223372036854775807' : from.toString(),
              limit,
            ],
          )
        : await this.pool.query<EventRow>(
            `select ${EVENT_COLUMNS} from event_store_events
              where stream = $1 and revision <= $2 order by revision desc limit $3`,
            [
              stream,
              from === 'end' ? '9223372036854775807' : from === 'start' ? '0' : from.toString(),
              limit,
            ],
          );
    return rows.map((row) => this.toRecorded(row));
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    this.assertOpen();
    assertReadAllOptions(options);
    // Safe as a plain "position > checkpoint" read only because positions are allocated in commit
    // order (see event_store_position in the migration): nothing below a visible position can
    // still be in flight.
    const { rows } = await this.pool.query<EventRow>(
      `select ${EVENT_COLUMNS} from event_store_events where position > $1 order by position limit $2`,
      [(options.fromPosition ?? 0n).toString(), options.maxCount ?? null],
    );
    return rows.map((row) => this.toRecorded(row));
  }

  subscribeToAll(options: SubscribeOptions = {}): Subscription {
    this.assertOpen();
    assertReadAllOptions(options);
    void this.listener.start();
    const subscription = catchUpSubscription(
      {
        readAfter: (position, maxCount) => this.readAll({ fromPosition: position, maxCount }),
        nextChange: (signal) => this.listener.changes.next(signal),
        isTransient: isConnectionError,
      },
      options.fromPosition ?? 0n,
      {
        batchSize: this.batchSize,
        onRetry: this.onConnectionError,
        onClose: () => {
          this.subscriptions.delete(subscription);
          if (this.subscriptions.size === 0) void this.listener.stop();
        },
      },
    );
    this.subscriptions.add(subscription);
    return subscription;
  }

  async headPosition(): Promise<bigint> {
    this.assertOpen();
    const { rows } = await this.pool.query<{ value: string }>('select value from event_store_position');
    return BigInt(rows[0]?.value ?? '0');
  }

  async reservationHolder(value: string): Promise<string | null> {
    this.assertOpen();
    const { rows } = await this.pool.query<{ stream: string }>(
      'select stream from event_store_reservations where value = $1',
      [value],
    );
    return rows[0]?.stream ?? null;
  }

  /** Stops subscriptions and the LISTEN connection. The pool belongs to the caller and stays open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.subscriptions].map((subscription) => subscription.close()));
    await this.listener.stop();
    this.pool.off('error', this.onPoolError);
  }

  private toRecorded(row: EventRow): RecordedEvent {
    return this.upcasters.apply({
      id: row.id,
      type: row.type,
      stream: row.stream,
      revision: BigInt(row.revision),
      position: BigInt(row.position),
      data: row.data,
      metadata: row.metadata,
    });
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('the event store is closed');
  }
}

interface PgError {
  code?: string;
  detail?: string;
  hint?: string;
}

function translateAppendError(
  error: unknown,
  stream: string,
  expected: AppendOptions['expectedRevision'],
): unknown {
  const { code, detail, hint } = (error ?? {}) as PgError;
  if (code === 'VE409') {
    const actual = detail === undefined || detail === 'no_stream' ? 'no_stream' : BigInt(detail);
    return new WrongExpectedRevisionError(stream, expected ?? 'any', actual);
  }
  if (code === 'VE410') return new UniquenessViolationError(detail ?? '', hint || undefined);
  return error;
}

/**
 * Errors a retry can cure: the connection broke (node errno codes, no SQLSTATE) or the server is
 * shutting down / starting up (class 08 connection exception, class 57 operator intervention).
 */
export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as PgError).code;
  if (code === undefined) return /connection|terminat|ECONN|socket|timeout/i.test(error.message);
  // 53300 too_many_connections; node errno codes (ECONNREFUSED, ECONNRESET, EPIPE…) start with E,
  // which no SQLSTATE class does.
  return code.startsWith('08') || code.startsWith('57P') || code === '53300' || code.startsWith('E');
}
