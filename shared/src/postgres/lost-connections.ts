import type pg from 'pg';
import { clientClassOf } from './connection-liveness.js';
import { onPooledConnection } from './pooled-connection.js';

/**
 * What to do when PostgreSQL ends a connection (a restart, a failover, pg_terminate_backend, a proxy's
 * idle timeout). The pool learns it only when it reads the socket's last bytes, so it may hand out a
 * connection that is already cut; the statement sent on it fails, though nothing may be wrong any more.
 *
 * `withConnectionRetry(pool)` sends such a statement once more, on a new connection of its own that is
 * read-only: a read answers as if nothing happened; a write is refused there by PostgreSQL before it
 * changes anything (SQLSTATE 25006), so no write is ever applied twice — except one marked
 * `repeatable` (it does the same when run twice), which is sent again as it is. When that fails too,
 * or a write was refused, the error is a `StoreUnavailableError` (the admin API answers 503
 * `store_unavailable`); `outcomeUnknown` only when PostgreSQL refused it as a write — when it cannot be
 * reached at all, a statement's kind is not known, so writes that matter are either `repeatable` or
 * look themselves up: event-store appends find out whether they committed (the PostgreSQL event
 * store's `appendToStream`).
 */

/** PostgreSQL did not answer. `outcomeUnknown`: a write was sent and may or may not have been committed. */
export class StoreUnavailableError extends Error {
  readonly outcomeUnknown: boolean;

