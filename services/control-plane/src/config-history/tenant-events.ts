import {
  qualified,
  READ_MODELS_PROJECTION,
  READ_MODELS_SCHEMA,
} from '@vantageedge/projections/read-models/schema';
import { snapshotTenantOf } from '@vantageedge/projections/snapshots/fold';
import { type ControlPlaneEvent, isControlPlaneEvent } from '@vantageedge/shared/domain/events';
import type { EventStore, RecordedEvent } from '@vantageedge/shared/event-store/port';
import type pg from 'pg';
import type { TenantFoldCache } from './tenant-folds.js';

/**
 * The events that shaped one tenant's gateway config in a range of global positions, in log order:
 * exactly the events the snapshot projector folds into that tenant's snapshot.
 *
 * Reading the whole log for one tenant would cost every tenant's history, so the tenant's streams are
 * found through the audit log (one row per event, with its stream revision, indexed by tenant), which
 * the read-model projector keeps up to its checkpoint; each stream is then read from the event store
 * itself, only the revisions the range holds. Events after that checkpoint (the audit log trails the
 * log by milliseconds, or more while its projector is down) are read from the log directly, never past
 * the range, so the answer never depends on how far the read models are.
 */

export interface TenantEventSource {
  store: EventStore;
  pool: pg.Pool;
  /** Folded configs kept between calls (tenant-folds.ts); default: the store's own cache. */
  folds?: TenantFoldCache | undefined;
}

/** Streams of a tenant whose events never change its snapshot: cache purges and rollback markers. */
const NOT_CONFIG_RESOURCE_TYPES = ['cache', 'config'];
const STREAM_READS_IN_PARALLEL = 8;
const TAIL_PAGE = 1_000;

/**
 * The tenant's events with `after < position <= upTo` (`after` 0: from the start). Reads nothing
 * outside that range: neither a stream's older revisions nor anything past `upTo`.
 */
export async function readTenantEvents(
  source: TenantEventSource,
  tenantId: string,
  upTo: bigint,
  after = 0n,
): Promise<ControlPlaneEvent[]> {
  if (upTo <= after) return [];
  const { checkpoint, streams } = await indexedStreams(source.pool, tenantId, after, upTo);
  const byPosition = new Map<bigint, ControlPlaneEvent>();
  const keep = (event: RecordedEvent) => {
    if (event.position <= after || event.position > upTo || !isControlPlaneEvent(event)) return;
    if (snapshotTenantOf(event) === tenantId) byPosition.set(event.position, event);
  };

  for (let start = 0; start < streams.length; start += STREAM_READS_IN_PARALLEL) {
    const batch = streams.slice(start, start + STREAM_READS_IN_PARALLEL);
    const read = await Promise.all(
      batch.map(({ stream, first, last }) =>
        source.store.readStream(stream, { fromRevision: first, maxCount: Number(last - first + 1n) }),
      ),
    );
    for (const events of read) for (const event of events) keep(event);
  }
  // The part of the range the audit log does not cover yet. Positions are distinct integers, so
  // (from, upTo] holds at most upTo - from events: a page never reaches past upTo.
  let from = checkpoint > after ? checkpoint : after;
  while (from < upTo) {
    const wanted = upTo - from < BigInt(TAIL_PAGE) ? Number(upTo - from) : TAIL_PAGE;
    const page = await source.store.readAll({ fromPosition: from, maxCount: wanted });
    for (const event of page) keep(event);
    const last = page.at(-1);
    if (!last || page.length < wanted) break;
    from = last.position;
  }
  return [...byPosition.values()].sort((a, b) => (a.position < b.position ? -1 : 1));
}

interface IndexedStream {
  stream: string;
  /** The first and last revision of the stream the range holds. */
  first: bigint;
  last: bigint;
}

/**
 * The read models' checkpoint and the tenant's config streams the audit log knows in (after, upTo]
 * (up to the checkpoint), with the revisions they hold there, read in one statement so both come
 * from the same database snapshot. Rows are found through the (tenant_id, position) index: the cost
 * is the range's, not the tenant's whole history.
 */
async function indexedStreams(
  pool: pg.Pool,
  tenantId: string,
  after: bigint,
  upTo: bigint,
): Promise<{ checkpoint: bigint; streams: IndexedStream[] }> {
  const { rows } = await pool.query<{
    checkpoint: string;
    stream: string | null;
    first: string | null;
    last: string | null;
  }>(
    `with checkpoint as (
       select coalesce((select position from projection_checkpoints where name = $3), 0) as position
     ),
     streams as (
       select stream, min(stream_revision) as first, max(stream_revision) as last
         from ${qualified(READ_MODELS_SCHEMA, 'audit_log')}
        where tenant_id = $1 and resource_type <> all($4::text[])
          and position > $5::bigint
          and position <= least($2::bigint, (select position from checkpoint))
        group by stream
     )
     select checkpoint.position::text as checkpoint, streams.stream,
            streams.first::text as first, streams.last::text as last
       from checkpoint left join streams on true`,
    [tenantId, upTo.toString(), READ_MODELS_PROJECTION, NOT_CONFIG_RESOURCE_TYPES, after.toString()],
  );
  const streams: IndexedStream[] = [];
  for (const row of rows) {
    if (row.stream === null || row.first === null || row.last === null) continue;
    streams.push({ stream: row.stream, first: BigInt(row.first), last: BigInt(row.last) });
  }
  return { checkpoint: BigInt(rows[0]?.checkpoint ?? '0'), streams };
}
