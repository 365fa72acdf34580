/**
 * Event store benchmark on the local PostgreSQL (make bench-eventstore). Each scenario gets a fresh
 * database. Writes bench-results/eventstore-<timestamp>.json and prints a summary.
 *
 * Scenarios:
 *  - append, 1 writer and 16 writers: single-event appends through PostgresEventStore, for a fixed time
 *  - append with sequence positions, 16 writers: the same stored procedure with the position row
 *    lock replaced by nextval() — what the commit-order guarantee costs (that variant can let a
 *    reader skip events; it is measured, never used)
 *  - readAll: reading the whole log in pages of 1,000
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_MIGRATIONS_DIR } from '@vantageedge/migrations/runner';
import * as hdr from 'hdr-histogram-js';
import pg from 'pg';
import { writeBenchResult } from '../../testing/bench-results.js';
import { TEST_INFRA } from '../../testing/infrastructure.js';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.js';
import type { EventMetadata } from '../port.js';
import { PostgresEventStore } from '../postgres/postgres-event-store.js';

const APPEND_SECONDS = Number(process.env['BENCH_APPEND_SECONDS'] ?? 8);
const READ_SECONDS = Number(process.env['BENCH_READ_SECONDS'] ?? 5);

interface AppendResult {
  scenario: string;
  writers: number;
  seconds: number;
  appends: number;
  appendsPerSecond: number;
  latencyMs: { p50: number; p99: number; max: number };
}

const metadata: EventMetadata = {
  actor: 'bench',
  tenant_id: 'tenant-bench',
  correlation_id: '00000000-0000-4000-8000-000000000000',
  causation_id: null,
  occurred_at: new Date().toISOString(),
  schema_version: 1,
};
const data = {
  name: 'route',
  upstream: 'http://127.0.0.1:8080',
  paths: ['/a', '/b'],
  plugins: { rateLimit: 100 },
};

async function withDatabase<T>(fn: (database: TestDatabase, pool: pg.Pool) => Promise<T>): Promise<T> {
  const database = await createTestDatabase();
  const pool = new pg.Pool({ connectionString: database.url, max: 20 });
  try {
    return await fn(database, pool);
  } finally {
    await pool.end();
    await database.drop();
  }
}

async function runWriters(
  scenario: string,
  writers: number,
  appendOne: (writer: number, seq: number) => Promise<void>,
): Promise<AppendResult> {
  const histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
  const deadline = performance.now() + APPEND_SECONDS * 1000;
  const started = performance.now();
  let appends = 0;
  await Promise.all(
    Array.from({ length: writers }, async (_, writer) => {
      for (let seq = 0; performance.now() < deadline; seq++) {
        const t0 = performance.now();
        await appendOne(writer, seq);
        histogram.recordValue(Math.round((performance.now() - t0) * 1000)); // µs
        appends += 1;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const result = {
    scenario,
    writers,
    seconds: round(seconds),
    appends,
    appendsPerSecond: Math.round(appends / seconds),
    latencyMs: {
      p50: histogram.getValueAtPercentile(50) / 1000,
      p99: histogram.getValueAtPercentile(99) / 1000,
      max: histogram.maxValue / 1000,
    },
  };
  histogram.destroy();
  console.log(
    `${scenario}: ${result.appendsPerSecond} appends/s (p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms)`,
  );
  return result;
}

function benchStoreAppends(writers: number): Promise<AppendResult> {
  return withDatabase(async (_, pool) => {
    const store = new PostgresEventStore({ pool });
    try {
      return await runWriters(
        `append, ${writers} writer(s), commit-order positions`,
        writers,
        async (writer, seq) => {
          await store.appendToStream(`route-${writer}`, [{ type: 'RouteUpdated', data, metadata }], {
            expectedRevision: seq === 0 ? 'no_stream' : BigInt(seq - 1),
          });
        },
      );
    } finally {
      await store.close();
    }
  });
}

/** The same procedure, positions from a sequence instead of the row lock (the naive design). */
async function benchSequenceAppends(writers: number): Promise<AppendResult> {
  const migration = await readFile(path.join(DEFAULT_MIGRATIONS_DIR, '0001_event_store.up.sql'), 'utf8');
  const functionStart = migration.indexOf('create function event_store_append(');
  const lock = 'update event_store_position set value = value + v_count returning value into v_last;';
  if (functionStart < 0 || !migration.includes(lock))
    throw new Error('0001_event_store.up.sql changed; update the bench');
  const variant = migration
    .slice(functionStart)
    .replace('create function event_store_append(', 'create function bench_sequence_append(')
    .replace(lock, "v_last := nextval('bench_position') + v_count - 1;");
  return withDatabase(async (_, pool) => {
    await pool.query('create sequence bench_position');
    await pool.query(variant);
    return runWriters(
      `append, ${writers} writer(s), sequence positions (baseline, unsafe)`,
      writers,
      async (writer, seq) => {
        await pool.query(
          'select * from bench_sequence_append($1, $2, $3, $4, $5::jsonb[], $6::jsonb[], $7, $8)',
          [
            `route-${writer}`,
            seq === 0 ? 'no_stream' : String(seq - 1),
            [randomUUID()],
            ['RouteUpdated'],
            [JSON.stringify(data)],
            [JSON.stringify(metadata)],
            [],
            [],
          ],
        );
      },
    );
  });
}

