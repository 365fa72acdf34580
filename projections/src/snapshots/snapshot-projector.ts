import type { EventStore } from '@vantageedge/shared/event-store/port';
import type { StructuredLogger } from '@vantageedge/shared/observability/logger';
import type { SnapshotBus } from '@vantageedge/shared/snapshot-bus/port';
import type pg from 'pg';
import { Gauge, type Registry } from 'prom-client';
import { startProjector } from '../runner/projector.js';
import { createProjectorMetrics } from '../runner/projector-metrics.js';
import { snapshotProjection } from './snapshot-projection.js';
import { startSnapshotPublisher } from './snapshot-publisher.js';
import { SNAPSHOT_PROJECTION } from './snapshot-state.js';

export interface SnapshotProjectorOptions {
  store: EventStore;
  pool: pg.Pool;
  bus: SnapshotBus;
  logger?: StructuredLogger | undefined;
  registry?: Registry | undefined;
  batchSize?: number | undefined;
  /** Snapshots published per bus call. */
  publishBatchSize?: number | undefined;
  /** First back-off after an error (ms), of the projector and of the publisher. */
  retryDelayMs?: number | undefined;
  /** Checkpoint row name (tests run several projectors in one database). */
  name?: string | undefined;
  /**
   * How often the publisher looks for unacknowledged snapshots while no event arrives (ms): picks up
   * the rows `requestSnapshotRepublish` queued. Default 5000.
   */
  publishPollMs?: number | undefined;
  /** See SnapshotPublisherOptions.tenantPublishBytesPerSecond (SNAPSHOT_TENANT_PUBLISH_BYTES_PER_SECOND). */
  tenantPublishBytesPerSecond?: number | undefined;
  /** See SnapshotPublisherOptions.topicCheckWaitMs. */
  topicCheckWaitMs?: number | undefined;
  /** See SnapshotPublisherOptions.topicWatchMs. */
  topicWatchMs?: number | undefined;
}

export interface SnapshotProjector {
  readonly done: Promise<void>;
  /** Last committed event position. */
  checkpoint(): bigint;
  /** Resolves once every committed snapshot has been acknowledged by the bus (tests, benchmarks). */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The gateway snapshots' side of the log: the snapshot projection run by the projector runner, and
 * the snapshot publisher, asked to publish after every commit.
 */
export function startSnapshotProjector(options: SnapshotProjectorOptions): SnapshotProjector {
  const { store, pool, bus, logger, registry, batchSize, publishBatchSize, retryDelayMs, name } = options;
  const publisher = startSnapshotPublisher({
    pool,
    bus,
    logger,
    registry,
    batchSize: publishBatchSize,
    retryDelayMs,
    tenantPublishBytesPerSecond: options.tenantPublishBytesPerSecond,
    headPosition: () => store.headPosition(),
    topicCheckWaitMs: options.topicCheckWaitMs,
    topicWatchMs: options.topicWatchMs,
  });
  const projector = startProjector({
    projection: snapshotProjection({
      name,
      pool,
      onStoredAhead: () => publisher.request(),
    }),
    store,
    pool,
    logger,
    batchSize,
    retryDelayMs,
    metrics: registry ? createProjectorMetrics(registry, name ?? SNAPSHOT_PROJECTION) : undefined,
    onCommitted: () => publisher.request(),
  });
  const publishPoll = setInterval(() => publisher.request(), options.publishPollMs ?? 5000);
  publishPoll.unref();
  new Gauge({
    name: 'vantageedge_snapshot_projector_position',
    help: 'Global event position the snapshot projector has committed',
    registers: registry ? [registry] : [],
    collect() {
      this.set(Number(projector.checkpoint()));
    },
  });
  return {
    done: projector.done,
    checkpoint: () => projector.checkpoint(),
    idle: () => publisher.idle(),
    async stop() {
      clearInterval(publishPoll);
      await projector.stop();
      await publisher.stop();
    },
  };
}
