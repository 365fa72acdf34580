import type { TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import type { SnapshotMessage } from '@vantageedge/shared/snapshot-bus/port';
import type pg from 'pg';
import { inTransaction } from '../runner/in-transaction.js';
import type { SnapshotState } from './fold.js';
import type { KeptSnapshot, SaveMark } from './kept-snapshots.js';

/** The snapshot projector's and publisher's reads and writes of `snapshot_state` (migration 0030). */

export type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

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

/** The mark of a row's last write (kept-snapshots.ts): its version and its transaction's time, in microseconds. */
const SAVE_MARK = `s.version::text || '@' || (extract(epoch from s.updated_at) * 1000000)::bigint::text`;

/**
 * These tenants' states, their rows locked. A tenant in `kept` whose row still carries the kept state's
 * mark gets the kept state: its snapshot is neither sent by PostgreSQL nor parsed again. With
 * `skipLocked`, a row another transaction holds is left out instead of waited for.
 */
export async function loadStates(
  client: pg.PoolClient,
  tenantIds: readonly string[],
  kept: ReadonlyMap<string, KeptSnapshot> = new Map(),
  { skipLocked = false }: { skipLocked?: boolean } = {},
): Promise<Map<string, SnapshotState>> {
  const { rows } = await client.query<StateRow & { kept_as: string | null }>(
    `select s.tenant_id, s.version, s.status, s.event_time,
       case when k.mark = ${SAVE_MARK} then k.tenant_id end as kept_as,
       case when k.mark = ${SAVE_MARK} then null else s.snapshot end as snapshot
     from snapshot_state s
     left join unnest($2::text[], $3::text[]) as k(tenant_id, mark) on k.tenant_id::uuid = s.tenant_id
     where s.tenant_id = any($1::uuid[]) for update of s${skipLocked ? ' skip locked' : ''}`,
    [tenantIds, [...kept.keys()], [...kept.values()].map((entry) => entry.mark)],
  );
  return new Map(
    rows.map((row) => {
      if (row.kept_as === null) return [row.tenant_id, toState(row)];
      const keptState = kept.get(row.kept_as)?.state;
      if (!keptState) throw new Error(`kept snapshot of tenant ${row.kept_as} missing`);
      return [row.tenant_id, keptState];
    }),
  );
}

/**
 * The bytes of JSON of these tenants' stored snapshots, without reading the snapshots or locking the
 * rows; 0 for a tombstone or a tenant not stored yet.
 */
export async function loadJsonBytes(
  db: Queryable,
  tenantIds: readonly string[],
): Promise<Map<string, number>> {
  const { rows } = await db.query<{ tenant_id: string; json_bytes: string | null }>(
    'select tenant_id, json_bytes from snapshot_state where tenant_id = any($1::uuid[])',
    [tenantIds],
  );
  const sizes = new Map(tenantIds.map((tenantId) => [tenantId, 0]));
  for (const row of rows) sizes.set(row.tenant_id, Number(row.json_bytes ?? 0));
  return sizes;
}

/**
 * Snapshots with more JSON than this are saved one per statement, as a plain parameter: in the array
 * of the many-row statement node-postgres escapes every quote of the JSON and PostgreSQL unescapes it
 * again (about 150 ms more for a 14 MB snapshot, of about 450).
 */
const SAVE_ALONE_ABOVE_BYTES = 1024 * 1024;

const UPSERT_SET = `on conflict (tenant_id) do update set version = excluded.version, status = excluded.status,
       snapshot = excluded.snapshot, json_bytes = excluded.json_bytes, event_time = excluded.event_time,
       updated_at = now()`;

/** A saved row: the mark of the write and the bytes of its snapshot's JSON (0 for a tombstone). */
export interface SavedState {
  mark: SaveMark;
  jsonBytes: number;
}

interface SavedRow {
  tenant_id: string;
  mark: string;
  json_bytes: string;
}

const RETURNING_SAVED = `returning s.tenant_id, ${SAVE_MARK} as mark, coalesce(s.json_bytes, 0) as json_bytes`;

/**
 * Upserts these states. Returns, per tenant, the mark of the write and the bytes of the snapshot's JSON
 * (0 for a tombstone).
 */
export async function saveStates(
  client: pg.PoolClient,
  states: readonly SnapshotState[],
): Promise<Map<string, SavedState>> {
  const saved = new Map<string, SavedState>();
  if (states.length === 0) return saved;
  const record = (rows: readonly SavedRow[]) => {
    for (const row of rows) saved.set(row.tenant_id, { mark: row.mark, jsonBytes: Number(row.json_bytes) });
  };
  const ids: string[] = [];
  const versions: string[] = [];
  const statuses: string[] = [];
  const snapshots: Array<string | null> = [];
  const jsonBytes: Array<number | null> = [];
  const eventTimes: string[] = [];
  for (const state of states) {
    if (state.status === 'live') {
      const json = JSON.stringify(state.snapshot);
      const bytes = Buffer.byteLength(json, 'utf8');
      if (json.length > SAVE_ALONE_ABOVE_BYTES) {
        const { rows } = await client.query<SavedRow>(
          `insert into snapshot_state as s (tenant_id, version, status, snapshot, json_bytes, event_time)
           values ($1::uuid, $2::bigint, 'live', $3::jsonb, $4::bigint, $5::timestamptz) ${UPSERT_SET}
           ${RETURNING_SAVED}`,
          [state.snapshot.tenant_id, state.snapshot.version, json, bytes, state.snapshot.event_time],
        );
        record(rows);
        continue;
      }
      ids.push(state.snapshot.tenant_id);
      versions.push(state.snapshot.version);
      statuses.push('live');
      snapshots.push(json);
      jsonBytes.push(bytes);
      eventTimes.push(state.snapshot.event_time);
    } else {
      ids.push(state.tenantId);
      versions.push(state.version.toString());
      statuses.push('deleted');
      snapshots.push(null);
      jsonBytes.push(null);
      eventTimes.push(state.eventTime);
    }
  }
  if (ids.length === 0) return saved;
  const { rows } = await client.query<SavedRow>(
    `insert into snapshot_state as s (tenant_id, version, status, snapshot, json_bytes, event_time)
     select * from unnest($1::uuid[], $2::bigint[], $3::text[], $4::jsonb[], $5::bigint[], $6::timestamptz[])
     ${UPSERT_SET}
     ${RETURNING_SAVED}`,
    [ids, versions, statuses, snapshots, jsonBytes, eventTimes],
  );
  record(rows);
  return saved;
}

/** What the bus has neither acknowledged nor refused at the row's current version. */
const PENDING = `(published_version is null or published_version < version)
  and (failed_version is null or failed_version < version)`;

/** A snapshot waiting for the bus, without its body. */
export interface PendingSnapshot {
  tenantId: string;
  version: bigint;
  /** Bytes of its JSON (what the publisher stringifies and gzips); 0 for a tombstone. */
  jsonBytes: number;
  tombstone: boolean;
}

/**
 * Snapshots the bus has neither acknowledged nor refused at their current version, without their
 * bodies: those of at most `largeBytes` of JSON oldest first, or (`large`) the larger ones, smallest
 * first. A tenant in `exclude` (being published) is left out. Sized by their JSON, not as stored:
 * jsonb compresses repeated route policies some 40×.
 */
export async function loadPending(
  db: Queryable,
  options: { limit: number; largeBytes: number; large: boolean; exclude: readonly string[] },
): Promise<PendingSnapshot[]> {
  const { rows } = await db.query<{ tenant_id: string; version: string; json_bytes: string; status: string }>(
    `select tenant_id, version, json_bytes, status from (
       select tenant_id, version, coalesce(json_bytes, 0) as json_bytes, status
         from snapshot_state where ${PENDING} and tenant_id <> all($4::uuid[])
     ) pending
     where (json_bytes > $2) = $3
     order by case when $3 then json_bytes end, version limit $1`,
    [options.limit, options.largeBytes, options.large, options.exclude],
  );
  return rows.map((row) => ({
    tenantId: row.tenant_id,
    version: BigInt(row.version),
    jsonBytes: Number(row.json_bytes),
    tombstone: row.status === 'deleted',
  }));
}

/**
 * The current snapshots (or tombstones) of these tenants that are still pending, oldest first, with the
 * bytes of each one's JSON (0 for a tombstone).
 */
export async function loadPendingMessages(
  db: Queryable,
  tenantIds: readonly string[],
): Promise<Array<{ message: SnapshotMessage; jsonBytes: number }>> {
  if (tenantIds.length === 0) return [];
  const { rows } = await db.query<StateRow & { json_bytes: string | null }>(
    `select tenant_id, version, status, snapshot, event_time, json_bytes from snapshot_state
     where tenant_id = any($1::uuid[]) and ${PENDING} order by version`,
    [tenantIds],
  );
  return rows.map((row) => {
    const version = BigInt(row.version);
    const message: SnapshotMessage =
      row.status === 'live' && row.snapshot
        ? { kind: 'snapshot', tenantId: row.tenant_id, version, snapshot: row.snapshot }
        : { kind: 'tombstone', tenantId: row.tenant_id, version };
    return { message, jsonBytes: Number(row.json_bytes ?? 0) };
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

/** The advisory lock's first key: arbitrary, constant ("vantageedge snapshot publish"); the second is the tenant's hash. */
const PUBLISH_LOCK_CLASS = 0x5645_5350;

/**
 * Runs `publish` holding these tenants' publication locks, in one transaction (so `publish` reads their
 * pending versions only once it holds them, through the given client). Kafka's compaction keeps a
 * tenant's last written record, not its highest version: two snapshot projectors (a deploy's overlap)
 * must never send one tenant at once, or an older snapshot sent slowly (a large tenant's gzip, a
 * retried request) lands after a newer version or the tombstone and is what compaction keeps. A second
 * publisher waits, then finds the first one's version acknowledged and sends only what came since.
 * The locks last only as long as the PostgreSQL session: when it ends while `publish` sends (a server
 * restart, a failover, a proxy's idle timeout), another publisher may send meanwhile, and this call
 * rejects once the send is over; the caller then has the tenants sent again (requeueForPublication).
 */
export function withPublishLocks<T>(
  pool: pg.Pool,
  tenantIds: readonly string[],
  publish: (db: Queryable) => Promise<T>,
): Promise<T> {
  return inTransaction(pool, async (client) => {
    // Taken in one order by every publisher, so two never wait on each other (volatile functions of
    // the select list run after its order by).
    await client.query(
      `select pg_advisory_xact_lock($1, key)
       from (select distinct hashtext(id) as key from unnest($2::text[]) as id) keys order by key`,
      [PUBLISH_LOCK_CLASS, tenantIds],
    );
    return publish(client);
  });
}

/**
 * Has these tenants' current versions sent again, holding their publication locks (so after whatever
 * was being sent of them). Only a version already marked acknowledged changes: its acknowledged version
 * becomes the one just below it, so the version is pending again, and the snapshot guard, which reads
 * the acknowledged version as what gateways may still serve, keeps the tenant's previous hosts claimed
 * until it is sent. A version still pending is left as it is: it is sent anyway.
 */
export function requeueForPublication(pool: pg.Pool, tenantIds: readonly string[]): Promise<void> {
  return withPublishLocks(pool, tenantIds, async (db) => {
    await db.query(
      `update snapshot_state set published_version = version - 1
       where tenant_id = any($1::uuid[]) and published_version >= version`,
      [tenantIds],
    );
  });
}
