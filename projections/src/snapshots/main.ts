import http from 'node:http';
import 'dotenv/config';
import { loadConfigOrExit } from '@vantageedge/shared/config/load-config';
import { observabilitySettings, port, postgresUrl } from '@vantageedge/shared/config/settings';
import { createEventStore, eventStoreConfigFromSettings } from '@vantageedge/shared/event-store/factory';
import { eventStoreSettings } from '@vantageedge/shared/event-store/settings';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { installProcessPolicy } from '@vantageedge/shared/process/process-policy';
import { snapshotBusFromSettings, snapshotBusSettings } from '@vantageedge/shared/snapshot-bus/settings';
import pg from 'pg';
import { z } from 'zod';
import { startSnapshotProjector } from './snapshot-projector.js';

/** `make run-snapshot-projector`: folds events into gateway snapshots and publishes them to Kafka. */
const settings = loadConfigOrExit('snapshot-projector', {
  ...observabilitySettings,
  ...eventStoreSettings,
  ...snapshotBusSettings,
  DATABASE_URL: postgresUrl.default('postgres://vantageedge:vantageedge@127.0.0.1:55432/vantageedge'),
  /** Prometheus /metrics of the projector; 0 = off. */
  SNAPSHOT_PROJECTOR_METRICS_PORT: port.default(9464),
  SNAPSHOT_PROJECTOR_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(500),
  /** After SIGTERM: how long the batch and publish in flight may take before the process exits anyway. */
  PROJECTOR_SHUTDOWN_TIMEOUT_SECONDS: z.coerce.number().min(1).max(600).default(30),
});

const logger = createLogger({ service: 'snapshot-projector', level: settings.LOG_LEVEL });
const registry = createMetricsRegistry('snapshot-projector');
const pool = new pg.Pool({ connectionString: settings.DATABASE_URL, max: 5 });
const store = createEventStore(eventStoreConfigFromSettings(settings, { pool }));
const bus = snapshotBusFromSettings(settings, { clientId: 've-snapshot-projector' });
const projector = startSnapshotProjector({
  store,
  pool,
  bus,
  logger,
  registry,
  batchSize: settings.SNAPSHOT_PROJECTOR_BATCH_SIZE,
});

let metricsServer: http.Server | undefined;
if (settings.SNAPSHOT_PROJECTOR_METRICS_PORT !== 0) {
  metricsServer = http.createServer(async (req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': registry.contentType }).end(await registry.metrics());
  });
  metricsServer.listen(settings.SNAPSHOT_PROJECTOR_METRICS_PORT, '127.0.0.1');
}
installProcessPolicy({
  service: 'snapshot-projector',
  logger,
  registry,
  // A batch commits or rolls back as a whole, and unacknowledged snapshots are republished on start.
  deadlineMs: settings.PROJECTOR_SHUTDOWN_TIMEOUT_SECONDS * 1000,
  drain: async () => {
    metricsServer?.close();
    await projector.stop(); // the batch in flight commits (with its checkpoint) first
    logger.info('snapshot projector stopped', { checkpoint: projector.checkpoint().toString() });
    await bus.close();
    await store.close();
    await pool.end();
  },
});
logger.info('snapshot projector started', { topic: settings.SNAPSHOT_TOPIC, bus: settings.SNAPSHOT_BUS });
