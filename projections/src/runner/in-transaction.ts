import type pg from 'pg';

/** Runs `work` in one transaction on a pooled client: commit when it resolves, rollback when it throws. */
export async function inTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  // A connection lost mid-transaction (server restarted, backend terminated) fails the query in flight;
  // the 'error' event it also emits on a checked-out client would otherwise end the process.
  const onConnectionLost = () => {};
  client.on('error', onConnectionLost);
  let broken = false;
  try {
    await client.query('begin');
    const result = await work(client);
    await client.query('commit');
    return result;
  } catch (error) {
    broken = await client.query('rollback').then(
      () => false,
      () => true,
    );
    throw error;
  } finally {
    client.off('error', onConnectionLost);
    // A client that cannot even roll back is closed, not handed out again.
    client.release(broken);
  }
}
