import type { TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import type { SnapshotMessage } from '@vantageedge/shared/snapshot-bus/port';
import type pg from 'pg';
import type { SnapshotState } from './fold.js';

/** The snapshot projector's and publisher's reads and writes of `snapshot_state` (migration 0030). */

type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

interface StateRow {
  tenant_id: string;
  version: string;
  status: 'live' | 'deleted';
  snapshot: TenantSnapshot | null;
  event_time: Date;
}

function toState(row: StateRow): SnapshotState {
  if (row.status === 'live' && row.snapshot) return { status: 'live', snapshot: row.snapshot };
  return {
    status: 'deleted',
    tenantId: row.tenant_id,
    version: BigInt(row.version),
    eventTime: row.event_time.toISOString(),
  };
}

export async function loadStates(
  client: pg.PoolClient,
  tenantIds: readonly string[],
): Promise<Map<string, SnapshotState>> {
  const { rows } = await client.query<StateRow>(
    `select tenant_id, version, status, snapshot, event_time from snapshot_state
     where tenant_id = any($1::uuid[]) for update`,
    [tenantIds],
  );
  return new Map(rows.map((row) => [row.tenant_id, toState(row)]));
}

export async function saveStates(client: pg.PoolClient, states: readonly SnapshotState[]): Promise<void> {
  if (states.length === 0) return;
  const ids: string[] = [];
  const versions: string[] = [];
  const statuses: string[] = [];
  const snapshots: Array<string | null> = [];
  const eventTimes: string[] = [];
  for (const state of states) {
    if (state.status === 'live') {
      ids.push(state.snapshot.tenant_id);
      versions.push(state.snapshot.version);
      statuses.push('live');
      snapshots.push(JSON.stringify(state.snapshot));
      eventTimes.push(state.snapshot.event_time);
    } else {
      ids.push(state.tenantId);
      versions.push(state.version.toString());
      statuses.push('deleted');
      snapshots.push(null);
      eventTimes.push(state.eventTime);
    }
  }
  await client.query(
    `insert into snapshot_state (tenant_id, version, status, snapshot, event_time)
     select * from unnest($1::uuid[], $2::bigint[], $3::text[], $4::jsonb[], $5::timestamptz[])
     on conflict (tenant_id) do update set version = excluded.version, status = excluded.status,
       snapshot = excluded.snapshot, event_time = excluded.event_time, updated_at = now()`,
    [ids, versions, statuses, snapshots, eventTimes],
  );
}

/** Snapshots whose current version the bus has not acknowledged (and not refused for good). */
export async function loadUnpublished(db: Queryable, limit: number): Promise<SnapshotMessage[]> {
  const { rows } = await db.query<StateRow>(
    `select tenant_id, version, status, snapshot, event_time from snapshot_state
     where (published_version is null or published_version < version)
       and (failed_version is null or failed_version < version)
     order by version limit $1`,
    [limit],
  );
  return rows.map((row): SnapshotMessage => {
    const version = BigInt(row.version);
    return row.status === 'live' && row.snapshot
      ? { kind: 'snapshot', tenantId: row.tenant_id, version, snapshot: row.snapshot }
      : { kind: 'tombstone', tenantId: row.tenant_id, version };
  });
}

export async function markPublished(db: Queryable, messages: readonly SnapshotMessage[]): Promise<void> {
  if (messages.length === 0) return;
  await db.query(
    `update snapshot_state s set published_version = greatest(coalesce(s.published_version, 0), p.version),
       publish_error = null
     from unnest($1::uuid[], $2::bigint[]) as p(tenant_id, version) where s.tenant_id = p.tenant_id`,
    [messages.map((m) => m.tenantId), messages.map((m) => m.version.toString())],
  );
}

export async function markFailed(
  db: Queryable,
  tenantId: string,
  version: bigint,
  error: string,
): Promise<void> {
  await db.query(
    'update snapshot_state set failed_version = $2, publish_error = $3 where tenant_id = $1 and version = $2',
    [tenantId, version.toString(), error],
  );
}
