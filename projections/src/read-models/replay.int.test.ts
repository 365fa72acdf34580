import { PostgresEventStore } from '@vantageedge/shared/event-store/postgres/postgres-event-store';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../runner/checkpoint.js';
import { startReadModelProjector } from './projector.js';
import { ReplayInProgressError, replayReadModels } from './replay.js';
import { READ_MODELS_PROJECTION, READ_MODELS_SCHEMA } from './schema.js';
import { eventually, rowCounts, tableDifferences } from './testing/compare.js';
import { appendWorkload } from './testing/workload.js';

let database: TestDatabase;
let store: PostgresEventStore;

beforeAll(async () => {
  database = await createTestDatabase();
  store = new PostgresEventStore({ pool: database.pool });
});

afterAll(async () => {
  await store.close();
  await database.drop();
});

/** The extended statistics objects of a schema: name and definition (as of the live schema). */
async function statisticsOf(schema: string): Promise<string[]> {
  const { rows } = await database.pool.query<{ name: string; definition: string }>(
    `select s.stxname as name, pg_get_statisticsobjdef(s.oid) as definition
       from pg_statistic_ext s join pg_namespace n on n.oid = s.stxnamespace
      where n.nspname = $1 order by s.stxname`,
    [schema],
  );
  return rows.map((row) => `${row.name}: ${row.definition}`);
}

describe('replay of the read models', () => {
  it('rebuilds into a fresh schema while the projector runs and writes continue, then swaps it in', async () => {
    const first = await appendWorkload(store, { events: 1200, seed: 21 });
    const projector = startReadModelProjector({ store, pool: database.pool, batchSize: 25 });
    try {
      await eventually(
        async () => (await readCheckpoint(database.pool, READ_MODELS_PROJECTION)) === first.position,
      );
      const liveBefore = await rowCounts(database.pool, READ_MODELS_SCHEMA);
      const statisticsBefore = await statisticsOf(READ_MODELS_SCHEMA);

      let concurrentWrites: Promise<{ events: number; position: bigint }> | null = null;
      const liveDuringRebuild: Array<Promise<number>> = [];
      const result = await replayReadModels({
        store,
        pool: database.pool,
        batchSize: 200,
        onProgress: () => {
          concurrentWrites ??= appendWorkload(store, { events: 300, seed: 22 });
          liveDuringRebuild.push(rowCounts(database.pool, READ_MODELS_SCHEMA).then((c) => c.tenants));
        },
      });
      // queries kept reading the live tables during the rebuild (the swap happens at the end)
      expect(liveDuringRebuild.length).toBeGreaterThan(1);
      for (const tenants of await Promise.all(liveDuringRebuild))
        expect(tenants).toBeGreaterThanOrEqual(liveBefore.tenants);
      expect(liveBefore.audit_log).toBe(first.events);
      expect(result.swapped).toBe(true);

      const written = await (concurrentWrites as Promise<{ events: number; position: bigint }> | null);
      const head = written?.position ?? first.position;
      await eventually(async () => (await readCheckpoint(database.pool, READ_MODELS_PROJECTION)) === head);
      // The projector carried on in the swapped-in tables: every event exactly once.
      const counts = await rowCounts(database.pool, READ_MODELS_SCHEMA);
      expect(counts.audit_log).toBe(first.events + (written?.events ?? 0));
      const { rows: schemas } = await database.pool.query<{ nspname: string }>(
        `select nspname from pg_namespace where nspname like 'read_models%' order by nspname`,
      );
      expect(schemas.map((s) => s.nspname)).toEqual(['read_models']);
      // and kept the live statistics objects, under the names a down migration drops them by
      expect(await statisticsOf(READ_MODELS_SCHEMA)).toEqual(statisticsBefore);
    } finally {
      await projector.stop();
    }
    const rebuilt = await replayReadModels({ store, pool: database.pool, swap: false });
    try {
      expect(await tableDifferences(database.pool, READ_MODELS_SCHEMA, rebuilt.schema)).toEqual({});
      // the swapped-in tables kept the live indexes, under the same names
      const { rows } = await database.pool.query<{ schemaname: string; count: string }>(
        `select schemaname, count(*) from pg_indexes where schemaname in ($1, $2) group by schemaname`,
        [READ_MODELS_SCHEMA, rebuilt.schema],
      );
      expect(new Set(rows.map((row) => row.count)).size).toBe(1);
    } finally {
      await database.pool.query(`drop schema ${rebuilt.schema} cascade`);
    }
  });

  it('runs one replay at a time', async () => {
    const outcomes = await Promise.allSettled([
      replayReadModels({ store, pool: database.pool, swap: false }),
      replayReadModels({ store, pool: database.pool, swap: false }),
    ]);
    const refused = outcomes.filter((o) => o.status === 'rejected');
    expect(refused).toHaveLength(1);
    expect((refused[0] as PromiseRejectedResult).reason).toBeInstanceOf(ReplayInProgressError);
    for (const outcome of outcomes) {
      if (outcome.status === 'fulfilled')
        await database.pool.query(`drop schema ${outcome.value.schema} cascade`);
    }
  });
});
