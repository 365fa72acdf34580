import type pg from 'pg';

/**
 * Gateways take a tenant's snapshot only above the version they hold (an older or equal one is a
 * redelivery), so a refold that gives a tenant other content than it had, at a lower version (its fold
 * now refuses an event and quarantines it at the event before) or at the same version (the fold now
 * reads the tenant's events differently), would leave every replica on the config from before the
 * refold. Such a snapshot is stored under the refold's position instead, as a new version with the
 * refolded content: the replicas take it, and rollout status compares them with it. A snapshot whose
 * content is the same as before keeps its version from before (one an earlier refold moved forward
 * stays there). Every event up to either version is folded (or parked), so the running projector
 * folds none of them into it again.
 */

/** A snapshot's content apart from its version, as a digest (jsonb prints keys in one order). */
function contentDigest(column: string): string {
  return `md5((${column} - 'version')::text)`;
}

/** Remembers, in the refold's transaction, each tenant's version and content before the refold. */
export async function rememberSnapshotsBeforeRefold(client: pg.PoolClient): Promise<void> {
  await client.query(
    `create temporary table snapshots_before_refold on commit drop as
     select tenant_id, version, status, event_time, ${contentDigest('snapshot')} as digest from snapshot_state`,
  );
}

/** A refolded snapshot that cannot get a version above its previous one: the log's last event is its tenant's. */
export class RefoldBehindGatewaysError extends Error {
  constructor(readonly tenantIds: readonly string[]) {
    super(
      `the refolded snapshots of tenant(s) ${tenantIds.join(', ')} differ from the ones gateways hold, ` +
        'but the last event of the log is theirs, so no version above those is free to publish them under; ' +
        'nothing was changed: run the refold again after the next change of any tenant',
    );
    this.name = 'RefoldBehindGatewaysError';
  }
}

/**
 * Gives every tenant whose refolded snapshot is not above its snapshot before the refold the version
 * its gateways must see: `position` (the refold's checkpoint) when its content changed, its previous
 * version when it did not. Returns the tenants moved to `position`. Throws RefoldBehindGatewaysError
 * when one of those already had that version (the caller rolls back).
 */
export async function moveChangedSnapshotsForward(
  client: pg.PoolClient,
  position: bigint,
): Promise<string[]> {
  const { rows } = await client.query<{ tenant_id: string; previous: string; changed: boolean }>(
    `select tenant_id, previous, changed from (
       select s.tenant_id, s.version, p.version as previous,
         (s.status <> p.status or ${contentDigest('s.snapshot')} is distinct from p.digest) as changed
       from snapshot_state s join snapshots_before_refold p on p.tenant_id = s.tenant_id
       where s.version <= p.version
     ) refolded
     where version < previous or changed
     order by tenant_id`,
  );
  const changed = rows.filter((row) => row.changed);
  const stuck = changed.filter((row) => BigInt(row.previous) >= position).map((row) => row.tenant_id);
  if (stuck.length > 0) throw new RefoldBehindGatewaysError(stuck);
  const versions = rows.map((row) => (row.changed ? position.toString() : row.previous));
  if (rows.length > 0) {
    await client.query(
      `update snapshot_state s set version = v.version,
         snapshot = case when s.snapshot is null then null
                    else jsonb_set(s.snapshot, '{version}', to_jsonb(v.version::text)) end,
         json_bytes = s.json_bytes + octet_length(v.version::text) - octet_length(s.version::text),
         updated_at = now()
       from unnest($1::uuid[], $2::bigint[]) as v(tenant_id, version)
       where s.tenant_id = v.tenant_id`,
      [rows.map((row) => row.tenant_id), versions],
    );
  }
  return changed.map((row) => row.tenant_id);
}
