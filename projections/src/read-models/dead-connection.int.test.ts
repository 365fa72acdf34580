import { PostgresEventStore } from '@vantageedge/shared/event-store/postgres/postgres-event-store';
import { createLivePool } from '@vantageedge/shared/postgres/connection-liveness';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { startTcpProxy, type TcpProxy } from '@vantageedge/shared/testing/tcp-proxy';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../runner/checkpoint.js';
import type { Projector } from '../runner/projector.js';
import { holdCheckpoint } from '../runner/testing.js';
import { startReadModelProjector } from './projector.js';
import { replayReadModels } from './replay.js';
import { READ_MODELS_PROJECTION, READ_MODELS_SCHEMA } from './schema.js';
import { tableDifferences } from './testing/compare.js';
import { appendWorkload } from './testing/workload.js';

/**
 * The read-model projector's connections die without a word while a batch is in flight (a NAT or
 * firewall forgot the flow: its PostgreSQL session lives on, in its transaction, holding the checkpoint
 * row). The batch waited for the kernel's retransmission timeout (about 15 minutes), and admin changes
 * stopped reaching the read models meanwhile.
 */
const STATEMENT_DEADLINE_MS = 1_500;
let database: TestDatabase;
let store: PostgresEventStore;
let proxy: TcpProxy;
let pool: pg.Pool;
let projectorStore: PostgresEventStore;
let projector: Projector;

beforeAll(async () => {
  database = await createTestDatabase();
  store = new PostgresEventStore({ pool: database.pool });
  proxy = await startTcpProxy(database.url);
  // As main.ts composes it, through the proxy.
  pool = createLivePool(
    { connectionString: proxy.urlFor(database.url), max: 4 },
    { statementDeadlineMs: STATEMENT_DEADLINE_MS },
  );
  pool.on('error', () => undefined);
  projectorStore = new PostgresEventStore({ pool });
  projector = startReadModelProjector({ store: projectorStore, pool, batchSize: 1_000 });
});

afterAll(async () => {
  await projector?.stop();
  await projectorStore?.close();
  await proxy?.close();
  await pool?.end();
  await store?.close();
  await database?.drop();
});

const checkpoint = () => readCheckpoint(database.pool, READ_MODELS_PROJECTION);

async function caughtUpTo(position: bigint): Promise<void> {
  await expect.poll(checkpoint, { timeout: 25_000, interval: 50 }).toBe(position);
}

describe('read-model projector, its connections dead while a batch is in flight', () => {
  it('resumes from its checkpoint on new connections: every event applied once', async () => {
    const first = await appendWorkload(store, { events: 20, seed: 11 });
    await caughtUpTo(first.position);

    // The next batch waits in PostgreSQL (another writer holds the checkpoint row)...
    const held = await holdCheckpoint(database.pool, READ_MODELS_PROJECTION);
    const second = await appendWorkload(store, { events: 200, seed: 12 });
    await expect.poll(() => held.batchesWaiting(), { timeout: 10_000 }).toBe(1);
    // ...when every connection of the projector dies silently; the batch's session lives on.
    proxy.blackholeOpenConnections();
    await held.release();

    await caughtUpTo(second.position);
    const rebuilt = await replayReadModels({ store, pool: database.pool, swap: false });
    try {
      expect(await tableDifferences(database.pool, READ_MODELS_SCHEMA, rebuilt.schema)).toEqual({});
    } finally {
      await database.pool.query(`drop schema ${rebuilt.schema} cascade`);
    }
  });
});
