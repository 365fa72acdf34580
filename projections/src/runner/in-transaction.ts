import type pg from 'pg';

/**
 * Runs `work` in one transaction on a pooled client: commit when it resolves, rollback when it throws.
 * With `idleTimeoutMs`, PostgreSQL ends the session when the transaction waits that long for its next
 * statement: a client gone without a word (its connection died silently) leaves no session behind
 * holding the transaction's locks — the checkpoint row every later batch needs.
 */
export async function inTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
  { idleTimeoutMs }: { idleTimeoutMs?: number | undefined } = {},
): Promise<T> {
  const client = await pool.connect();
  // A connection lost mid-transaction (server restarted, backend terminated) fails the query in flight;
  // the 'error' event it also emits on a checked-out client would otherwise end the process.
  const onConnectionLost = () => {};
  client.on('error', onConnectionLost);
  let broken = false;
  try {
    await client.query(
      idleTimeoutMs
        ? `begin; set local idle_in_transaction_session_timeout = ${Math.trunc(idleTimeoutMs)}`
        : 'begin',
    );
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
