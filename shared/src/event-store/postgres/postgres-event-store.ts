import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { CONTROL_PLANE_UPCASTERS } from '../../domain/event-upcasters.js';
import { clientClassOf, DEFAULT_KEEPALIVE_IDLE_MS } from '../../postgres/connection-liveness.js';
import {
  isConnectionError,
  onNewConnection,
  PoolBusyError,
  readOnceMoreIfLost,
  StoreUnavailableError,
  withConnectionRetry,
} from '../../postgres/lost-connections.js';
import { onPooledConnection } from '../../postgres/pooled-connection.js';
import { readOnlyWithTimeout } from '../../postgres/read-only-with-timeout.js';
import {
  type AppendOptions,
  type AppendResult,
  type EventMetadata,
  type EventStore,
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
  stored_bytes: number;
}

interface AppendRow {
  next_expected_revision: string;
  last_position: string;
}

/** With each event, its size as the JSON text the server sends (RecordedEvent.storedBytes). */
const EVENT_COLUMNS =
  'position, id, stream, revision, type, data, metadata, octet_length(data::text) + octet_length(metadata::text) as stored_bytes';
/**
 * `read` (a select of EVENT_COLUMNS in `order`) cut after the row that brings its stored_bytes to
 * `maxBytes`, in the same statement: a running sum over the read's own rows, so the plan stays the
 * read's index range scan under its limit, and only the rows kept are sent. Without `maxBytes`: `read`.
 */
function upToMaxBytes(read: string, order: string, maxBytes: number | undefined): string {
  if (maxBytes === undefined) return read;
  return `select * from (
      select page.*, sum(stored_bytes) over (order by ${order} rows unbounded preceding) - stored_bytes as bytes_before
        from (${read}) as page
    ) as sized
    where bytes_before < ${maxBytes}
    order by ${order}`;
}

/**
 * How long a lost append's session may take to end once told to (pg_terminate_backend); still open
 * after that, the append's outcome is unknown.
 */
const SESSION_END_WAIT_MS = 5_000;

/** A server session: its process id, and when it started (a pid is used again once its session ended). */
interface ServerSession {
  pid: number;
  /** backend_start, as epoch seconds (exact text, compared as text). */
  started: string;
}

/** Each connection's server session, asked once: a pooled connection sends many appends. */
const SESSIONS = new WeakMap<pg.ClientBase, ServerSession>();

