import type { EventStore } from '@vantageedge/shared/event-store/port';
import type pg from 'pg';
import { type Projector, type ProjectorLogger, startProjector } from '../shared/projector.js';
import type { ProjectorMetrics } from '../shared/projector-metrics.js';
import { applyEvents } from './apply-events.js';
import { READ_MODELS_PROJECTION, READ_MODELS_SCHEMA } from './schema.js';

export interface ReadModelProjectorOptions {
  store: EventStore;
  pool: pg.Pool;
  batchSize?: number;
  logger?: ProjectorLogger;
  onCommitted?: (checkpoint: bigint, events: number) => void;
  metrics?: ProjectorMetrics;
}

/** The projector that keeps `read_models.*` (tenants … api_keys, audit_log) folded from the log. */
export function startReadModelProjector(options: ReadModelProjectorOptions): Projector {
  return startProjector({
    ...options,
    name: READ_MODELS_PROJECTION,
    apply: (client, events) => applyEvents(client, READ_MODELS_SCHEMA, events),
  });
}
