import { type ConnectionLiveness, createLivePool } from '@vantageedge/shared/postgres/connection-liveness';
import { withConnectionRetry } from '@vantageedge/shared/postgres/lost-connections';
import type pg from 'pg';

/** Connections of the admin API's PostgreSQL pool (every tenant's admin requests share them). */
export const ADMIN_POOL_SIZE = 20;

/** Default CONTROL_PLANE_POOL_WAIT_MS. */
export const DEFAULT_POOL_WAIT_MS = 5_000;

/**
 * The admin API's pool. A request waits at most `waitMs` for one of its connections to come free (or for
 * a new one to connect): when PostgreSQL is slow or stalls, the connections stay busy, and without a wait
 * limit every request that comes meanwhile queued for ever — pg-pool's default — holding its client's
 * connection and memory, and was run late, for a client long gone. Past it the request fails with a
 * PoolBusyError (503 store_unavailable). A statement lost with its connection is sent again
 * (withConnectionRetry); one unanswered within the statement deadline (`liveness`) is lost with its
 * connection too (connection-liveness.ts), so a connection that died silently costs a request seconds.
 */
export function createAdminPool(options: {
  connectionString: string;
  max?: number | undefined;
  waitMs?: number | undefined;
  liveness?: Partial<ConnectionLiveness> | undefined;
}): pg.Pool {
  return withConnectionRetry(
    createLivePool(
      {
        connectionString: options.connectionString,
        max: options.max ?? ADMIN_POOL_SIZE,
        connectionTimeoutMillis: options.waitMs ?? DEFAULT_POOL_WAIT_MS,
      },
      options.liveness,
    ),
  );
}
