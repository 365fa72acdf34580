import type { ChildProcess } from 'node:child_process';
import { PostgresEventStore } from '@vantageedge/shared/event-store/postgres/postgres-event-store';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../runner/checkpoint.js';
import { replayReadModels } from './replay.js';
import { READ_MODELS_PROJECTION, READ_MODELS_SCHEMA } from './schema.js';
import { rowCounts, tableDifferences } from './testing/compare.js';
import { exited, ProjectorProcesses } from './testing/projector-processes.js';
import { appendWorkload } from './testing/workload.js';

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

/** The real projector process (make run-projector), small batches, logging each commit. */
function startProjectorProcess(): { child: ChildProcess; commits: AsyncIterator<string> } {
  const { child, lines } = processes.start('projections/src/read-models/main.ts', {
    DATABASE_URL: database.url,
    EVENT_STORE: 'postgres',
    READ_MODEL_BATCH_SIZE: '20',
    READ_MODEL_PROJECTOR_METRICS_PORT: '0',
    LOG_LEVEL: 'debug',
  });
  async function* commits() {
    for await (const line of lines) if (line.includes('"batch committed"')) yield line;
  }
  return { child, commits: commits() };
}

describe('read-model projector killed with SIGKILL mid-stream', () => {
  it('restarts from its checkpoint and ends equal to a full replay', async () => {
    const { events, position: head } = await appendWorkload(store, { events: 2000, seed: 11 });
    const checkpointsAtKill: bigint[] = [];
    let seed = 3;
    // Kill after a pseudo-random number of committed batches, over and over, until it got through.
    while ((await readCheckpoint(database.pool, READ_MODELS_PROJECTION)) < head) {
      const { child, commits } = startProjectorProcess();
      seed = (seed * 1103515245 + 12345) % 2147483648;
      const killAfter = 2 + (seed % 15);
      let seen = 0;
      while (seen < killAfter) {
        const next = await commits.next();
        if (next.done) break;
        seen += 1;
        const { checkpoint } = JSON.parse(next.value) as { checkpoint: string };
        if (BigInt(checkpoint) === head) break;
      }
      child.kill('SIGKILL');
      await exited(child);
      checkpointsAtKill.push(await readCheckpoint(database.pool, READ_MODELS_PROJECTION));
    }
    // It really died mid-stream, more than once.
    expect(
      checkpointsAtKill.filter((checkpoint) => checkpoint > 0n && checkpoint < head).length,
    ).toBeGreaterThan(1);

    const counts = await rowCounts(database.pool, READ_MODELS_SCHEMA);
    expect(counts.audit_log).toBe(events);
    const rebuilt = await replayReadModels({ store, pool: database.pool, swap: false });
    try {
      expect(await tableDifferences(database.pool, READ_MODELS_SCHEMA, rebuilt.schema)).toEqual({});
    } finally {
      await database.pool.query(`drop schema ${rebuilt.schema} cascade`);
    }
  }, 300_000);
});
