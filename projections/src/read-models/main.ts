// The read-model projector process (`make run-projector`): follows the event log from its checkpoint
// and keeps read_models.* up to date until SIGINT/SIGTERM.
import 'dotenv/config';
import { loadConfigOrExit } from '@vantageedge/shared/config/load-config';
import { observabilitySettings, port } from '@vantageedge/shared/config/settings';
import { createEventStore, eventStoreConfigFromSettings } from '@vantageedge/shared/event-store/factory';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { startTelemetry } from '@vantageedge/shared/observability/telemetry';
import { createRedisClient, redisClientOptionsFromSettings } from '@vantageedge/shared/redis/client';
import { RedisUsageBatchStore } from '@vantageedge/shared/usage/redis-usage-batch-store';
import pg from 'pg';
import { type MetricsServer, startMetricsServer } from '../runner/metrics-server.js';
import { createProjectorMetrics } from '../runner/projector-metrics.js';
import { projectorMetricsSettings } from '../runner/settings.js';
import { usageFlusherSettings } from '../usage/settings.js';
import { startUsageFlusher, type UsageFlusher } from '../usage/usage-flusher.js';
import { readModelSettings } from './config.js';
import { startReadModelProjector } from './projector.js';
import { READ_MODELS_PROJECTION } from './schema.js';

const config = loadConfigOrExit('read-model-projector', {
  ...readModelSettings,
  ...observabilitySettings,
  ...projectorMetricsSettings,
  ...usageFlusherSettings,
  /** Prometheus /metrics and /healthz of the projector; 0 = off. */
  READ_MODEL_PROJECTOR_METRICS_PORT: port.default(9465),
});
const telemetry = startTelemetry({
  serviceName: config.OTEL_SERVICE_NAME ?? 'read-model-projector',
  enabled: config.OTEL_ENABLED,
  otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
  instrumentHttp: false,
});
const logger = createLogger({ service: 'read-model-projector', level: config.LOG_LEVEL });
const registry = createMetricsRegistry('read-model-projector');
const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 4 });
const store = createEventStore(eventStoreConfigFromSettings(config, { pool }));

const projector = startReadModelProjector({
  store,
  pool,
  batchSize: config.READ_MODEL_BATCH_SIZE,
  logger,
  metrics: createProjectorMetrics(registry, READ_MODELS_PROJECTION),
  onCommitted: (checkpoint, events) =>
    logger.debug('batch committed', { checkpoint: checkpoint.toString(), events }),
});
// The gateways' request counts: Redis usage batches → usage_counts (GET /api/v1/usage).
const redis = config.USAGE_FLUSHER_ENABLED
  ? createRedisClient({ ...redisClientOptionsFromSettings(config), name: 'usage-flusher', logger })
  : undefined;
const usageFlusher: UsageFlusher | undefined = redis
  ? startUsageFlusher({
      pool,
      batches: new RedisUsageBatchStore(redis, config.GATEWAY_REDIS_KEY_PREFIX),
      intervalMs: config.USAGE_FLUSH_INTERVAL_MS,
      logger,
    })
  : undefined;
let metricsServer: MetricsServer | undefined;
if (config.READ_MODEL_PROJECTOR_METRICS_PORT !== 0) {
  metricsServer = await startMetricsServer({
    registry,
    host: config.PROJECTOR_METRICS_HOST,
    port: config.READ_MODEL_PROJECTOR_METRICS_PORT,
  });
}
logger.info('read-model projector started', {
  batch_size: config.READ_MODEL_BATCH_SIZE,
  metrics: metricsServer ? `${config.PROJECTOR_METRICS_HOST}:${metricsServer.port}` : 'off',
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info('read-model projector stopping', { signal, checkpoint: projector.checkpoint().toString() });
  await metricsServer?.close();
  await usageFlusher?.stop();
  redis?.disconnect();
  await projector.stop();
  await store.close();
  await pool.end();
  await telemetry.shutdown();
}
process.once('SIGINT', () => void shutdown('SIGINT'));
process.once('SIGTERM', () => void shutdown('SIGTERM'));
await projector.done;
