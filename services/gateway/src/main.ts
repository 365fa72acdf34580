import 'dotenv/config';
import { ConfigError, loadConfigOrExit } from '@vantageedge/shared/config/load-config';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import {
  createRedisClient,
  redisClientOptionsFromSettings,
  redisSettings,
} from '@vantageedge/shared/redis/client';
import {
  configPlaneSettings,
  snapshotBusFromSettings,
  snapshotBusSettings,
} from '@vantageedge/shared/snapshot-bus/settings';
import { assertGatewayConfig, gatewaySettings } from './config.js';
import { startGatewayTelemetry } from './observability/gateway-telemetry.js';
import { startGatewayReplica } from './start-gateway-replica.js';

/**
 * `make run-gateway`: one gateway replica. Composition only — every part is built by its module:
 * config store (compiled tenants) ← config plane (snapshots from the bus) → request pipeline.
 * The replica itself is composed by startGatewayReplica (shared with `make dev`).
 */
const config = loadConfigOrExit('gateway', {
  ...snapshotBusSettings,
  ...redisSettings,
  ...configPlaneSettings,
  ...gatewaySettings,
});
try {
  assertGatewayConfig(config);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  for (const p of error.problems)
    process.stderr.write(`gateway: invalid configuration: ${p.setting} ${p.issue}\n`);
  process.exit(1);
}
const telemetry = startGatewayTelemetry({
  enabled: config.OTEL_ENABLED,
  serviceName: config.OTEL_SERVICE_NAME ?? 'gateway',
  otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
});
const logger = createLogger({ service: 'gateway', level: config.LOG_LEVEL });
const registry = createMetricsRegistry('gateway');
const redis = createRedisClient({ ...redisClientOptionsFromSettings(config), name: 'gateway', logger });

const bus = snapshotBusFromSettings(config, { clientId: `ve-gateway-${config.GATEWAY_REPLICA_ID}` });
const replica = await startGatewayReplica({
  config,
  bus,
  redis,
  registry,
  logger,
  tracingEnabled: telemetry.enabled,
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info('gateway stopping', { signal });
  await replica.close();
  await bus.close();
  redis.disconnect();
  await telemetry.shutdown();
  process.exit(0);
}
process.once('SIGINT', () => void shutdown('SIGINT'));
process.once('SIGTERM', () => void shutdown('SIGTERM'));
