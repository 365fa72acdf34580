import type pg from 'pg';

/**
 * A projection's checkpoint: the global position of the last event it applied, one row per projection
 * in `projection_checkpoints`, only ever advanced inside the transaction that applies the events, so a
 * crash anywhere leaves the projection and its checkpoint consistent (no event applied twice or skipped).
 */

type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

/** The checkpoint, 0n when the projection never ran. */
export async function readCheckpoint(db: Queryable, name: string): Promise<bigint> {
  const { rows } = await db.query<{ position: string }>(
    'select position from projection_checkpoints where name = $1',
    [name],
  );
  return BigInt(rows[0]?.position ?? 0);
}

/**
 * Inside an open transaction: locks the checkpoint row (creating it at 0 if missing) and returns its
 * position. The row lock serialises every writer of the projection (projector batches, replay swaps),
 * which is what makes a check-then-write of the position safe across processes.
 */
export async function lockCheckpoint(client: pg.PoolClient, name: string): Promise<bigint> {
  await client.query(
    'insert into projection_checkpoints (name, position) values ($1, 0) on conflict (name) do nothing',
    [name],
  );
  const { rows } = await client.query<{ position: string }>(
    'select position from projection_checkpoints where name = $1 for update',
    [name],
  );
  return BigInt(rows[0]?.position ?? 0);
}

/** Inside the transaction that holds the lock and wrote the projection. */
export async function advanceCheckpoint(
  client: pg.PoolClient,
  name: string,
  position: bigint,
): Promise<void> {
  await client.query('update projection_checkpoints set position = $2, updated_at = now() where name = $1', [
    name,
    position.toString(),
  ]);
}

/**
 * The checkpoint is not where this projector left it: another writer (a replay swap, a second
 * projector instance) moved it. The projector restarts from the stored checkpoint.
 */
export class CheckpointMovedError extends Error {
  override readonly name = 'CheckpointMovedError';
  constructor(
    readonly projection: string,
    readonly expected: bigint,
    readonly actual: bigint,
  ) {
    super(`checkpoint of ${projection} moved: expected ${expected}, found ${actual}`);
  }
}
