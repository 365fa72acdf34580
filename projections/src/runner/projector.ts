import type { EventStore, RecordedEvent } from '@vantageedge/shared/event-store/port';
import { type StructuredLogger, silentLogger } from '@vantageedge/shared/observability/logger';
import type pg from 'pg';
import { traceBatch } from './batch-tracing.js';
import { batches } from './batches.js';
import { advanceCheckpoint, CheckpointMovedError, lockCheckpoint, readCheckpoint } from './checkpoint.js';
import { inTransaction } from './in-transaction.js';
import type { ProjectionDefinition } from './projection.js';
import type { ProjectorMetrics } from './projector-metrics.js';

export interface ProjectorOptions<Event extends RecordedEvent> {
  projection: ProjectionDefinition<Event>;
  store: EventStore;
  pool: pg.Pool;
  /** Most events applied in one transaction. */
  batchSize?: number | undefined;
  logger?: StructuredLogger | undefined;
  /** Called after each committed batch (publishing, progress, tests). */
  onCommitted?: ((checkpoint: bigint, events: number) => void) | undefined;
  /** Wait before resubscribing after an error (ms); doubles up to 10 s. */
  retryDelayMs?: number | undefined;
  /** Lag, checkpoint and batch metrics (createProjectorMetrics). */
  metrics?: ProjectorMetrics | undefined;
}

export interface Projector {
  /** Resolves when stopped; rejects only on a bug in the projector itself. */
  readonly done: Promise<void>;
  /** The last committed position. */
  checkpoint(): bigint;
  /** Stops after the batch in flight (which commits or rolls back as a whole). */
  stop(): Promise<void>;
}

const MAX_RETRY_DELAY_MS = 10_000;

/**
 * Runs one projection: follows the event log from the projection's stored checkpoint
 * (subscribeToAll), and applies each batch in one transaction that also advances the checkpoint.
 * Exactly-once effect: a crash before commit loses the whole batch and the restart reads it again;
 * after commit the checkpoint is past it. Errors (database down, a handler failing) restart the
 * subscription from the stored checkpoint after a back-off; a checkpoint moved by another writer
 * (a replay swap) restarts it at once.
 */
export function startProjector<Event extends RecordedEvent>(options: ProjectorOptions<Event>): Projector {
  const { projection, store, pool, batchSize = 500, logger = silentLogger, onCommitted, metrics } = options;
  const { name } = projection;
  const baseDelay = options.retryDelayMs ?? 250;
  let checkpoint = 0n;
  let stopping = false;
  let subscription: ReturnType<EventStore['subscribeToAll']> | null = null;
  let wakeUp: (() => void) | null = null;

  async function applyBatch(events: readonly RecordedEvent[]): Promise<void> {
    const fresh = events.filter((event) => event.position > checkpoint);
    const last = fresh.at(-1);
    if (!last) return;
    // Without canHandle a projection takes every event (its Event is RecordedEvent).
    const handled = projection.canHandle ? fresh.filter(projection.canHandle) : (fresh as unknown as Event[]);
    const started = performance.now();
    await traceBatch(name, fresh, () =>
      inTransaction(pool, async (client) => {
        const stored = await lockCheckpoint(client, name);
        if (stored !== checkpoint) throw new CheckpointMovedError(name, checkpoint, stored);
        if (handled.length > 0) await projection.handle(handled, { client });
        await advanceCheckpoint(client, name, last.position);
      }),
    );
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
          const timer = setTimeout(resolve, moved ? 0 : delay);
          wakeUp = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wakeUp = null;
        if (!moved) delay = Math.min(delay * 2, MAX_RETRY_DELAY_MS);
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
