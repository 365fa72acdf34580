import { PostgresEventStore } from '@vantageedge/shared/event-store/postgres/postgres-event-store';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../runner/checkpoint.js';
import { READ_MODELS_PROJECTION, READ_MODELS_SCHEMA } from './schema.js';
import { rowCounts } from './testing/compare.js';
import { exited, ProjectorProcesses } from './testing/projector-processes.js';
import { appendWorkload } from './testing/workload.js';

/**
 * SIGTERM on the real read-model projector process (make run-projector) in the middle of the log: the
 * batch in flight commits with its checkpoint, the process logs where it stopped and exits 0, and a
 * restart goes on from exactly there.
 */
let database: TestDatabase;
let store: PostgresEventStore;
const processes = new ProjectorProcesses();

beforeAll(async () => {
  database = await createTestDatabase();
  store = new PostgresEventStore({ pool: database.pool });
});

afterAll(async () => {
  processes.killAll();
  await store.close();
  await database.drop();
});

function startProjectorProcess() {
  const { child, lines: input } = processes.start('projections/src/read-models/main.ts', {
    DATABASE_URL: database.url,
    EVENT_STORE: 'postgres',
    READ_MODEL_BATCH_SIZE: '20',
    LOG_LEVEL: 'debug',
  });
  const exit = exited(child);
  const lines: Array<Record<string, unknown>> = [];
  async function* parsed() {
    for await (const line of input) {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        lines.push(entry);
        yield entry;
      } catch {
        // not a log line
      }
    }
  }
  return { child, exit, lines, entries: parsed() };
}

describe('read-model projector stopped with SIGTERM mid-stream', () => {
  it('finishes the batch in flight, keeps its checkpoint, exits 0, and a restart continues from it', async () => {
    const { events, position: head } = await appendWorkload(store, { events: 2000, seed: 5 });

    const first = startProjectorProcess();
    let commits = 0;
    // Read to the end of its output (the loop ends when the process does).
    for await (const entry of first.entries) {
      if (entry['message'] !== 'batch committed') continue;
      commits += 1;
      if (commits === 3) first.child.kill('SIGTERM');
    }
    expect(await first.exit).toBe(0);
    const stopped = first.lines.find((line) => line['message'] === 'read-model projector stopped');
    expect(stopped, JSON.stringify(first.lines.slice(-5))).toBeDefined();
    const lastCommitted = first.lines.filter((line) => line['message'] === 'batch committed').at(-1);
    const stored = await readCheckpoint(database.pool, READ_MODELS_PROJECTION);
    // What the process said it committed is what the database holds: nothing half-applied, nothing lost.
    expect(stopped?.['checkpoint']).toBe(stored.toString());
    expect(lastCommitted?.['checkpoint']).toBe(stored.toString());
    expect(stored).toBeGreaterThan(0n);
    expect(stored).toBeLessThan(head);

    const second = startProjectorProcess();
    for await (const entry of second.entries) {
      if (entry['message'] === 'batch committed' && entry['checkpoint'] === head.toString())
        second.child.kill('SIGTERM');
    }
    expect(await second.exit).toBe(0);
    const resumed = second.lines.find((line) => line['message'] === 'projector subscribing');
    expect(resumed?.['from_position']).toBe(stored.toString());
    expect((await rowCounts(database.pool, READ_MODELS_SCHEMA)).audit_log).toBe(events);
  }, 180_000);
});
