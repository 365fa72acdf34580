import {
  qualified,
  READ_MODELS_PROJECTION,
  READ_MODELS_SCHEMA,
} from '@vantageedge/projections/read-models/schema';
import { snapshotTenantOf } from '@vantageedge/projections/snapshots/fold';
import { type ControlPlaneEvent, isControlPlaneEvent } from '@vantageedge/shared/domain/events';
import type { EventStore, RecordedEvent } from '@vantageedge/shared/event-store/port';
import type pg from 'pg';

/**
 * The events that shaped one tenant's gateway config, up to a global position, in log order: exactly
 * the events the snapshot projector folds into that tenant's snapshot.
 *
 * Reading the whole log for one tenant would cost every tenant's history, so the tenant's streams are
 * found through the audit log (one row per event, indexed by tenant), which the read-model projector
 * keeps up to its checkpoint; each stream is then read from the event store itself. Events after that
 * checkpoint (the audit log trails the log by milliseconds, or more while its projector is down) are
 * read from the log directly, so the answer never depends on how far the read models are.
 */

export interface TenantEventSource {
  store: EventStore;
  pool: pg.Pool;
}

/** Streams of a tenant whose events never change its snapshot: cache purges and rollback markers. */
const NOT_CONFIG_RESOURCE_TYPES = ['cache', 'config'];
const STREAM_READS_IN_PARALLEL = 8;
const TAIL_PAGE = 1_000;

export async function readTenantEvents(
  source: TenantEventSource,
  tenantId: string,
  upTo: bigint,
): Promise<ControlPlaneEvent[]> {
  const { checkpoint, streams } = await indexedStreams(source.pool, tenantId, upTo);
  const byPosition = new Map<bigint, ControlPlaneEvent>();
  const keep = (event: RecordedEvent) => {
    if (event.position > upTo || !isControlPlaneEvent(event)) return;
    if (snapshotTenantOf(event) === tenantId) byPosition.set(event.position, event);
  };

  for (let start = 0; start < streams.length; start += STREAM_READS_IN_PARALLEL) {
    const batch = streams.slice(start, start + STREAM_READS_IN_PARALLEL);
    const read = await Promise.all(batch.map((stream) => source.store.readStream(stream)));
    for (const events of read) for (const event of events) keep(event);
  }
  // The part of the log the audit log does not cover yet.
  let from = checkpoint;
  while (from < upTo) {
    const page = await source.store.readAll({ fromPosition: from, maxCount: TAIL_PAGE });
    for (const event of page) keep(event);
    const last = page.at(-1);
    if (!last || page.length < TAIL_PAGE) break;
    from = last.position;
  }
  return [...byPosition.values()].sort((a, b) => (a.position < b.position ? -1 : 1));
}

/**
 * The read models' checkpoint and the tenant's config streams the audit log knows up to it, read in
 * one statement so both come from the same database snapshot.
 */
async function indexedStreams(
  pool: pg.Pool,
  tenantId: string,
  upTo: bigint,
): Promise<{ checkpoint: bigint; streams: string[] }> {
  const { rows } = await pool.query<{ checkpoint: string; streams: string[] }>(
    `with checkpoint as (
       select coalesce((select position from projection_checkpoints where name = $3), 0) as position
     )
     select (select position from checkpoint)::text as checkpoint,
            array(select distinct stream from ${qualified(READ_MODELS_SCHEMA, 'audit_log')}
                   where tenant_id = $1 and resource_type <> all($4::text[])
                     and position <= least($2::bigint, (select position from checkpoint))) as streams`,
    [tenantId, upTo.toString(), READ_MODELS_PROJECTION, NOT_CONFIG_RESOURCE_TYPES],
  );
  const row = rows[0];
  return { checkpoint: BigInt(row?.checkpoint ?? '0'), streams: row?.streams ?? [] };
}
