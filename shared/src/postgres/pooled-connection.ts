import type pg from 'pg';

/**
 * Runs `work` on a connection checked out of `pool`. While checked out, a connection has no listener
 * for its 'error' event (the pool listens only while it is idle), and PostgreSQL ending it (a restart,
 * a failover, pg_terminate_backend) emits one even between statements: unheard, it ends the process.
 * Here the loss fails the statement in flight or the next one instead, and a connection whose work
 * failed is closed rather than handed out again.
 */
export async function onPooledConnection<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  const ignore = () => undefined;
  client.on('error', ignore);
  try {
    const result = await work(client);
    client.off('error', ignore);
    client.release();
    return result;
  } catch (error) {
    client.release(error instanceof Error ? error : true);
    throw error;
  }
}
