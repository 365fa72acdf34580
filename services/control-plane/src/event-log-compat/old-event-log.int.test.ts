import { readFile } from 'node:fs/promises';
import { qualified, READ_MODELS_SCHEMA } from '@vantageedge/projections/read-models/schema';
import { RENAMED_EVENT_TYPES } from '@vantageedge/shared/domain/event-upcasters';
import { isControlPlaneEvent } from '@vantageedge/shared/domain/events';
import { createEventStore } from '@vantageedge/shared/event-store/factory';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dumpTables, type ProjectedState, projectLog, storedLog, writeStoredLog } from './recorded-log.js';

/**
 * A log written by an earlier release (fixtures/event-log-v1, recorded with record-event-log.ts by
 * running that release's commands) must still be understood: every stored event reads as a current
 * event, and replaying the log rebuilds the same read models and gateway snapshots that release built.
 * The one difference is on purpose: the audit log names each event by its current name.
 */

const fixture = new URL('../../fixtures/event-log-v1/', import.meta.url);
const log = storedLog.parse(JSON.parse(await readFile(new URL('events.json', fixture), 'utf8')));
const projectedByOldRelease = JSON.parse(
  await readFile(new URL('projected.json', fixture), 'utf8'),
) as ProjectedState;

type AuditRow = { event_type: string };
const oldAuditLog = projectedByOldRelease.readModels['audit_log'] as AuditRow[];
const currentName = (type: string) => RENAMED_EVENT_TYPES[type] ?? type;
const expected: ProjectedState = {
  snapshots: projectedByOldRelease.snapshots,
  readModels: {
    ...projectedByOldRelease.readModels,
    audit_log: oldAuditLog.map((row) => ({ ...row, event_type: currentName(row.event_type) })),
  },
};

/** Each table's rows in the order of their event (the audit log) or their id. */
function byIdentity(tables: Record<string, unknown[]>): Record<string, unknown[]> {
  const identity = (row: unknown) => {
    const { event_id, id } = row as { event_id?: string; id?: string };
    return event_id ?? id ?? JSON.stringify(row);
  };
  return Object.fromEntries(
    Object.entries(tables).map(([table, rows]) => [
      table,
      [...rows].sort((a, b) => identity(a).localeCompare(identity(b))),
    ]),
  );
}

let database: TestDatabase;
const stores: EventStore[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await Promise.all(stores.map((store) => store.close()));
  await database?.drop();
});

describe.each(['postgres', 'memory'] as const)('the old event log in the %s event store', (kind) => {
  let store: EventStore;

  beforeAll(async () => {
    store =
      kind === 'postgres' ? createEventStore({ kind, pool: database.pool }) : createEventStore({ kind });
    stores.push(store);
    await writeStoredLog(store, log.events);
  });

  it('reads every stored event as a current control-plane event', async () => {
    const read = await store.readAll();
    expect(read).toHaveLength(log.events.length);
    expect(read.filter((event) => !isControlPlaneEvent(event)).map((event) => event.type)).toEqual([]);
    expect(read.map((event) => event.id)).toEqual(log.events.map((event) => event.id));
    expect(read.map((event) => event.type)).toEqual(log.events.map((event) => currentName(event.type)));
  });

  it('replays to the read models and gateway snapshots the old release built', async () => {
    const projected = await projectLog(store, database.pool);
    // Every table, row and field the old release had, with the same values; later releases may add
    // tables and fields (a new column's default, an empty list, a field added to an event's data
    // since), never drop or change one. Rows are compared by their identity: the dump orders them by
    // their whole text, which added fields change.
    expect(projected.snapshots).toMatchObject(expected.snapshots);
    expect(byIdentity(projected.readModels)).toMatchObject(byIdentity(expected.readModels));
  });
});

describe('the audit log the old release projected', () => {
  it('reads like the replayed one once the vocabulary migration ran', async () => {
    const audit = qualified(READ_MODELS_SCHEMA, 'audit_log');
    expect(oldAuditLog.some((row) => row.event_type in RENAMED_EVENT_TYPES)).toBe(true);
    await database.pool.query(
      `insert into ${audit} select * from jsonb_populate_recordset(null::${audit}, $1::jsonb)`,
      [JSON.stringify(oldAuditLog)],
    );
    const migration = new URL('../../../../migrations/sql/0180_event_vocabulary.up.sql', import.meta.url);
    await database.pool.query(await readFile(migration, 'utf8'));
    const migrated = await dumpTables(database.pool, READ_MODELS_SCHEMA, ['audit_log']);
    // Every field the old release had, with the same values (later columns, such as occurred_high, aside).
    expect(migrated['audit_log']).toMatchObject(expected.readModels['audit_log'] as object[]);
  });
});
