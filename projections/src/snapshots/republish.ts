import type pg from 'pg';

type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

/**
 * Rebuilding the compacted snapshot topic when it was lost (broker data wiped, topic deleted): every
 * tenant's current snapshot (or tombstone) in `snapshot_state` is marked as not yet acknowledged, and
 * the running snapshot projector publishes them all again within its poll interval. The projector
 * stays the only publisher, so a tenant's messages keep their order on the topic.
 *
 * Returns how many tenants were queued.
 */
export async function requestSnapshotRepublish(db: Queryable): Promise<{ tenants: number }> {
  const { rowCount } = await db.query(
    'update snapshot_state set published_version = null, failed_version = null, publish_error = null',
  );
  return { tenants: rowCount ?? 0 };
}

/**
 * As requestSnapshotRepublish, unless tenants it queued (or new ones) are still waiting to be published:
 * undefined then, and nothing is queued. Repeated republishes (a topic that deletes old records) must
 * not queue the tenants already sent again before those still waiting: the queue goes by version, and
 * every tenant's real change, the newest version, behind them all.
 */
export async function requestSnapshotRepublishOnceSent(
  db: Queryable,
): Promise<{ tenants: number } | undefined> {
  const { rows } = await db.query<{ waiting: boolean }>(
    `select exists (
       select 1 from snapshot_state
        where published_version is null and (failed_version is null or failed_version < version)
     ) as waiting`,
  );
  if (rows[0]?.waiting === true) return undefined;
  return requestSnapshotRepublish(db);
}

/** Tenants whose current snapshot the bus has not acknowledged yet (and not refused for good). */
export async function countUnpublishedSnapshots(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ pending: string }>(
    `select count(*) as pending from snapshot_state
     where (published_version is null or published_version < version)
       and (failed_version is null or failed_version < version)`,
  );
  return Number(rows[0]?.pending ?? 0);
}

/**
 * Waits until the projector has published every queued snapshot; false if `timeoutMs` passed first
 * (the snapshot projector is not running, or the bus is unreachable).
 */
export async function waitForSnapshotsPublished(
  db: Queryable,
  options: { timeoutMs: number; pollMs?: number; onProgress?: (pending: number) => void },
): Promise<boolean> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const pending = await countUnpublishedSnapshots(db);
    options.onProgress?.(pending);
    if (pending === 0) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 500));
  }
}
