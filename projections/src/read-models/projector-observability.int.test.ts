import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { InMemoryEventStore } from '@vantageedge/shared/event-store/in-memory/in-memory-event-store';
import { startTelemetry } from '@vantageedge/shared/observability/telemetry';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProjectorMetrics } from '../runner/projector-metrics.js';
import { startReadModelProjector } from './projector.js';
import { READ_MODELS_PROJECTION } from './schema.js';
import { eventually } from './testing/compare.js';
import { appendWorkload } from './testing/workload.js';

/**
 * Regression test: the projectors were neither traced nor showed their lag. Each batch is now a span
 * and the lag behind the head of the log is a metric read at scrape time.
 */
let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.drop();
});

describe('read-model projector observability', () => {
  it('traces every batch and reports lag, position and events applied', async () => {
    const exporter = new InMemorySpanExporter();
    const telemetry = startTelemetry({
      serviceName: 'projector-test',
      enabled: true,
      exporter,
    });
    const store = new InMemoryEventStore();
    const registry = new Registry();
    const metrics = createProjectorMetrics(registry, READ_MODELS_PROJECTION);
    const written = await appendWorkload(store, { events: 60, seed: 7 });
    const projector = startReadModelProjector({ store, pool: database.pool, batchSize: 25, metrics });
    try {
      await eventually(async () => projector.checkpoint() === written.position);
      await telemetry.forceFlush();
      const batches = exporter.getFinishedSpans().filter((span) => span.name === 'read_models batch');
      expect(batches.length).toBeGreaterThanOrEqual(3);
      expect(
        batches.reduce((sum, span) => sum + Number(span.attributes['vantageedge.batch.events']), 0),
      ).toBe(written.events);
      expect(batches.map((span) => span.attributes['vantageedge.batch.last_position'])).toContain(
        written.position.toString(),
      );

      const caughtUp = await registry.metrics();
      expect(caughtUp).toContain('vantageedge_projector_lag_events{projection="read_models"} 0');
      expect(caughtUp).toContain(
        `vantageedge_projector_checkpoint_position{projection="read_models"} ${written.position}`,
      );
      expect(caughtUp).toContain(
        `vantageedge_projector_events_total{projection="read_models"} ${written.events}`,
      );

      await projector.stop();
      const more = await appendWorkload(store, { events: 5, seed: 8 });
      expect(await registry.metrics()).toContain(
        `vantageedge_projector_lag_events{projection="read_models"} ${more.position - written.position}`,
      );
    } finally {
      await projector.stop();
      await telemetry.shutdown();
    }
  });
});
