/**
 * Replay benchmark (make bench-replay): rebuilds the read models from 100,000 events on the local
 * PostgreSQL and reports events/s. A fresh database; the events are a realistic mix from the test
 * workload (tenants, users, origins, routes, keys, updates, rotations, deletions), appended through
 * the PostgreSQL event store. Writes bench-results/replay-<timestamp>.json and prints a summary.
 *
 * BENCH_REPLAY_EVENTS (default 100000), BENCH_REPLAY_RUNS (default 2), BENCH_REPLAY_BATCH (default 2000).
 */
import { createHash } from 'node:crypto';
import os from 'node:os';
import { PostgresEventStore } from '@vantageedge/shared/event-store/postgres/postgres-event-store';
import { writeBenchResult } from '@vantageedge/shared/testing/bench-results';
import { createTestDatabase } from '@vantageedge/shared/testing/postgres';
import { createProgressBar } from '../progress-bar.js';
import { replayReadModels } from '../replay.js';
import { READ_MODELS_SCHEMA } from '../schema.js';
import { rowCounts } from '../testing/compare.js';
import { type Append, generateWorkload } from '../testing/workload.js';

const EVENTS = Number(process.env['BENCH_REPLAY_EVENTS'] ?? 100_000);
const RUNS = Number(process.env['BENCH_REPLAY_RUNS'] ?? 2);
const BATCH = Number(process.env['BENCH_REPLAY_BATCH'] ?? 2000);
const WRITERS = 8;

const database = await createTestDatabase();
const store = new PostgresEventStore({ pool: database.pool });
const loadAtStart = os.loadavg();
try {
  // Set-up (not measured): the same stream always goes to the same writer, so per-stream order holds.
  const queues: Append[][] = Array.from({ length: WRITERS }, () => []);
  for (const append of generateWorkload({ events: EVENTS, seed: 2026, maxBurst: 20 })) {
    const writer = createHash('sha1').update(append.stream).digest().readUInt32BE(0) % WRITERS;
    queues[writer]?.push(append);
  }
  const setupStarted = performance.now();
  let appended = 0;
  await Promise.all(
    queues.map(async (queue) => {
      for (const append of queue) {
        await store.appendToStream(append.stream, append.events);
        appended += append.events.length;
      }
    }),
  );
  const head = await store.headPosition();
  process.stderr.write(
    `appended ${appended} events (head ${head}) in ${((performance.now() - setupStarted) / 1000).toFixed(1)} s\n`,
  );

  const runs = [];
  for (let run = 1; run <= RUNS; run += 1) {
    process.stderr.write(`replay run ${run}/${RUNS}\n`);
    const bar = createProgressBar();
    const result = await replayReadModels({
      store,
      pool: database.pool,
      batchSize: BATCH,
      onProgress: (p) => bar.update(p),
    });
    bar.done();
    const counts = await rowCounts(database.pool, READ_MODELS_SCHEMA);
    if (counts.audit_log !== appended)
      throw new Error(`audit_log has ${counts.audit_log} rows, expected ${appended}`);
    runs.push({
      run,
      events: result.events,
      seconds: Number((result.elapsedMs / 1000).toFixed(2)),
      eventsPerSecond: result.eventsPerSecond,
      rows: counts,
    });
  }

  const report = {
    benchmark: 'replay',
    at: new Date().toISOString(),
    description:
      'make replay: rebuild every read model (tenants, users, origins, routes, api_keys, audit_log) from position 0 ' +
      'into a fresh schema, build its indexes, swap it in; events/s over the whole replay (reads included)',
    environment: {
      node: process.version,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      loadAverageAtStart: loadAtStart.map((n) => Number(n.toFixed(2))),
      loadAverageAtEnd: os.loadavg().map((n) => Number(n.toFixed(2))),
      note: 'shared local PostgreSQL; other engineers may be running tests on the same 2 cores',
    },
    parameters: { events: appended, batchSize: BATCH, runs: RUNS },
    runs,
    bestEventsPerSecond: Math.max(...runs.map((r) => r.eventsPerSecond)),
  };
  const file = await writeBenchResult('replay', report.at, report);
  process.stdout.write(
    `${runs.map((r) => `replay run ${r.run}: ${r.events} events in ${r.seconds} s = ${r.eventsPerSecond} events/s`).join('\n')}\nwrote ${file}\n`,
  );
} finally {
  await store.close();
  await database.drop();
}