  constructor(message: string, options: { outcomeUnknown?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StoreUnavailableError';
    this.outcomeUnknown = options.outcomeUnknown ?? false;
  }
}

/**
 * No connection of the pool came free within its `connectionTimeoutMillis` (PostgreSQL slow or stalled,
 * every connection busy with statements it does not answer): nothing was sent. Not a lost connection —
 * a connection of its own would take PostgreSQL past the pool's size, once for every request waiting —
 * so it is never sent again; the admin API answers 503 `store_unavailable`.
 */
export class PoolBusyError extends StoreUnavailableError {
  constructor(cause: unknown) {
    super(`no PostgreSQL connection came free in time: ${messageOf(cause)}`, { cause });
    this.name = 'PoolBusyError';
  }
}

/** pg-pool's error when a checkout waited `connectionTimeoutMillis` for a connection to come free. */
const POOL_WAIT_TIMED_OUT = 'timeout exceeded when trying to connect';

/** The pool's own wait for a free connection ran out (see PoolBusyError), as a PoolBusyError. */
export function poolBusyOr(error: unknown): unknown {
  return error instanceof Error && error.message === POOL_WAIT_TIMED_OUT ? new PoolBusyError(error) : error;
}

/**
 * Errors a new connection can cure: the connection broke (node errno codes, no SQLSTATE) or the server
 * is shutting down / starting up (class 08 connection exception, class 57P operator intervention). A
 * pool that had no connection free (PoolBusyError) is not one.
 */
export function isConnectionError(error: unknown): boolean {
  if (error instanceof PoolBusyError || poolBusyOr(error) !== error) return false;
  if (error instanceof StoreUnavailableError) return true;
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string') return /connection|terminat|ECONN|socket|timeout/i.test(error.message);
  // 53300 too_many_connections; node errno codes (ECONNREFUSED, ECONNRESET, EPIPE…) start with E,
  // which no SQLSTATE class does.
  return code.startsWith('08') || code.startsWith('57P') || code === '53300' || code.startsWith('E');
}

const REPEATABLE = Symbol('repeatable');
const RETRYING = new WeakSet<pg.Pool>();
/** How long a new connection may take when the pool sets no connectionTimeoutMillis. */
const CONNECT_TIMEOUT_MS = 5_000;

/** Marks a write that does the same when run twice: after a lost connection it is sent once more. */
export function repeatable<Query extends pg.QueryConfig>(query: Query): Query {
  return Object.assign(query, { [REPEATABLE]: true });
}

/**
 * The pool, whose promise-style `query` survives one lost connection as described above, and whose
 * promise-style `query` and `connect` fail with a PoolBusyError when no connection came free in time.
 */
export function withConnectionRetry(pool: pg.Pool): pg.Pool {
  if (RETRYING.has(pool)) return pool;
  const query = (...args: unknown[]): unknown => {
    const plain = pool.query.bind(pool) as (...args: unknown[]) => Promise<pg.QueryResult>;
    const submittable = typeof (args[0] as { submit?: unknown } | null)?.submit === 'function';
    // Callback style and submittables (cursors, streams) are left as they are.
    if (submittable || args.some((arg) => typeof arg === 'function')) return plain(...args);
    return plain(...args).catch(async (error: unknown) => {
      if (!isConnectionError(error)) throw poolBusyOr(error);
      const write = (args[0] as { [REPEATABLE]?: boolean } | null)?.[REPEATABLE] === true;
      try {
        return await onNewConnection(pool, { readOnly: !write }, (client) =>
          (client.query.bind(client) as (...args: unknown[]) => Promise<pg.QueryResult>)(...args),
        );
      } catch (retryError) {
        if ((retryError as { code?: unknown }).code === '25006') {
          throw new StoreUnavailableError(`PostgreSQL connection lost during a write: ${messageOf(error)}`, {
            outcomeUnknown: true,
            cause: error,
          });
        }
        if (!isConnectionError(retryError)) throw retryError;
        throw new StoreUnavailableError(`PostgreSQL unavailable: ${messageOf(retryError)}`, {
          cause: retryError,
        });
      }
    });
  };
  const connect = (...args: unknown[]): unknown => {
    const plain = pool.connect.bind(pool) as (...args: unknown[]) => Promise<pg.PoolClient>;
    if (args.length > 0) return plain(...args);
    return plain().catch((error: unknown) => {
      throw poolBusyOr(error);
    });
  };
  const retrying = withMethods(pool, { query, connect });
  RETRYING.add(retrying);
  return retrying;
}

/** The pool with its `query` replaced; everything else (connect, events, options) is the pool's own. */
export function withQuery(pool: pg.Pool, query: (...args: never[]) => unknown): pg.Pool {
  return withMethods(pool, { query });
}

function withMethods(pool: pg.Pool, methods: Partial<Record<'query' | 'connect', unknown>>): pg.Pool {
  return new Proxy(pool, {
    get(target, property) {
      if (property === 'query' || property === 'connect') {
        const replaced = methods[property];
        if (replaced !== undefined) return replaced;
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** Runs `work` on a connection of its own (not the pool's, but made like them), closed afterwards. */
export async function onNewConnection<T>(
  pool: pg.Pool,
  { readOnly }: { readOnly: boolean },
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const Client = clientClassOf(pool);
  const client = new Client({
    ...pool.options,
    connectionTimeoutMillis: pool.options.connectionTimeoutMillis || CONNECT_TIMEOUT_MS,
  });
  // A connection lost while in use fails the statement; the event itself must not crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
    if (readOnly) await client.query('set default_transaction_read_only = on');
    return await work(client);
  } finally {
    client.end().catch(() => undefined);
  }
}

/**
 * `read` on a pooled connection, once more on a new one of its own (read-only) when that connection was
 * lost; a second loss is a StoreUnavailableError. A connection that failed is not given back to the pool
 * for the next request.
 */
export async function readOnceMoreIfLost<T>(
  pool: pg.Pool,
  read: (client: pg.ClientBase) => Promise<T>,
): Promise<T> {
  try {
    return await onPooledConnection(pool, read);
  } catch (error) {
    if (!isConnectionError(error)) throw error;
  }
  try {
    return await onNewConnection(pool, { readOnly: true }, read);
  } catch (error) {
    if (!isConnectionError(error)) throw error;
    throw new StoreUnavailableError(`PostgreSQL unavailable: ${String(error)}`, { cause: error });
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
