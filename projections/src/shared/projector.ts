import type { EventStore, RecordedEvent } from '@vantageedge/shared/event-store/port';
import type pg from 'pg';
import { traceBatch } from './batch-tracing.js';
import { batches } from './batches.js';
import { advanceCheckpoint, CheckpointMovedError, lockCheckpoint, readCheckpoint } from './checkpoint.js';
import type { ProjectorMetrics } from './projector-metrics.js';

/** Applies events to read models through `client`, inside a transaction the projector owns. */
export type ApplyBatch = (client: pg.PoolClient, events: readonly RecordedEvent[]) => Promise<void>;

export interface ProjectorLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export interface ProjectorOptions {
  /** Name of the checkpoint row, e.g. "read_models". */
  name: string;
  store: EventStore;
  pool: pg.Pool;
  apply: ApplyBatch;
  /** Most events applied in one transaction. */
  batchSize?: number;
  logger?: ProjectorLogger;
  /** Called after each committed batch (progress, metrics, tests). */
  onCommitted?: (checkpoint: bigint, events: number) => void;
  /** Wait before resubscribing after an error (ms); doubles up to 30 s. */
  retryDelayMs?: number;
  /** Lag, checkpoint and batch metrics (createProjectorMetrics). */
  metrics?: ProjectorMetrics;
}

export interface Projector {
  /** Resolves when stopped; rejects only on a bug in the projector itself. */
  readonly done: Promise<void>;
  /** The last committed position. */
  checkpoint(): bigint;
  /** Stops after the batch in flight (which commits or rolls back as a whole). */
  stop(): Promise<void>;
}

const silent: ProjectorLogger = { info() {}, warn() {}, error() {} };

/**
 * Follows the event log from the stored checkpoint: subscribeToAll({fromPosition: checkpoint}), and
 * each batch is applied in one transaction that also advances the checkpoint. Exactly-once effect:
 * a crash before commit loses the whole batch and the restart reads it again; after commit the
 * checkpoint is past it. Errors (database down, checkpoint moved by a replay) restart the
 * subscription from the stored checkpoint after a back-off.
 */
export function startProjector(options: ProjectorOptions): Projector {
  const { name, store, pool, apply, batchSize = 500, logger = silent, onCommitted, metrics } = options;
  const baseDelay = options.retryDelayMs ?? 500;
  let checkpoint = 0n;
  let stopping = false;
  let subscription: ReturnType<EventStore['subscribeToAll']> | null = null;
  let wakeUp: (() => void) | null = null;

  async function applyBatch(events: readonly RecordedEvent[]): Promise<void> {
    const fresh = events.filter((event) => event.position > checkpoint);
    const last = fresh.at(-1);
    if (!last) return;
    const started = performance.now();
    await traceBatch(name, fresh, async () => {
      const client = await pool.connect();
      try {
        await client.query('begin');
        await lockCheckpoint(client, name, checkpoint);
        await apply(client, fresh);
        await advanceCheckpoint(client, name, last.position);
        await client.query('commit');
      } catch (error) {
        await client.query('rollback').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    });
    checkpoint = last.position;
    metrics?.committed(checkpoint, fresh.length, (performance.now() - started) / 1000);
    onCommitted?.(checkpoint, fresh.length);
  }

  async function followOnce(): Promise<void> {
    checkpoint = await readCheckpoint(pool, name);
    logger.info('projector subscribing', { projection: name, from_position: checkpoint.toString() });
    subscription = store.subscribeToAll({ fromPosition: checkpoint });
    try {
      for await (const batch of batches(subscription, batchSize)) {
        await applyBatch(batch);
        if (stopping) return;
      }
    } finally {
      await subscription.close().catch(() => {});
      subscription = null;
    }
  }

  async function run(): Promise<void> {
    let delay = baseDelay;
    while (!stopping) {
      try {
        await followOnce();
        delay = baseDelay;
      } catch (error) {
        if (stopping) return;
        metrics?.restarted();
        const moved = error instanceof CheckpointMovedError;
        (moved ? logger.warn : logger.error).call(logger, 'projector restarting', {
          projection: name,
          checkpoint: checkpoint.toString(),
          error: error instanceof Error ? error.message : String(error),
        });
        await new Promise<void>((resolve) => {
          wakeUp = resolve;
          setTimeout(resolve, moved ? 0 : delay);
        });
        wakeUp = null;
        if (!moved) delay = Math.min(delay * 2, 30_000);
      }
    }
  }

  const done = run();
  metrics?.follow({ headPosition: () => store.headPosition(), checkpoint: () => checkpoint });
  return {
    done,
    checkpoint: () => checkpoint,
    async stop() {
      stopping = true;
      wakeUp?.();
      await subscription?.close().catch(() => {});
      await done;
    },
  };
}
