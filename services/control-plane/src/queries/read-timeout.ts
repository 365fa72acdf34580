import {
  isConnectionError,
  readOnceMoreIfLost,
  withQuery,
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
    readOnceMoreIfLost(pool, (client) =>
      readOnlyWithTimeout(client, timeoutMs, readTimedOut, (c) => c.query(text, values)),
    );
  return withQuery(pool, query);
}

/**
 * `read` in a read-only transaction whose statements are cut off after `timeoutMs`; a statement cut off
 * is `timedOut(timeoutMs)`, rolled back.
 */
export async function readOnlyWithTimeout<T>(
  client: pg.ClientBase,
  timeoutMs: number,
  timedOut: (timeoutMs: number) => Error,
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
    if ((error as { code?: unknown }).code === QUERY_CANCELED) throw timedOut(timeoutMs);
    throw error;
  }
}
