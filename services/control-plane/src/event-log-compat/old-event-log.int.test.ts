import { readFile } from 'node:fs/promises';
import { isControlPlaneEvent } from '@vantageedge/shared/domain/events';
import { createEventStore } from '@vantageedge/shared/event-store/factory';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ProjectedState, projectLog, storedLog, writeStoredLog } from './recorded-log.js';

/**
 * A log written by an earlier release (fixtures/event-log-v1, recorded with record-event-log.ts by
 * running that release's commands) must still be understood: every stored event reads as a current
 * event, and replaying the log rebuilds the same read models and gateway snapshots that release built.
 */

const fixture = new URL('../../fixtures/event-log-v1/', import.meta.url);
const log = storedLog.parse(JSON.parse(await readFile(new URL('events.json', fixture), 'utf8')));
const expected = JSON.parse(await readFile(new URL('projected.json', fixture), 'utf8')) as ProjectedState;

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
  });

  it('replays to the read models and gateway snapshots the old release built', async () => {
    const projected = await projectLog(store, database.pool);
    expect(projected.snapshots).toEqual(expected.snapshots);
    expect(projected.readModels).toEqual(expected.readModels);
  });
});
