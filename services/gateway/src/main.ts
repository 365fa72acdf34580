import '@vantageedge/shared/settings/env-file';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { installProcessPolicy } from '@vantageedge/shared/process/process-policy';
import { cacheRedisSettings } from '@vantageedge/shared/redis/cache-redis';
import { redisSettings } from '@vantageedge/shared/redis/client';
import { checkSettingsOrExit, loadSettingsOrExit } from '@vantageedge/shared/settings/load-settings';
import {
  loadSnapshotVerifier,
  type SnapshotVerifier,
} from '@vantageedge/shared/snapshot-bus/record-signature';
import {
  assertSnapshotBusSharedAcrossProcesses,
  configPlaneSettings,
  snapshotBusFromSettings,
  snapshotBusSecurityWarning,
  snapshotBusSettings,
  snapshotVerifySettings,
} from '@vantageedge/shared/snapshot-bus/settings';
import { startGatewayTelemetry } from './observability/gateway-telemetry.js';
import { connectGatewayRedis } from './redis-connections.js';
import { checkRedisMemoryPolicy } from './redis-memory-policy.js';
import { assertGatewaySettings, gatewaySettings, gatewayStopDeadlineSeconds } from './settings.js';
import { startGatewayReplica } from './start-gateway-replica.js';
import { assertDefaultCertificateLoads } from './tls/default-certificate.js';

/**
 * `make run-gateway`: one gateway replica. Composition only — every part is built by its module:
 * config store (compiled tenants) ← config plane (snapshots from the bus) → request pipeline.
 * The replica itself is composed by startGatewayReplica (shared with `make dev`).
 */
const config = loadSettingsOrExit('gateway', {
  ...snapshotBusSettings,
  ...redisSettings,
  ...cacheRedisSettings,
  ...configPlaneSettings,
  ...snapshotVerifySettings,
  ...gatewaySettings,
});
let verifier: SnapshotVerifier | undefined;
checkSettingsOrExit('gateway', () => {
  assertGatewaySettings(config);
  if (config.SNAPSHOT_VERIFY_KEYS_FILE) verifier = loadSnapshotVerifier(config.SNAPSHOT_VERIFY_KEYS_FILE);
  assertSnapshotBusSharedAcrossProcesses(config);
  assertDefaultCertificateLoads(config);
});
// Reads the Kafka TLS files: a bad one stops the start here, before any connection is opened.
const bus = checkSettingsOrExit('gateway', () =>
  snapshotBusFromSettings(config, { clientId: `ve-gateway-${config.GATEWAY_REPLICA_ID}`, verifier }),
);
const telemetry = startGatewayTelemetry({
  enabled: config.OTEL_ENABLED,
  serviceName: config.OTEL_SERVICE_NAME ?? 'gateway',
  otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
});
const logger = createLogger({ service: 'gateway', level: config.LOG_LEVEL });
const kafkaWarning = snapshotBusSecurityWarning(config);
if (kafkaWarning) logger.warn(kafkaWarning);
const registry = createMetricsRegistry('gateway');
const {
  redis,
  cacheRedis,
  cacheServerOwn,
  disconnect: disconnectRedis,
} = checkSettingsOrExit('gateway', () => connectGatewayRedis(config, logger));
void checkRedisMemoryPolicy({ redis, cacheRedis: cacheServerOwn ? cacheRedis : undefined, logger });

if (verifier) {
  logger.info('snapshot records are verified', { accepted_key_ids: verifier.keyIds });
} else {
  logger.warn(
    'snapshot records are not verified (SNAPSHOT_VERIFY_KEYS_FILE unset): whoever can write the topic sets every tenant’s config',
  );
}
let replica: Awaited<ReturnType<typeof startGatewayReplica>> | undefined;
const drainMs = config.GATEWAY_DRAIN_SECONDS * 1000;
const timeoutMs = config.GATEWAY_SHUTDOWN_TIMEOUT_SECONDS * 1000;
installProcessPolicy({
  service: 'gateway',
  logger,
  registry,
  // The replica's own phases are bounded (drain, then the shutdown timeout); this covers the rest.
  deadlineMs: gatewayStopDeadlineSeconds(config) * 1000,
  drain: async (reason) => {
    // After an uncaught exception nothing here can be trusted for long: skip the load-balancer grace.
    await replica?.drainAndClose({ drainMs: reason.kind === 'fatal' ? 0 : drainMs, timeoutMs });
    await bus.close();
    disconnectRedis();
    await telemetry.shutdown();
  },
});
replica = await startGatewayReplica({
  config,
  bus,
  redis,
  cacheRedis,
  registry,
  logger,
  tracingEnabled: telemetry.enabled,
});
