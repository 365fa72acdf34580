import type { EventStore, RecordedEvent } from '@vantageedge/shared/event-store/port';
import { type StructuredLogger, silentLogger } from '@vantageedge/shared/observability/logger';
import { statementDeadlineOf } from '@vantageedge/shared/postgres/connection-liveness';
import type pg from 'pg';
import { traceBatch } from './batch-tracing.js';
import { batches } from './batches.js';
import { advanceCheckpoint, CheckpointMovedError, lockCheckpoint, readCheckpoint } from './checkpoint.js';
import { inTransaction } from './in-transaction.js';
import { describeFailure, loadQuarantine, type ParkedEvent, tenantOf } from './parked-events.js';
import type { ProjectionDefinition } from './projection.js';
import type { ProjectorMetrics } from './projector-metrics.js';
import { applyWithQuarantine } from './quarantine.js';

export interface ProjectorOptions<Event extends RecordedEvent> {
  projection: ProjectionDefinition<Event>;
  store: EventStore;
  pool: pg.Pool;
  /** Most events applied in one transaction. */
  batchSize?: number | undefined;
  logger?: StructuredLogger | undefined;
  /** Called after each committed batch (publishing, progress, tests). */
  onCommitted?: ((checkpoint: bigint, events: number) => void) | undefined;
  /** Wait before resubscribing after an error (ms); doubles up to 10 s, back to this once a batch commits. */
  retryDelayMs?: number | undefined;
  /** Lag, checkpoint and batch metrics (createProjectorMetrics). */
  metrics?: ProjectorMetrics | undefined;
  /** Consecutive failures of one event (not transient) before it is parked and its tenant quarantined. */
  maxEventAttempts?: number | undefined;
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
const STOPPED = Symbol('stopped');

/**
 * Runs one projection: follows the event log from the projection's stored checkpoint
 * (subscribeToAll), and applies each batch in one transaction that also advances the checkpoint.
 * Exactly-once effect: a crash before commit loses the whole batch and the restart reads it again;
 * after commit the checkpoint is past it. Errors restart the subscription from the stored checkpoint
 * after a back-off; a checkpoint moved by another writer (a replay swap) restarts it at once.
 *
 * Poison events (quarantine.ts): when the handler fails for a reason that is not transient, the
 * events before the failing one are committed and it is tried again after the back-off; after
 * `maxEventAttempts` consecutive failures it is parked in `projection_parked_events` and its tenant
 * quarantined in this projection (its later events parked too), so every other tenant goes on.
 */
export function startProjector<Event extends RecordedEvent>(options: ProjectorOptions<Event>): Projector {
  const { projection, store, pool, batchSize = 500, logger = silentLogger, onCommitted, metrics } = options;
  const { name } = projection;
  const baseDelay = options.retryDelayMs ?? 250;
  // A batch's session whose client died silently ends once idle this long (connection-liveness.ts): it
  // holds the checkpoint row, which every later batch waits for.
  const idleTimeoutMs = statementDeadlineOf(pool);
  const inBatchTransaction = <T>(work: (client: pg.PoolClient) => Promise<T>) =>
    inTransaction(pool, work, { idleTimeoutMs });
  const maxEventAttempts = options.maxEventAttempts ?? 3;
  let checkpoint = 0n;
  /** The event that failed last (not transiently), and how many times in a row. */
  let suspect: { position: bigint; failures: number } | null = null;
  /** The next back-off: doubles with each restart, back to the base once a batch commits. */
  let delay = baseDelay;
  let stopping = false;
  let subscription: ReturnType<EventStore['subscribeToAll']> | null = null;
  let wakeUp: (() => void) | null = null;
  let stopRequested: () => void = () => {};
  const stopped = new Promise<typeof STOPPED>((resolve) => {
    stopRequested = () => resolve(STOPPED);
  });

  /**
   * `read`'s answer, or STOPPED once a stop is asked for: nothing has been applied yet, so a stop does
   * not wait for PostgreSQL to answer (at start-up it may accept the connection and never answer).
   */
  async function unlessStopped<T>(read: Promise<T>): Promise<T | typeof STOPPED> {
    read.catch(() => undefined); // settles after the stop, unread
    return Promise.race([read, stopped]);
  }

  async function applyBatch(events: readonly RecordedEvent[]): Promise<void> {
    const fresh = events.filter((event) => event.position > checkpoint);
    if (fresh.length === 0) return;
    const started = performance.now();
    const outcome = await traceBatch(name, fresh, () =>
      inBatchTransaction(async (client) => {
        const stored = await lockCheckpoint(client, name);
        if (stored !== checkpoint) throw new CheckpointMovedError(name, checkpoint, stored);
        // Read under the checkpoint lock, like the checkpoint: a rebuild's swap replaces it.
        const quarantined = await loadQuarantine(client, name);
        const outcome = await applyWithQuarantine(client, fresh, {
          parkAs: name,
          handle: (handled) => projection.handle(handled, { client }),
          canHandle: projection.canHandle,
          appliesWhileQuarantined: projection.appliesWhileQuarantined,
          quarantined,
          parkFailed,
        });
        if (outcome.through !== null) await advanceCheckpoint(client, name, outcome.through);
        return outcome;
      }),
    );
    const { through, parked, quarantined, stopped } = outcome;
    if (through !== null) {
      const committed = fresh.filter((event) => event.position <= through).length;
      checkpoint = through;
      delay = baseDelay;
      if (suspect && suspect.position <= checkpoint) suspect = null;
      metrics?.committed(checkpoint, committed, (performance.now() - started) / 1000);
      onCommitted?.(checkpoint, committed);
    }
    recordParked(parked, quarantined.size);
    if (stopped)
      throw new EventFailedError(
        name,
        stopped.event,
        stopped.error,
        suspect?.failures ?? 1,
        maxEventAttempts,
      );
  }

  /** Counts a failure of `event` on its own: park it once it failed maxEventAttempts times in a row. */
  function parkFailed(event: RecordedEvent): boolean {
    const failures = suspect?.position === event.position ? suspect.failures + 1 : 1;
    suspect = { position: event.position, failures };
    return failures >= maxEventAttempts;
  }

  function recordParked(parked: readonly ParkedEvent[], quarantinedTenants: number): void {
    for (const { event, tenantId, error } of parked) {
      logger.error('projector parked an event', {
        projection: name,
        position: event.position.toString(),
        tenant_id: tenantId,
        event_type: event.type,
        error,
      });
    }
    metrics?.parked(parked.length, quarantinedTenants);
  }

  async function followOnce(): Promise<void> {
    const stored = await unlessStopped(readCheckpoint(pool, name));
    if (stored === STOPPED) return;
    checkpoint = stored;
    const quarantined = await unlessStopped(loadQuarantine(pool, name));
    if (quarantined === STOPPED) return;
    metrics?.parked(0, quarantined.size);
    // Stopped while reading them: there was no subscription to close, and one opened now would wait for
    // events for ever.
    if (stopping) return;
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
      stopRequested();
      wakeUp?.();
      await subscription?.close().catch(() => {});
      await done;
    },
  };
}

/** An event failed (not transiently) and is not parked yet: the projector tries it again after a back-off. */
export class EventFailedError extends Error {
  override readonly name = 'EventFailedError';
  constructor(
    projection: string,
    event: RecordedEvent,
    cause: unknown,
    attempt: number,
    maxAttempts: number,
  ) {
    super(
      `${projection}: event at position ${event.position} (${event.type}, tenant ${tenantOf(event)}) failed, ` +
        `attempt ${attempt} of ${maxAttempts} before it is parked: ${describeFailure(cause)}`,
      { cause },
    );
  }
}
