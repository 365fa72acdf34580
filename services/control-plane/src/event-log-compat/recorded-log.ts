import { replayReadModels } from '@vantageedge/projections/read-models/replay';
import {
  qualified,
  READ_MODEL_TABLES,
  type ReadModelTable,
} from '@vantageedge/projections/read-models/schema';
import {
  foldSnapshotEvent,
  type SnapshotState,
  snapshotTenantOf,
} from '@vantageedge/projections/snapshots/fold';
import { isControlPlaneEvent } from '@vantageedge/shared/domain/events';
import type { EventMetadata, EventStore, RecordedEvent } from '@vantageedge/shared/event-store/port';
import type pg from 'pg';
import { z } from 'zod';

/**
 * An event log as it was stored, kept as JSON so that an old log can be written into a fresh store
 * and projected again: what a log written by an earlier release must still produce.
 */

const storedEvent = z.strictObject({
  id: z.uuid(),
  stream: z.string().min(1),
  type: z.string().min(1),
  data: z.unknown(),
  metadata: z.custom<EventMetadata>((value) => typeof value === 'object' && value !== null),
});
export type StoredEvent = z.infer<typeof storedEvent>;

export const storedLog = z.strictObject({ events: z.array(storedEvent) });

/** The log in position order, as stored (the type as written, before any upcasting). */
export function toStoredLog(events: readonly RecordedEvent[]): { events: StoredEvent[] } {
  return {
    events: events.map(({ id, stream, type, data, metadata }) => ({ id, stream, type, data, metadata })),
  };
}

/** Writes the log into an empty store, one event at a time in its order, so positions come out the same. */
export async function writeStoredLog(store: EventStore, events: readonly StoredEvent[]): Promise<void> {
  for (const { id, stream, type, data, metadata } of events) {
    await store.appendToStream(stream, [{ id, type, data: data ?? null, metadata }]);
  }
}

/** What the projectors make of the store's log: every read-model table and every tenant's gateway snapshot. */
export interface ProjectedState {
  readModels: Record<string, unknown[]>;
  snapshots: Record<string, unknown>;
}

/** Replays the read models into a fresh schema and folds every tenant's snapshot from the whole log. */
export async function projectLog(store: EventStore, pool: pg.Pool): Promise<ProjectedState> {
  const replay = await replayReadModels({ store, pool, swap: false });
  try {
    return {
      readModels: await dumpTables(pool, replay.schema),
      snapshots: foldSnapshots(await store.readAll()),
    };
  } finally {
    await pool.query(`drop schema ${replay.schema} cascade`);
  }
}

/** The rows of read-model tables as JSON (times in UTC), in a stable order. */
export async function dumpTables(
  pool: pg.Pool,
  schema: string,
  tables: readonly ReadModelTable[] = READ_MODEL_TABLES,
): Promise<Record<string, unknown[]>> {
  const client = await pool.connect();
  try {
    await client.query(`set time zone 'UTC'`);
    const dump: Record<string, unknown[]> = {};
    for (const table of tables) {
      const { rows } = await client.query<{ rows: unknown[] | null }>(
        `select json_agg(to_jsonb(t) order by to_jsonb(t)::text) as rows from ${qualified(schema, table)} t`,
      );
      dump[table] = rows[0]?.rows ?? [];
    }
    return dump;
  } finally {
    await client.query('reset time zone');
    client.release();
  }
}

function foldSnapshots(events: readonly RecordedEvent[]): Record<string, unknown> {
  const states = new Map<string, SnapshotState | undefined>();
  for (const event of events) {
    if (!isControlPlaneEvent(event)) continue;
    const tenantId = snapshotTenantOf(event);
    if (tenantId === null) continue;
    states.set(tenantId, foldSnapshotEvent(states.get(tenantId), event));
  }
  const sorted = [...states.entries()].sort(([a], [b]) => a.localeCompare(b));
  // bigint versions of tombstones as decimal strings, as the snapshot bus carries them.
  return JSON.parse(
    JSON.stringify(Object.fromEntries(sorted), (_key, value) =>
      typeof value === 'bigint' ? value.toString() : value,
    ),
  ) as Record<string, unknown>;
}