async function benchReadAll(events: number) {
  return withDatabase(async (_, pool) => {
    // Load the log in bulk; the read path is what is measured here.
    const store = new PostgresEventStore({ pool });
    try {
      const perBatch = 100;
      for (let start = 0; start < events; start += perBatch * 20) {
        await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            store.appendToStream(
              `route-${start + i * perBatch}`,
              Array.from({ length: perBatch }, () => ({ type: 'RouteUpdated', data, metadata })),
              { expectedRevision: 'no_stream' },
            ),
          ),
        );
      }
      const deadline = performance.now() + READ_SECONDS * 1000;
      const started = performance.now();
      let read = 0;
      let passes = 0;
      while (performance.now() < deadline) {
        let checkpoint = 0n;
        for (;;) {
          const page = await store.readAll({ fromPosition: checkpoint, maxCount: 1_000 });
          if (page.length === 0) break;
          read += page.length;
          checkpoint = page[page.length - 1]!.position;
        }
        passes += 1;
      }
      const seconds = (performance.now() - started) / 1000;
      const result = {
        scenario: 'readAll, pages of 1000',
        logSize: events,
        passes,
        eventsRead: read,
        seconds: round(seconds),
        eventsPerSecond: Math.round(read / seconds),
      };
      console.log(`${result.scenario}: ${result.eventsPerSecond} events/s over a log of ${events}`);
      return result;
    } finally {
      await store.close();
    }
  });
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

async function main(): Promise<void> {
  const loadAtStart = os.loadavg().map(round);
  const admin = new pg.Pool({ max: 1, connectionString: TEST_INFRA.databaseUrl });
  const { rows } = await admin.query<{ server_version: string }>('show server_version');
  await admin.end();

  const appends = [await benchStoreAppends(1), await benchStoreAppends(16), await benchSequenceAppends(16)];
  const readAll = await benchReadAll(40_000);

  const report = {
    benchmark: 'eventstore',
    at: new Date().toISOString(),
    environment: {
      node: process.version,
      postgres: rows[0]?.server_version,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      loadAverageAtStart: loadAtStart,
      loadAverageAtEnd: os.loadavg().map(round),
      note: 'shared local PostgreSQL (fsync=off, synchronous_commit=off); other work may run on the machine',
    },
    appends,
    readAll,
  };
  console.log(`wrote ${await writeBenchResult('eventstore', report.at, report)}`);
}

await main();
