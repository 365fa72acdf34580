import type { Socket } from 'node:net';
import type pg from 'pg';

/** What pg-pool and pg.Client keep of a connection still being opened (their own fields, not typed). */
interface PoolInternals {
  _clients?: unknown[];
}
interface ClientInternals {
  _connected?: boolean;
  connection?: { stream?: Pick<Socket, 'destroy'> };
}

/**
 * Gives up `pool`'s connections still being opened: their checkouts fail at once (a connection error)
 * instead of waiting for the handshake until the pool's connectionTimeoutMillis (45 s by default).
 * Nothing was sent on them. For a process that is stopping: a PostgreSQL that accepts connections and
 * never answers (one still recovering, a proxy in front of one that is down) would hold the stop as long.
 */
export function abandonOpeningConnections(pool: pg.Pool): void {
  for (const client of (pool as unknown as PoolInternals)._clients ?? []) {
    const internals = client as ClientInternals;
    if (internals._connected === false) internals.connection?.stream?.destroy();
  }
}

/**
 * Ends `pool` for a process that is stopping: idle connections are closed and connections in use are
 * waited for (each statement has its deadline), as `pool.end()` does, but connections still being opened
 * are given up (abandonOpeningConnections).
 */
export async function endPool(pool: pg.Pool): Promise<void> {
  const ended = pool.end();
  abandonOpeningConnections(pool);
  await ended;
}
