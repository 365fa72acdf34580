import type { EventStore, RecordedEvent } from '@vantageedge/shared/event-store/port';
import { onPooledConnection } from '@vantageedge/shared/postgres/pooled-connection';
import pg from 'pg';
import { advanceCheckpoint, lockCheckpoint } from '../runner/checkpoint.js';
import { inTransaction } from '../runner/in-transaction.js';
import { clearParkedEvents, replaceParkedEvents } from '../runner/parked-events.js';
import { applyWithQuarantine } from '../runner/quarantine.js';
import { applyEvents } from './apply-events.js';
import { readModelsProjection } from './projector.js';
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
 *
 * The rebuild applies the poison-event policy of the projector (runner/quarantine.ts) with a fresh
 * quarantine: an event the fold still cannot apply is parked at once (with its tenant's later events),
 * under the rebuild schema's name; the swap makes those the read models' parked events, replacing the
 * old ones. So a replay after a fix gets quarantined tenants back, and parks again what is still broken.
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
  /** Events the rebuild parked (poison events and the later events of their tenants). */
  parkedEvents: number;
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
  // The lock's connection is held for the whole replay: PostgreSQL restarting meanwhile must fail the
  // replay, not end the process (onPooledConnection).
  return onPooledConnection(pool, async (lockClient) => {
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
  });
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
  const rebuild = new RebuildQuarantine(schema);
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
      await inTransaction(pool, (client) => rebuild.apply(client, batch));
      events += batch.length;
      position = last.position;
      onProgress?.(progress());
    }
    await createSecondaryIndexes(pool, schema);
    if (swap) {
      const caughtUp = await swapIn(store, pool, rebuild, position, batchSize);
      events += caughtUp.events;
      position = caughtUp.position;
    } else {
      // Parked rows of a rebuild that is not swapped in would never be cleared.
      await clearParkedEvents(pool, schema);
    }
  } catch (error) {
    await dropSchema(pool, schema).catch(() => {});
    await clearParkedEvents(pool, schema).catch(() => {});
    throw error;
  }
  const elapsedMs = performance.now() - started;
  onProgress?.(progress());
  return {
    schema,
    events,
    position,
    elapsedMs,
    eventsPerSecond: rate(events, elapsedMs),
    swapped: swap,
    parkedEvents: rebuild.parkedEvents,
  };
}

/** The rebuild's quarantine: it parks under the rebuild schema's name, each failing event at once. */
class RebuildQuarantine {
  private quarantined: ReadonlyMap<string, bigint> = new Map();
  parkedEvents = 0;

  constructor(readonly schema: string) {}

  /** Inside the caller's transaction (if it fails, so does the replay, so nothing here is undone). */
  async apply(client: pg.PoolClient, events: readonly RecordedEvent[]): Promise<void> {
    const outcome = await applyWithQuarantine(client, events, {
      parkAs: this.schema,
      handle: (batch) => applyEvents(client, this.schema, batch),
      appliesWhileQuarantined: readModelsProjection.appliesWhileQuarantined,
      quarantined: this.quarantined,
      parkFailed: () => true,
    });
    this.quarantined = outcome.quarantined;
    this.parkedEvents += outcome.parked.length;
  }
}

/**
 * One transaction: lock the projector's checkpoint row (so no projector batch commits meanwhile),
 * apply the events appended since the rebuild read them, rename the live schema away and the rebuilt
 * one in, replace the read models' parked events with the rebuild's, and set the checkpoint to the
 * rebuilt position. A projector blocked on the row then finds the checkpoint moved and resubscribes
 * from it, writing into the new tables (every batch reads the quarantine anew, under the same lock).
 */
async function swapIn(
  store: EventStore,
  pool: pg.Pool,
  rebuild: RebuildQuarantine,
  from: bigint,
  batchSize: number,
): Promise<{ events: number; position: bigint }> {
  const { schema } = rebuild;
  const retired = `${READ_MODELS_SCHEMA}_retired_${Date.now()}`;
  let events = 0;
  let position = from;
  await inTransaction(pool, async (client) => {
    const live = await lockCheckpoint(client, READ_MODELS_PROJECTION);
    while (true) {
      const batch: RecordedEvent[] = await store.readAll({ fromPosition: position, maxCount: batchSize });
      const last = batch.at(-1);
      if (!last) break;
      await rebuild.apply(client, batch);
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
    await replaceParkedEvents(client, READ_MODELS_PROJECTION, schema);
    await advanceCheckpoint(client, READ_MODELS_PROJECTION, position);
  });
  await dropSchema(pool, retired);
  return { events, position };
}

function rate(events: number, elapsedMs: number): number {
  return elapsedMs > 0 ? Math.round((events * 1000) / elapsedMs) : 0;
}
