import { readOnceMoreIfLost, withQuery } from '@vantageedge/shared/postgres/lost-connections';
import { readOnlyWithTimeout } from '@vantageedge/shared/postgres/read-only-with-timeout';
import type pg from 'pg';
import { readTimedOut } from '../http/errors.js';

/** Default CONTROL_PLANE_READ_STATEMENT_TIMEOUT_MS: how long one admin read's statement may run. */
export const DEFAULT_READ_STATEMENT_TIMEOUT_MS = 5_000;

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
