import type pg from 'pg';
import { isConnectionError } from './lost-connections.js';

const QUERY_CANCELED = '57014';

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
