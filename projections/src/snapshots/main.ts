import '@vantageedge/shared/settings/env-file';
import { createEventStore, eventStoreConfigFromSettings } from '@vantageedge/shared/event-store/factory';
import {
  assertEventStoreSettings,
  assertEventStoreSharedAcrossProcesses,
  eventStoreSettings,
} from '@vantageedge/shared/event-store/settings';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { type MetricsServer, startMetricsServer } from '@vantageedge/shared/observability/metrics-server';
import { startTelemetry } from '@vantageedge/shared/observability/telemetry';
import {
  createLivePool,
  livenessFromSettings,
  postgresLivenessSettings,
} from '@vantageedge/shared/postgres/connection-liveness';
import { databaseTlsWarning } from '@vantageedge/shared/postgres/database-url-security';
import { abandonOpeningConnections, endPool } from '@vantageedge/shared/postgres/end-pool';
import { installProcessPolicy } from '@vantageedge/shared/process/process-policy';
import {
  LOCAL_DEFAULTS,
  observabilitySettings,
  postgresUrl,
} from '@vantageedge/shared/settings/common-settings';
import { checkSettingsOrExit, loadSettingsOrExit } from '@vantageedge/shared/settings/load-settings';
import { loadSnapshotSigner, type SnapshotSigner } from '@vantageedge/shared/snapshot-bus/record-signature';
import {
  assertSnapshotBusSharedAcrossProcesses,
  snapshotBusFromSettings,
  snapshotBusSecurityWarning,
  snapshotBusSettings,
  snapshotSigningSettings,
} from '@vantageedge/shared/snapshot-bus/settings';
import {
  projectorMetricsSettings,
  projectorShutdownSettings,
  projectorStopDeadlineSeconds,
} from '../runner/settings.js';
import { snapshotProjectorSettings } from './settings.js';
import { startSnapshotProjector } from './snapshot-projector.js';

/** `make run-snapshot-projector`: folds events into gateway snapshots and publishes them to Kafka. */
const settings = loadSettingsOrExit('snapshot-projector', {
  ...observabilitySettings,
  ...eventStoreSettings,
  ...snapshotBusSettings,
  ...snapshotSigningSettings,
  ...projectorMetricsSettings,
  ...projectorShutdownSettings,
  DATABASE_URL: postgresUrl.default(LOCAL_DEFAULTS.DATABASE_URL),
  ...postgresLivenessSettings,
  ...snapshotProjectorSettings,
});
let signer: SnapshotSigner | undefined;
checkSettingsOrExit('snapshot-projector', () => {
  assertEventStoreSettings(settings);
  if (settings.SNAPSHOT_SIGNING_KEY_FILE) signer = loadSnapshotSigner(settings.SNAPSHOT_SIGNING_KEY_FILE);
  assertEventStoreSharedAcrossProcesses(settings);
  assertSnapshotBusSharedAcrossProcesses(settings);
});

// Reads the Kafka TLS files: a bad one stops the start here, before any connection is opened.
const bus = checkSettingsOrExit('snapshot-projector', () =>
  snapshotBusFromSettings(settings, { clientId: 've-snapshot-projector', signer }),
);
const telemetry = startTelemetry({
  serviceName: settings.OTEL_SERVICE_NAME ?? 'snapshot-projector',
  enabled: settings.OTEL_ENABLED,
  otlpEndpoint: settings.OTEL_EXPORTER_OTLP_ENDPOINT,
});
const logger = createLogger({ service: 'snapshot-projector', level: settings.LOG_LEVEL });
const kafkaWarning = snapshotBusSecurityWarning(settings);
if (kafkaWarning) logger.warn(kafkaWarning);
const databaseWarning = databaseTlsWarning(settings.DATABASE_URL);
if (databaseWarning) logger.warn(databaseWarning);
const registry = createMetricsRegistry('snapshot-projector');
// A connection that died silently is found in seconds; a batch in flight on one resumes from its checkpoint.
const pool = createLivePool(
  { connectionString: settings.DATABASE_URL, max: 5 },
  livenessFromSettings(settings),
);
const store = createEventStore(eventStoreConfigFromSettings(settings, { pool }));
const projector = startSnapshotProjector({
  store,
  pool,
  bus,
  logger,
  registry,
  batchSize: settings.SNAPSHOT_PROJECTOR_BATCH_SIZE,
  tenantPublishBytesPerSecond: settings.SNAPSHOT_TENANT_PUBLISH_BYTES_PER_SECOND,
});

// The listener is opened before the signal handling is installed, and closed by the stop once open.
const metricsListening: Promise<MetricsServer | undefined> =
  settings.SNAPSHOT_PROJECTOR_METRICS_PORT === 0
    ? Promise.resolve(undefined)
    : startMetricsServer({
        registry,
        host: settings.PROJECTOR_METRICS_HOST,
        port: settings.SNAPSHOT_PROJECTOR_METRICS_PORT,
        service: 'projector',
      });

// Before anything is awaited: a signal during start-up (the projector waiting for PostgreSQL or Kafka,
// the listener opening) stops the process like one after it, never node's default (as PID 1: ignored).
installProcessPolicy({
  service: 'snapshot-projector',
  logger,
  registry,
  // A batch commits or rolls back as a whole, and unacknowledged snapshots are republished on start.
  deadlineMs: projectorStopDeadlineSeconds(settings) * 1000,
  drain: async () => {
    // Work waiting for a connection PostgreSQL has not answered has sent nothing: it is not waited for.
    abandonOpeningConnections(pool);
    await (await metricsListening.catch(() => undefined))?.close();
    await projector.stop(); // the batch in flight commits (with its checkpoint) first
    logger.info('snapshot projector stopped', { checkpoint: projector.checkpoint().toString() });
    await bus.close();
    await store.close();
    await endPool(pool);
    await telemetry.shutdown();
  },
});
const metricsServer = await metricsListening;
logger.info('snapshot projector started', {
  topic: settings.SNAPSHOT_TOPIC,
  bus: settings.SNAPSHOT_BUS,
  signing_key_id: signer?.keyId ?? 'none (records unsigned)',
  metrics: metricsServer ? `${settings.PROJECTOR_METRICS_HOST}:${metricsServer.port}` : 'off',
});
