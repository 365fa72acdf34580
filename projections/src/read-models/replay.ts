import type { EventStore, RecordedEvent } from '@vantageedge/shared/event-store/port';
import pg from 'pg';
import { advanceCheckpoint, lockCheckpoint } from '../runner/checkpoint.js';
import { inTransaction } from '../runner/in-transaction.js';
import { applyEvents } from './apply-events.js';
import {
  createRebuildSchema,
  createSecondaryIndexes,
  dropSchema,
  newRebuildSchemaName,
} from './rebuild-schema.js';
import { READ_MODELS_PROJECTION, READ_MODELS_SCHEMA } from './schema.js';

/**
 * Replay: rebuild every read model from position 0 into a fresh schema while the live one keeps
 * serving queries (and the live projector keeps following), then swap it in with one transaction.
 */

export interface ReplayProgress {
  /** Events read so far. */
  events: number;
  /** Position reached, and the head position when the replay started (for a percentage). */
  position: bigint;
  head: bigint;
  elapsedMs: number;
  eventsPerSecond: number;
}

export interface ReplayResult {
  schema: string;
  events: number;
  position: bigint;
  elapsedMs: number;
  eventsPerSecond: number;
  swapped: boolean;
}

export interface ReplayOptions {
  store: EventStore;
  pool: pg.Pool;
  /** Events per read and per transaction. */
  batchSize?: number;
  onProgress?: (progress: ReplayProgress) => void;
  /** false: leave the rebuilt schema beside the live one (for comparisons); the caller drops it. */
  swap?: boolean;
}

/** Another replay holds the lock (one replay at a time, across every process sharing the database). */
export class ReplayInProgressError extends Error {
  override readonly name = 'ReplayInProgressError';
  constructor() {
    super('a replay of the read models is already running');
  }
}

const REPLAY_LOCK_KEY = 7_301_945_220; // arbitrary, constant: "vantageedge read-model replay"

export async function replayReadModels(options: ReplayOptions): Promise<ReplayResult> {
  const { store, pool, batchSize = 2000, onProgress, swap = true } = options;
  const lockClient = await pool.connect();
  try {
    const { rows } = await lockClient.query<{ locked: boolean }>(
      'select pg_try_advisory_lock($1) as locked',
      [REPLAY_LOCK_KEY],
    );
    if (!rows[0]?.locked) throw new ReplayInProgressError();
    try {
      return await replayLocked(store, pool, batchSize, swap, onProgress);
    } finally {
      await lockClient.query('select pg_advisory_unlock($1)', [REPLAY_LOCK_KEY]);
    }
  } finally {
    lockClient.release();
  }
}

async function replayLocked(
  store: EventStore,
  pool: pg.Pool,
  batchSize: number,
  swap: boolean,
  onProgress: ReplayOptions['onProgress'],
): Promise<ReplayResult> {
  const started = performance.now();
  const schema = newRebuildSchemaName();
  const head = await store.headPosition();
  let events = 0;
  let position = 0n;
  const progress = (): ReplayProgress => {
    const elapsedMs = performance.now() - started;
    return { events, position, head, elapsedMs, eventsPerSecond: rate(events, elapsedMs) };
  };

  await createRebuildSchema(pool, schema);
  try {
    onProgress?.(progress());
    while (true) {
      const batch = await store.readAll({ fromPosition: position, maxCount: batchSize });
      const last = batch.at(-1);
      if (!last) break;
      await inTransaction(pool, (client) => applyEvents(client, schema, batch));
      events += batch.length;
      position = last.position;
      onProgress?.(progress());
    }
    await createSecondaryIndexes(pool, schema);
    if (swap) {
      const caughtUp = await swapIn(store, pool, schema, position, batchSize);
      events += caughtUp.events;
      position = caughtUp.position;
    }
  } catch (error) {
    await dropSchema(pool, schema).catch(() => {});
    throw error;
  }
  const elapsedMs = performance.now() - started;
  onProgress?.(progress());
  return { schema, events, position, elapsedMs, eventsPerSecond: rate(events, elapsedMs), swapped: swap };
}

/**
 * One transaction: lock the projector's checkpoint row (so no projector batch commits meanwhile),
 * apply the events appended since the rebuild read them, rename the live schema away and the rebuilt
 * one in, and set the checkpoint to the rebuilt position. A projector blocked on the row then finds
 * the checkpoint moved and resubscribes from it, writing into the new tables.
 */
async function swapIn(
  store: EventStore,
  pool: pg.Pool,
  schema: string,
  from: bigint,
  batchSize: number,
): Promise<{ events: number; position: bigint }> {
  const retired = `${READ_MODELS_SCHEMA}_retired_${Date.now()}`;
  let events = 0;
  let position = from;
  await inTransaction(pool, async (client) => {
    const live = await lockCheckpoint(client, READ_MODELS_PROJECTION);
    while (true) {
      const batch: RecordedEvent[] = await store.readAll({ fromPosition: position, maxCount: batchSize });
      const last = batch.at(-1);
      if (!last) break;
      await applyEvents(client, schema, batch);
      events += batch.length;
      position = last.position;
    }
    if (live > position) {
      throw new Error(
        `the live projector is at ${live}, past everything the replay could read (${position})`,
      );
    }
    await client.query(
      `alter schema ${pg.escapeIdentifier(READ_MODELS_SCHEMA)} rename to ${pg.escapeIdentifier(retired)}`,
    );
    await client.query(
      `alter schema ${pg.escapeIdentifier(schema)} rename to ${pg.escapeIdentifier(READ_MODELS_SCHEMA)}`,
    );
    await advanceCheckpoint(client, READ_MODELS_PROJECTION, position);
  });
  await dropSchema(pool, retired);
  return { events, position };
}

function rate(events: number, elapsedMs: number): number {
  return elapsedMs > 0 ? Math.round((events * 1000) / elapsedMs) : 0;
}
