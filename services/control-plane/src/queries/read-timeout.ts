import {
  isConnectionError,
  onNewConnection,
  StoreUnavailableError,
} from '@vantageedge/shared/postgres/lost-connections';
import type pg from 'pg';
import { ApiError } from '../http/errors.js';

/** Default CONTROL_PLANE_READ_STATEMENT_TIMEOUT_MS: how long one admin read's statement may run. */
export const DEFAULT_READ_STATEMENT_TIMEOUT_MS = 5_000;

const QUERY_CANCELED = '57014';
const READ_TIMEOUT_RETRY_AFTER_SECONDS = 1;

export const readTimedOut = (timeoutMs: number): ApiError =>
  new ApiError(
    503,
    'read_timeout',
    `the read ran past ${timeoutMs} ms (CONTROL_PLANE_READ_STATEMENT_TIMEOUT_MS): narrow it (filters, a shorter time range) or retry later`,
    [],
    { 'Retry-After': String(READ_TIMEOUT_RETRY_AFTER_SECONDS) },
  );

/**
 * The pool, whose promise-style `query` runs each statement in a read-only transaction of its own cut
 * off after `timeoutMs` (503 `read_timeout`): the pool has no statement timeout (the config-change lock
 * waits on its copy of the pool's options), so without one an admin read held a connection as long as
 * PostgreSQL took. Everything else (connect, events) is the pool's own. 0: no timeout.
 */
export function withReadTimeout(pool: pg.Pool, timeoutMs: number): pg.Pool {
  if (timeoutMs === 0) return pool;
  const query = (text: string | pg.QueryConfig, values?: unknown[]) =>
    readOnlyTimed(pool, timeoutMs, (client) => client.query(text, values));
  return new Proxy(pool, {
    get(target, property) {
      if (property === 'query') return query;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** `read` on a pooled connection, once more on a new one of its own when that connection was lost. */
async function readOnlyTimed<T>(
  pool: pg.Pool,
  timeoutMs: number,
  read: (client: pg.ClientBase) => Promise<T>,
): Promise<T> {
  let client: pg.PoolClient | undefined;
  // A connection that failed is not given back to the pool for the next request.
  let broken: Error | undefined;
  try {
    client = await pool.connect();
    return await inTimedTransaction(client, timeoutMs, read);
  } catch (error) {
    if (!isConnectionError(error)) throw error;
    broken = error instanceof Error ? error : new Error(String(error));
  } finally {
    client?.release(broken);
  }
  try {
    return await onNewConnection(pool, { readOnly: true }, (fresh) =>
      inTimedTransaction(fresh, timeoutMs, read),
    );
  } catch (error) {
    if (!isConnectionError(error)) throw error;
    throw new StoreUnavailableError(`PostgreSQL unavailable: ${String(error)}`, { cause: error });
  }
}

async function inTimedTransaction<T>(
  client: pg.ClientBase,
  timeoutMs: number,
  read: (client: pg.ClientBase) => Promise<T>,
): Promise<T> {
  // `set local`: the timeout ends with the transaction, so the connection goes back to the pool as it was.
  await client.query(`begin read only; set local statement_timeout = ${Math.trunc(timeoutMs)}`);
  try {
    const result = await read(client);
    await client.query('commit');
    return result;
  } catch (error) {
    if (isConnectionError(error)) throw error;
    await client.query('rollback');
    if ((error as { code?: unknown }).code === QUERY_CANCELED) throw readTimedOut(timeoutMs);
    throw error;
  }
}
