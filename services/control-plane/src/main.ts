import '@vantageedge/shared/settings/env-file';
import { createEventStore, eventStoreConfigFromSettings } from '@vantageedge/shared/event-store/factory';
import {
  assertEventStoreSettings,
  assertEventStoreSharedAcrossProcesses,
} from '@vantageedge/shared/event-store/settings';
import { closeConnectionsAfterResponses, closeGracefully } from '@vantageedge/shared/http/graceful-close';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { type MetricsServer, startMetricsServer } from '@vantageedge/shared/observability/metrics-server';
import { startTelemetry } from '@vantageedge/shared/observability/telemetry';
import { livenessFromSettings } from '@vantageedge/shared/postgres/connection-liveness';
import { databaseTlsWarning } from '@vantageedge/shared/postgres/database-url-security';
import { installProcessPolicy } from '@vantageedge/shared/process/process-policy';
import { cacheRedisClientOptions } from '@vantageedge/shared/redis/cache-redis';
import { createRedisClient, redisClientOptionsFromSettings } from '@vantageedge/shared/redis/client';
import { checkSettingsOrExit, loadSettingsOrExit } from '@vantageedge/shared/settings/load-settings';
import { Counter } from 'prom-client';
import { createAdminPool } from './admin-pool.js';
import { controlPlaneAppFromSettings } from './app-from-settings.js';
import { listenControlPlane, listenerOptionsFromSettings } from './http/listener.js';
import {
  assertControlPlaneSettings,
  controlPlaneSettings,
  controlPlaneStopDeadlineSeconds,
} from './settings.js';

/** `make run-control-plane`: the admin API (commands + queries) on CONTROL_PLANE_PORT. */
const config = loadSettingsOrExit('control-plane', controlPlaneSettings);
checkSettingsOrExit('control-plane', () => {
  assertControlPlaneSettings(config);
  assertEventStoreSettings(config);
  assertEventStoreSharedAcrossProcesses(config);
});
const telemetry = startTelemetry({
  serviceName: config.OTEL_SERVICE_NAME ?? 'control-plane',
  enabled: config.OTEL_ENABLED,
  otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
});
const logger = createLogger({ service: 'control-plane', level: config.LOG_LEVEL });
const databaseWarning = databaseTlsWarning(config.DATABASE_URL);
if (databaseWarning) logger.warn(databaseWarning);
const metrics = createMetricsRegistry('control-plane');
// A statement that meets a connection PostgreSQL already ended is sent again on a new one.
// One that died silently is found in seconds (connection-liveness.ts).
const pool = createAdminPool({
  connectionString: config.DATABASE_URL,
  waitMs: config.CONTROL_PLANE_POOL_WAIT_MS,
  liveness: livenessFromSettings(config),
});
const store = createEventStore(eventStoreConfigFromSettings(config, { pool }));

// Commands never wait on Redis: without it, rollout status and cache purges answer 503/400 and the
// rest of the admin API keeps working.
const redisOptions = checkSettingsOrExit('control-plane', () => redisClientOptionsFromSettings(config));
const redis = createRedisClient({
  ...redisOptions,
  name: 'control-plane',
  logger,
  commandSpans: true,
});
// Purges bump generations in, and publish on, the Redis the gateways keep their cache in.
const cacheRedisOptions = checkSettingsOrExit('control-plane', () => cacheRedisClientOptions(config));
const cacheRedis = cacheRedisOptions
  ? createRedisClient({ ...cacheRedisOptions, name: 'control-plane-cache', logger, commandSpans: true })
  : undefined;
const stopping = new AbortController();
const app = controlPlaneAppFromSettings(config, {
  store,
  pool,
  logger,
  metrics,
  redis,
  cacheRedis,
  stopping: stopping.signal,
});

const droppedConnections = new Counter({
  name: 'vantageedge_control_plane_dropped_connections_total',
  help: 'Admin API connections closed on arrival (CONTROL_PLANE_MAX_CONNECTIONS or _PER_CLIENT reached)',
  registers: [metrics],
});
// The listeners are opened before the signal handling is installed, and closed by the stop once open.
const listening = (async () => {
  const server = await listenControlPlane(
    app,
    listenerOptionsFromSettings(config, () => droppedConnections.inc()),
  );
  logger.info('control plane listening', {
    host: config.CONTROL_PLANE_HOST,
    port: config.CONTROL_PLANE_PORT,
  });
  let metricsServer: MetricsServer | undefined;
  if (config.CONTROL_PLANE_METRICS_PORT !== 0) {
    metricsServer = await startMetricsServer({
      registry: metrics,
      host: config.CONTROL_PLANE_METRICS_HOST,
      port: config.CONTROL_PLANE_METRICS_PORT,
      service: 'control-plane',
    });
    logger.info('control plane metrics listening', {
      host: config.CONTROL_PLANE_METRICS_HOST,
      port: metricsServer.port,
    });
  }
  return { server, metricsServer };
})();

const drainMs = config.CONTROL_PLANE_DRAIN_SECONDS * 1000;
const shutdownTimeoutMs = config.CONTROL_PLANE_SHUTDOWN_TIMEOUT_SECONDS * 1000;
// Before anything is awaited: a signal during start-up stops the process like one after it, never
// node's default (as PID 1: ignored).
installProcessPolicy({
  service: 'control-plane',
  logger,
  registry: metrics,
  deadlineMs: controlPlaneStopDeadlineSeconds(config) * 1000,
  drain: async (reason) => {
    // /readyz answers 503 and commands waiting for their rollout are answered at once (202); the
    // listener keeps serving through the drain (load balancers notice), each answer closing its
    // connection. Then it stops accepting; commands in flight finish (each appends its events or
    // nothing); after the timeout the connections still open are closed.
    stopping.abort();
    // Stopped while opening them: once open (a failed start-up leaves them to the exit).
    const listeners = await listening.catch(() => undefined);
    if (listeners !== undefined) {
      const { server, metricsServer } = listeners;
      closeConnectionsAfterResponses(server);
      // After an uncaught exception nothing here can be trusted for long: no load-balancer grace.
      if (reason.kind === 'signal' && drainMs > 0) {
        logger.info('draining: /readyz answers 503, still accepting', { drain_ms: drainMs });
        await new Promise((resolve) => setTimeout(resolve, drainMs));
      }
      const cut = await closeGracefully(server, shutdownTimeoutMs);
      if (cut > 0)
        logger.warn('shutdown timeout: closed connections with requests still in flight', {
          connections: cut,
        });
      await metricsServer?.close();
    }
    await store.close();
    await pool.end();
    redis.disconnect();
    cacheRedis?.disconnect();
    await telemetry.shutdown();
  },
});
await listening;
