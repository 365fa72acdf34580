// The read-model projector process (`make run-projector`): follows the event log from its checkpoint
// and keeps read_models.* up to date until SIGINT/SIGTERM.
import '@vantageedge/shared/settings/env-file';
import { createEventStore, eventStoreConfigFromSettings } from '@vantageedge/shared/event-store/factory';
import {
  assertEventStoreSettings,
  assertEventStoreSharedAcrossProcesses,
} from '@vantageedge/shared/event-store/settings';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { type MetricsServer, startMetricsServer } from '@vantageedge/shared/observability/metrics-server';
import { startTelemetry } from '@vantageedge/shared/observability/telemetry';
import { createLivePool, livenessFromSettings } from '@vantageedge/shared/postgres/connection-liveness';
import { databaseTlsWarning } from '@vantageedge/shared/postgres/database-url-security';
import { abandonOpeningConnections, endPool } from '@vantageedge/shared/postgres/end-pool';
import { installProcessPolicy } from '@vantageedge/shared/process/process-policy';
import { createRedisClient, redisClientOptionsFromSettings } from '@vantageedge/shared/redis/client';
import { observabilitySettings } from '@vantageedge/shared/settings/common-settings';
import { checkSettingsOrExit, loadSettingsOrExit } from '@vantageedge/shared/settings/load-settings';
import { RedisUsageBatchStore } from '@vantageedge/shared/usage/redis-usage-batch-store';
import { createProjectorMetrics } from '../runner/projector-metrics.js';
import {
  projectorMetricsSettings,
  projectorShutdownSettings,
  projectorStopDeadlineSeconds,
} from '../runner/settings.js';
import { usageFlusherSettings } from '../usage/settings.js';
import { startUsageFlusher, type UsageFlusher } from '../usage/usage-flusher.js';
import { startReadModelProjector } from './projector.js';
import { READ_MODELS_PROJECTION } from './schema.js';
import { readModelProjectorSettings, readModelSettings } from './settings.js';

const config = loadSettingsOrExit('read-model-projector', {
  ...readModelSettings,
  ...observabilitySettings,
  ...projectorMetricsSettings,
  ...projectorShutdownSettings,
  ...usageFlusherSettings,
  ...readModelProjectorSettings,
});
checkSettingsOrExit('read-model-projector', () => {
  assertEventStoreSettings(config);
  assertEventStoreSharedAcrossProcesses(config);
});
const telemetry = startTelemetry({
  serviceName: config.OTEL_SERVICE_NAME ?? 'read-model-projector',
  enabled: config.OTEL_ENABLED,
  otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
});
const logger = createLogger({ service: 'read-model-projector', level: config.LOG_LEVEL });
const databaseWarning = databaseTlsWarning(config.DATABASE_URL);
if (databaseWarning) logger.warn(databaseWarning);
const registry = createMetricsRegistry('read-model-projector');
// A connection that died silently is found in seconds; a batch in flight on one resumes from its checkpoint.
const pool = createLivePool({ connectionString: config.DATABASE_URL, max: 4 }, livenessFromSettings(config));
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
  ? createRedisClient({
      ...checkSettingsOrExit('read-model-projector', () => redisClientOptionsFromSettings(config)),
      name: 'usage-flusher',
      logger,
    })
  : undefined;
const usageFlusher: UsageFlusher | undefined = redis
  ? startUsageFlusher({
      pool,
      batches: new RedisUsageBatchStore(redis, config.GATEWAY_REDIS_KEY_PREFIX),
      intervalMs: config.USAGE_FLUSH_INTERVAL_MS,
      retentionDays: config.USAGE_RETENTION_DAYS,
      logger,
      registry,
    })
  : undefined;
// The listener is opened before the signal handling is installed, and closed by the stop once open.
const metricsListening: Promise<MetricsServer | undefined> =
  config.READ_MODEL_PROJECTOR_METRICS_PORT === 0
    ? Promise.resolve(undefined)
    : startMetricsServer({
        registry,
        host: config.PROJECTOR_METRICS_HOST,
        port: config.READ_MODEL_PROJECTOR_METRICS_PORT,
        service: 'projector',
      });

// Before anything is awaited: a signal during start-up (the projector waiting for PostgreSQL, the
// listener opening) stops the process like one after it, never node's default (as PID 1: ignored).
installProcessPolicy({
  service: 'read-model-projector',
  logger,
  registry,
  // A batch commits or rolls back as a whole, so even a stop cut short leaves the checkpoint consistent.
  deadlineMs: projectorStopDeadlineSeconds(config) * 1000,
  drain: async () => {
    // Work waiting for a connection PostgreSQL has not answered has sent nothing: it is not waited for.
    abandonOpeningConnections(pool);
    await (await metricsListening.catch(() => undefined))?.close();
    await usageFlusher?.stop(); // a batch being applied commits or rolls back as a whole
    redis?.disconnect();
    await projector.stop(); // the batch in flight commits (with its checkpoint) first
    logger.info('read-model projector stopped', { checkpoint: projector.checkpoint().toString() });
    await store.close();
    await endPool(pool);
    await telemetry.shutdown();
  },
});
const metricsServer = await metricsListening;
logger.info('read-model projector started', {
  batch_size: config.READ_MODEL_BATCH_SIZE,
  metrics: metricsServer ? `${config.PROJECTOR_METRICS_HOST}:${metricsServer.port}` : 'off',
});
await projector.done;
