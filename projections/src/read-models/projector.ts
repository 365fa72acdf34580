import { isTenantDeletion } from '@vantageedge/shared/domain/events';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import type { StructuredLogger } from '@vantageedge/shared/observability/logger';
import type pg from 'pg';
import type { ProjectionDefinition } from '../runner/projection.js';
import { type Projector, startProjector } from '../runner/projector.js';
import type { ProjectorMetrics } from '../runner/projector-metrics.js';
import { applyEvents } from './apply-events.js';
import { READ_MODELS_PROJECTION, READ_MODELS_SCHEMA } from './schema.js';

/** The read models (`read_models.*`: tenants … api_keys, audit_log) as one projection of the log. */
export const readModelsProjection: ProjectionDefinition = {
  name: READ_MODELS_PROJECTION,
  appliesWhileQuarantined: isTenantDeletion,
  handle: (events, { client }) => applyEvents(client, READ_MODELS_SCHEMA, events),
};

export interface ReadModelProjectorOptions {
  store: EventStore;
  pool: pg.Pool;
  batchSize?: number | undefined;
  logger?: StructuredLogger | undefined;
  onCommitted?: ((checkpoint: bigint, events: number) => void) | undefined;
  /** Lag, checkpoint and batch metrics (createProjectorMetrics). */
  metrics?: ProjectorMetrics | undefined;
}

/** Keeps the read models folded from the log, from their checkpoint on. */
export function startReadModelProjector(options: ReadModelProjectorOptions): Projector {
  return startProjector({ ...options, projection: readModelsProjection });
}
