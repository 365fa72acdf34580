import type pg from 'pg';
import { readCheckpoint } from '../runner/checkpoint.js';

/**
 * The published read API of the gateway snapshots' state (`snapshot_state`, written only by the
 * snapshot projector): what the control plane's rollout status needs to know.
 */

type Queryable = Pick<pg.Pool, 'query'>;

/** The snapshot projector's checkpoint row in `projection_checkpoints`. */
export const SNAPSHOT_PROJECTION = 'gateway_snapshots';

/**
 * The newest snapshot version of a tenant and whether it is deleted; null if never seen. `publishError`
 * is there when the snapshot bus refused that very version for good (too large): no replica will get
 * it, and they keep serving the tenant's previous config until its next change.
 */
export async function readTenantVersion(
  db: Queryable,
  tenantId: string,
): Promise<{ version: bigint; deleted: boolean; publishError?: string } | null> {
  const { rows } = await db.query<{ version: string; status: string; publish_error: string | null }>(
    `select version, status, case when failed_version = version then publish_error end as publish_error
     from snapshot_state where tenant_id = $1`,
    [tenantId],
  );
  const row = rows[0];
  if (!row) return null;
  return {
    version: BigInt(row.version),
    deleted: row.status === 'deleted',
    ...(row.publish_error ? { publishError: row.publish_error } : {}),
  };
}

/**
 * Since which position the snapshot projection has quarantined a tenant (it parked an event of the
 * tenant it could not fold: runner/quarantine.ts), or null. Every later event of the tenant is parked
 * too: its snapshot, and so every replica, stays as it was before that event until the snapshots are
 * refolded. `projection` names another checkpoint row (tests run several projectors).
 */
export async function readTenantQuarantine(
  db: Queryable,
  tenantId: string,
  projection = SNAPSHOT_PROJECTION,
): Promise<bigint | null> {
  const { rows } = await db.query<{ since: string | null }>(
    `select min(position) as since from projection_parked_events
      where projection = $1 and reason = 'failed' and tenant_id = $2`,
    [projection, tenantId],
  );
  const since = rows[0]?.since;
  return since === null || since === undefined ? null : BigInt(since);
}

/**
 * The global event position the snapshots include: every event up to it is folded into
 * `snapshot_state`. `projection` names another checkpoint row (tests run several projectors).
 */
export function readSnapshotsPosition(db: Queryable, projection = SNAPSHOT_PROJECTION): Promise<bigint> {
  return readCheckpoint(db, projection);
}