async function serverSessionOf(client: pg.ClientBase): Promise<ServerSession> {
  const known = SESSIONS.get(client);
  if (known) return known;
  const { rows } = await client.query<ServerSession>(
    `select pid, extract(epoch from backend_start)::text as started
       from pg_stat_activity where pid = pg_backend_pid()`,
  );
  const session = rows[0];
  if (!session) throw new Error('this connection has no server session in pg_stat_activity');
  SESSIONS.set(client, session);
  return session;
}

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
    // Reads survive a connection the server already ended (sent again on a new connection).
    this.pool = withConnectionRetry(pool);
    this.upcasters = upcasters;
    this.batchSize = subscriptionBatchSize;
    this.onConnectionError = onConnectionError ?? (() => undefined);
    this.listener = new NotificationListener({
      // Kept alive so a LISTEN connection that died silently is noticed and replaced (connection-liveness.ts):
      // it only ever waits, so without it the subscriptions would wait for ever.
      connection: {
        ...pool.options,
        keepAlive: true,
        keepAliveInitialDelayMillis: pool.options.keepAliveInitialDelayMillis || DEFAULT_KEEPALIVE_IDLE_MS,
      },
      client: clientClassOf(pool),
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
    const ids = events.map((event) => event.id ?? randomUUID());
    const query: pg.QueryConfig = {
      // named: prepared once per connection, no parse/plan on every append
      name: 've_event_store_append',
      text: 'select next_expected_revision, last_position from event_store_append($1, $2, $3, $4, $5::jsonb[], $6::jsonb[], $7, $8)',
      values: [
        stream,
        String(expected),
        ids,
        events.map((event) => event.type),
        events.map((event) => JSON.stringify(event.data)),
        events.map((event) => JSON.stringify(event.metadata)),
        claim,
        release,
      ],
    };
    try {
      const row = await this.append(query, stream, ids.at(-1) as string);
      return {
        nextExpectedRevision: BigInt(row.next_expected_revision),
        position: BigInt(row.last_position),
      };
    } catch (error) {
      throw translateAppendError(error, stream, expected);
    }
  }

  /**
   * One append that survives a lost connection. Its outcome is looked up on a new connection once the
   * server session that sent it has ended — the store ends it when it has not (it lives on when only
   * the client's side of the connection was lost, e.g. by a proxy), so nothing sent on it can commit
   * afterwards: committed → its result; not committed → sent once more, on a new connection. An outcome
   * that cannot be looked up (PostgreSQL unreachable, the session not ended) is a StoreUnavailableError
   * with outcomeUnknown.
   */
  private async append(
    query: pg.QueryConfig,
    stream: string,
    lastId: string,
    retry = true,
  ): Promise<AppendRow> {
    const sent: { session: ServerSession | null } = { session: null };
    const send = async (client: pg.ClientBase): Promise<AppendRow> => {
      // The server session of this connection, to end it and look the append up if it is lost; asking
      // fails on a connection already lost, before the append was sent.
      sent.session = await serverSessionOf(client);
      const row = (await client.query<AppendRow>(query)).rows[0];
      if (!row) throw new Error('event_store_append returned no row');
      return row;
    };
    try {
      return retry
        ? await onPooledConnection(this.pool, send)
        : await onNewConnection(this.pool, { readOnly: false }, send);
    } catch (error) {
      if (!isConnectionError(error)) throw error;
      this.onConnectionError(error);
      // A session never asked for was sent nothing.
      const committed =
        sent.session === null ? null : await this.committedAppend(sent.session, stream, lastId, error);
      if (committed) return committed;
      if (retry) return this.append(query, stream, lastId, false);
      throw new StoreUnavailableError(`PostgreSQL unavailable, nothing appended: ${String(error)}`, {
        cause: error,
      });
    }
  }

  /**
   * The append's row if it committed, null if it did not; throws when that cannot be known. The session
   * that sent it is ended first unless it already has (a pid and its start time name one session).
   */
  private async committedAppend(
    session: ServerSession,
    stream: string,
    lastId: string,
    lost: unknown,
  ): Promise<AppendRow | null> {
    try {
      return await onNewConnection(this.pool, { readOnly: true }, async (client) => {
        const { rows } = await client.query<{ ours: boolean | null; ended: boolean | null }>(
          `select extract(epoch from backend_start)::text = $2 as ours,
                  case when extract(epoch from backend_start)::text = $2
                       then pg_terminate_backend(pid, $3) end as ended
             from pg_stat_activity where pid = $1`,
          [session.pid, session.started, SESSION_END_WAIT_MS],
        );
        // No row, or another session's (the pid was used again): it had ended. Ours: ended now, or
        // (false) not within the wait; a session whose start this role may not see cannot be told.
        const open = rows[0];
        if (open && open.ours === null) {
          throw new Error(`the session that sent it (pid ${session.pid}) cannot be seen`);
        }
        if (open?.ours && !open.ended && (await sessionOpen(client, session))) {
          throw new Error(`the session that sent it (pid ${session.pid}) could not be ended`);
        }
        const found = await client.query<AppendRow>(
          `select revision as next_expected_revision, position as last_position
             from event_store_events where stream = $1 and id = $2`,
          [stream, lastId],
        );
        return found.rows[0] ?? null;
      });
    } catch (error) {
      throw new StoreUnavailableError(
        `PostgreSQL connection lost while appending to ${stream}; whether the events were stored is unknown (${String(lost)}; ${String(error)})`,
        { outcomeUnknown: true, cause: lost },
      );
    }
  }

  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    this.assertOpen();
    assertStreamName(stream);
    assertReadStreamOptions(options);
    const direction = options.direction ?? 'forwards';
    const from = options.fromRevision ?? (direction === 'forwards' ? 'start' : 'end');
    const limit = options.maxCount ?? null;
    const rows =
      direction === 'forwards'
        ? await this.select(
            upToMaxBytes(
              `select ${EVENT_COLUMNS} from event_store_events
                where stream = $1 and revision >= $2 order by revision limit $3`,
              'revision',
              options.maxBytes,
            ),
            // 'end' forwards reads nothing, as in EventStoreDB
            [
              stream,
              from === 'start' ? '0' : from === 'end' ? '9223372036854775807' : from.toString(),
              limit,
            ],
            options.timeoutMs,
          )
        : await this.select(
            upToMaxBytes(
              `select ${EVENT_COLUMNS} from event_store_events
                where stream = $1 and revision <= $2 order by revision desc limit $3`,
              'revision desc',
              options.maxBytes,
            ),
            [
              stream,
              from === 'end' ? '9223372036854775807' : from === 'start' ? '0' : from.toString(),
              limit,
            ],
            options.timeoutMs,
          );
    return rows.map((row) => this.toRecorded(row));
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    this.assertOpen();
    assertReadAllOptions(options);
    // Safe as a plain "position > checkpoint" read only because positions are allocated in commit
    // order (see event_store_position in the migration): nothing below a visible position can
    // still be in flight.
    const rows = await this.select(
      upToMaxBytes(
        `select ${EVENT_COLUMNS} from event_store_events where position > $1 order by position limit $2`,
        'position',
        options.maxBytes,
      ),
      [(options.fromPosition ?? 0n).toString(), options.maxCount ?? null],
      options.timeoutMs,
    );
    return rows.map((row) => this.toRecorded(row));
  }

  /**
   * The rows of a read; with `timeoutMs`, in a read-only transaction whose statement PostgreSQL cuts off
   * after it (ReadTimeoutError), on a pooled connection, once more on a new one if it was lost.
   */
  private async select(text: string, values: unknown[], timeoutMs: number | undefined): Promise<EventRow[]> {
    if (timeoutMs === undefined) return (await this.pool.query<EventRow>(text, values)).rows;
    const timedOut = (ms: number) => new ReadTimeoutError(ms);
    return readOnceMoreIfLost(this.pool, (client) =>
      readOnlyWithTimeout(
        client,
        timeoutMs,
        timedOut,
        async (c) => (await c.query<EventRow>(text, values)).rows,
      ),
    );
  }

  subscribeToAll(options: SubscribeOptions = {}): Subscription {
    this.assertOpen();
    assertReadAllOptions(options);
    void this.listener.start();
    const subscription = catchUpSubscription(
      {
        readAfter: (position, maxCount) => this.readAll({ fromPosition: position, maxCount }),
        nextChange: (signal) => this.listener.changes.next(signal),
        // A pool with no connection free is as passing as a lost connection: the subscription reads again.
        isTransient: (error) => isConnectionError(error) || error instanceof PoolBusyError,
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
      storedBytes: row.stored_bytes,
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

/** Whether a store error is one a retry can cure (re-exported: subscriptions and tests use it). */
export { isConnectionError };

/** Whether a server session is still in pg_stat_activity. */
async function sessionOpen(client: pg.ClientBase, session: ServerSession): Promise<boolean> {
  const { rowCount } = await client.query(
    'select 1 from pg_stat_activity where pid = $1 and extract(epoch from backend_start)::text = $2',
    [session.pid, session.started],
  );
  return (rowCount ?? 0) > 0;
}
