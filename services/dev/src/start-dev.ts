import type { AddressInfo } from 'node:net';
import { createAdminPool } from '@vantageedge/control-plane/admin-pool';
import { controlPlaneAppFromSettings } from '@vantageedge/control-plane/app-from-settings';
import type { DevSignIn } from '@vantageedge/control-plane/http/console-router';
import { listenControlPlane, listenerOptionsFromSettings } from '@vantageedge/control-plane/http/listener';
import { assertControlPlaneSettings, controlPlaneSettings } from '@vantageedge/control-plane/settings';
import { assertGatewaySettings, gatewaySettings } from '@vantageedge/gateway/settings';
import { type GatewayReplica, startGatewayReplica } from '@vantageedge/gateway/start-gateway-replica';
import { assertDefaultCertificateLoads } from '@vantageedge/gateway/tls/default-certificate';
import { migrateUp } from '@vantageedge/migrations/runner';
import { startReadModelProjector } from '@vantageedge/projections/read-models/projector';
import type { Projector } from '@vantageedge/projections/runner/projector';
import {
  type SnapshotProjector,
  startSnapshotProjector,
} from '@vantageedge/projections/snapshots/snapshot-projector';
import { startUsageFlusher } from '@vantageedge/projections/usage/usage-flusher';
import { createEventStore, eventStoreConfigFromSettings } from '@vantageedge/shared/event-store/factory';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import type { Logger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { livenessFromSettings } from '@vantageedge/shared/postgres/connection-liveness';
import { databaseTlsWarning } from '@vantageedge/shared/postgres/database-url-security';
import { cacheRedisClientOptions, cacheRedisSettings } from '@vantageedge/shared/redis/cache-redis';
import {
  createRedisClient,
  type RedisClient,
  redisClientOptionsFromSettings,
  redisSettings,
} from '@vantageedge/shared/redis/client';
import { parseSettings, SettingsError } from '@vantageedge/shared/settings/load-settings';
import { InMemorySnapshotLog } from '@vantageedge/shared/snapshot-bus/in-memory-snapshot-bus';
import type { SnapshotBus } from '@vantageedge/shared/snapshot-bus/port';
import {
  loadSnapshotSigner,
  loadSnapshotVerifier,
  type SnapshotSigner,
  type SnapshotVerifier,
} from '@vantageedge/shared/snapshot-bus/record-signature';
import {
  configPlaneSettings,
  snapshotBusFromSettings,
  snapshotBusSecurityWarning,
  snapshotBusSettings,
  snapshotSigningSettings,
  snapshotVerifySettings,
} from '@vantageedge/shared/snapshot-bus/settings';
import { InMemoryQuotaStore, RedisQuotaStore } from '@vantageedge/shared/usage/quota-store';
import { RedisUsageBatchStore } from '@vantageedge/shared/usage/redis-usage-batch-store';
import { InMemoryUsageBatchStore } from '@vantageedge/shared/usage/usage-cells';
import type pg from 'pg';
import { startDemoOrigin } from './demo-origin.js';
import { type EmbeddedDatabase, startEmbeddedDatabase } from './embedded-database.js';

type Env = Record<string, string | undefined>;

export interface StartVantageEdgeOptions {
  /** The settings (make dev passes devEnvironment(process.env) with CLERK_JWT_KEY filled in). */
  env: Env;
  /** Where the embedded PostgreSQL keeps its data (used only when DATABASE_URL is unset). */
  dataDir: string;
  logger: Logger;
  /** Lines for the person watching (start-up steps); default: nothing. */
  progress?: (line: string) => void;
  /** The console's development sign-in: issues a development token (when make dev signs them). */
  devSignIn?: DevSignIn | undefined;
}

export interface VantageEdgeUrls {
  controlPlane: string;
  /** The web console (served by the control plane). */
  console: string;
  gateway: string;
  /** https://… when GATEWAY_TLS_PORT is set. */
  gatewayTls?: string | undefined;
  gatewayAdmin: string;
  demoOrigin: string;
  database: string;
}

export interface RunningVantageEdge {
  urls: VantageEdgeUrls;
  /** The event store the control plane writes to (the demo seeding writes through it too). */
  store: EventStore;
  pool: pg.Pool;
  apiKeyPepper: string;
  gateway: GatewayReplica;
  /** Stops everything in reverse order, embedded PostgreSQL last. Safe to call twice. */
  close(): Promise<void>;
}

const isSet = (value: string | undefined): value is string => value !== undefined && value !== '';

function urlHost(host: string): string {
  return host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
}

/**
 * The whole product in one process: database → migrations → event store → read-model projector and
 * snapshot projector → control plane → gateway (config plane, rate-limit and cache stages, upstream
 * sets) fed by the same snapshot bus → the local demo origin. Every part is the services' own code;
 * settings switch any of them to the real thing (DATABASE_URL, REDIS_URL, SNAPSHOT_BUS=kafka,
 * EVENT_STORE=eventstoredb).
 */
export async function startVantageEdge(options: StartVantageEdgeOptions): Promise<RunningVantageEdge> {
  const progress = options.progress ?? (() => {});
  const { logger } = options;
  const env: Env = { ...options.env };
  const closers: Array<[string, () => Promise<unknown> | unknown]> = [];
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      for (const [name, closer] of closers.reverse()) {
        const begun = Date.now();
        try {
          await closer();
          logger.debug('stopped', { part: name, ms: Date.now() - begun });
        } catch (error) {
          logger.warn('stopping a part failed', { part: name, error: String(error) });
        }
      }
    })();
    return closed;
  };

  try {
    // As the projector and the gateway warn at start, before anything connects.
    const kafkaWarning = snapshotBusSecurityWarning(parseSettings(snapshotBusSettings, env));
    if (kafkaWarning) logger.warn(kafkaWarning);

    // ---- database ----
    let database: EmbeddedDatabase | undefined;
    if (!isSet(env['DATABASE_URL'])) {
      progress('starting embedded PostgreSQL');
      database = await startEmbeddedDatabase({
        repoDataDir: options.dataDir,
        port: Number(env['VANTAGEEDGE_DEV_PG_PORT'] ?? 55433),
        log: (line) => logger.debug(line, { part: 'embedded-postgres' }),
      });
      closers.push(['embedded PostgreSQL', () => database?.stop()]);
      env['DATABASE_URL'] = database.url;
    } else {
      const warning = databaseTlsWarning(env['DATABASE_URL'] as string, env);
      if (warning) logger.warn(warning);
    }
    const databaseUrl = env['DATABASE_URL'] as string;
    const { applied } = await migrateUp(databaseUrl);
    if (applied.length > 0) progress(`applied ${applied.length} migrations`);

    // ---- settings of each part, validated by the part's own schema ----
    const cpConfig = parseSettings(controlPlaneSettings, env);
    assertControlPlaneSettings(cpConfig);
    const gwConfig = parseSettings(
      {
        ...snapshotBusSettings,
        ...redisSettings,
        ...cacheRedisSettings,
        ...configPlaneSettings,
        ...snapshotSigningSettings,
        ...snapshotVerifySettings,
        ...gatewaySettings,
      },
      env,
    );
    // The rules a gateway's own start applies (an admin listener off loopback needs its token, …).
    assertGatewaySettings(gwConfig);
    assertDefaultCertificateLoads(gwConfig);
    const { signer, verifier } = snapshotKeys(gwConfig);

    // A statement that meets a connection the server already ended is sent again on a new one.
    const pool = createAdminPool({
      connectionString: databaseUrl,
      waitMs: cpConfig.CONTROL_PLANE_POOL_WAIT_MS,
      liveness: livenessFromSettings(cpConfig),
    });
    // The embedded server also stops on Ctrl-C (the signal reaches its process group, and its own exit
    // hook) and ends its connections while the parts are still stopping; a server restart does the same.
    // A lost connection is then an error of the query that uses it, never an uncaught one: the pool
    // drops it (idle or checked out) and opens another when one is needed.
    const connectionLost = (error: Error) =>
      logger.debug('database connection lost', { error: error.message });
    pool.on('error', connectionLost);
    pool.on('connect', (client) => client.on('error', connectionLost));
    closers.push(['database pool', () => pool.end()]);
    const store = createEventStore(eventStoreConfigFromSettings(cpConfig, { pool }));
    closers.push(['event store', () => store.close()]);

    // ---- snapshot bus: one in-memory log shared by the projector and the gateway ----
    const log = new InMemorySnapshotLog();
    const projectorBus: SnapshotBus = snapshotBusFromSettings(gwConfig, {
      clientId: 've-dev-snapshot-projector',
      log,
      signer,
    });
    closers.push(['snapshot bus (projector)', () => projectorBus.close()]);
    if (gwConfig.SNAPSHOT_BUS === 'memory') {
      // The in-memory topic starts empty in every process: whatever an earlier run published is gone,
      // so every tenant's current snapshot is published again (the projector's "unacknowledged" rule).
      await pool.query('update snapshot_state set published_version = null');
    }

    // ---- projectors ----
    const readModels: Projector = startReadModelProjector({ store, pool, logger });
    closers.push(['read-model projector', () => readModels.stop()]);
    const snapshots: SnapshotProjector = startSnapshotProjector({
      store,
      pool,
      bus: projectorBus,
      logger,
      registry: createMetricsRegistry('snapshot-projector', { defaultMetrics: false }),
    });
    closers.push(['snapshot projector', () => snapshots.stop()]);

    // ---- demo origin (a local jsonplaceholder stand-in) ----
    const origin = await startDemoOrigin(Number(env['DEMO_ORIGIN_PORT'] ?? 8002));
    closers.push(['demo origin', () => origin.close()]);

    // ---- gateway ----
    let redis: RedisClient | undefined;
    if (isSet(env['REDIS_URL']) || isSet(env['REDIS_CLUSTER_NODES'])) {
      redis = createRedisClient({
        ...redisClientOptionsFromSettings(gwConfig),
        autoPipelining: gwConfig.GATEWAY_REDIS_AUTO_PIPELINING,
        name: 'dev-gateway',
        logger,
      });
      closers.push(['redis', () => redis?.disconnect()]);
    }
    let cacheRedis: RedisClient | undefined;
    const cacheRedisOptions = redis ? cacheRedisClientOptions(gwConfig) : undefined;
    if (cacheRedisOptions) {
      cacheRedis = createRedisClient({
        ...cacheRedisOptions,
        autoPipelining: gwConfig.GATEWAY_REDIS_AUTO_PIPELINING,
        name: 'dev-gateway-cache',
        logger,
      });
      closers.push(['cache redis', () => cacheRedis?.disconnect()]);
    }
    const gatewayBus = snapshotBusFromSettings(gwConfig, { clientId: 've-dev-gateway', log, verifier });
    closers.push(['snapshot bus (gateway)', () => gatewayBus.close()]);
    // Usage and quotas: in Redis when there is one, else shared in memory by the gateway, the usage
    // flusher and the control plane (the key's remaining quota).
    const usageBatches = redis
      ? new RedisUsageBatchStore(redis, gwConfig.GATEWAY_REDIS_KEY_PREFIX)
      : new InMemoryUsageBatchStore();
    const quotaStore = redis
      ? new RedisQuotaStore(redis, { tenantMaxKeys: gwConfig.GATEWAY_QUOTA_TENANT_MAX_KEYS })
      : new InMemoryQuotaStore({ tenantMaxKeys: gwConfig.GATEWAY_QUOTA_TENANT_MAX_KEYS });
    const usageFlusher = startUsageFlusher({ pool, batches: usageBatches, logger });
    closers.push([
      'usage flusher',
      async () => {
        await usageFlusher.flush().catch(() => 0); // the gateway's last batch (it stopped just before)
        await usageFlusher.stop();
      },
    ]);
    const gateway = await startGatewayReplica({
      config: gwConfig,
      bus: gatewayBus,
      redis,
      cacheRedis,
      registry: createMetricsRegistry('gateway'),
      logger,
      usageBatches,
      quotaStore,
    });
    closers.push(['gateway', () => gateway.close()]);

    // ---- control plane ----
    const app = controlPlaneAppFromSettings(cpConfig, {
      store,
      pool,
      logger,
      metrics: createMetricsRegistry('control-plane'),
      // Rollout status needs the gateways' Redis heartbeats; purges go to the in-process gateway's cache
      // (which, with Redis, also reaches other replicas through the purge channel).
      redis,
      cachePurger: gateway.responseCache,
      // One process: the control plane refuses the gateway's listeners and the gateway the control plane's.
      originAddressPolicy: gateway.addressPolicy,
      devSignIn: options.devSignIn,
      quotaStore,
      // Without Redis no heartbeats: the one gateway replica is this process's, asked directly.
      ...(redis
        ? {}
        : {
            replicaVersions: async (tenantId: string) => [
              {
                replicaId: gwConfig.GATEWAY_REPLICA_ID,
                lastSeen: new Date(),
                appliedVersion: gateway.store.appliedVersions().get(tenantId) ?? null,
              },
            ],
          }),
    });
    // The same listener as `make run-control-plane`: connection caps and timeouts for slow clients.
    const controlPlaneServer = await listenControlPlane(app, listenerOptionsFromSettings(cpConfig));
    const cpPort = (controlPlaneServer.address() as AddressInfo).port;
    gateway.addressPolicy.addOwnListener({ host: cpConfig.CONTROL_PLANE_HOST, port: cpPort });
    closers.push([
      'control plane',
      () =>
        new Promise<void>((resolve) => {
          controlPlaneServer.close(() => resolve());
          controlPlaneServer.closeAllConnections();
        }),
    ]);

    const gwHost = urlHost(gwConfig.GATEWAY_HOST);
    return {
      urls: {
        controlPlane: `http://${urlHost(cpConfig.CONTROL_PLANE_HOST)}:${cpPort}`,
        console: `http://${urlHost(cpConfig.CONTROL_PLANE_HOST)}:${cpPort}/console/`,
        gateway: `http://${gwHost}:${gateway.gateway.trafficPort}`,
        gatewayTls:
          gateway.gateway.tlsPort === undefined ? undefined : `https://${gwHost}:${gateway.gateway.tlsPort}`,
        gatewayAdmin: `http://${gwHost}:${gateway.gateway.adminPort}`,
        demoOrigin: origin.url,
        database: databaseUrl,
      },
      store,
      pool,
      apiKeyPepper: cpConfig.API_KEY_PEPPER,
      gateway,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

const SNAPSHOT_KEY_FILES = ['SNAPSHOT_SIGNING_KEY_FILE', 'SNAPSHOT_VERIFY_KEYS_FILE'] as const;

/**
 * The snapshot projector's signing key and the gateway's accepted keys, as their own starts read them.
 * On the in-memory bus they are refused rather than taken and ignored: its log is this process's alone,
 * nothing else can write it, and no record on it is signed or verified.
 */
function snapshotKeys(settings: {
  SNAPSHOT_BUS: 'memory' | 'kafka';
  SNAPSHOT_SIGNING_KEY_FILE?: string | undefined;
  SNAPSHOT_VERIFY_KEYS_FILE?: string | undefined;
}): { signer?: SnapshotSigner | undefined; verifier?: SnapshotVerifier | undefined } {
  const { SNAPSHOT_SIGNING_KEY_FILE: signingKey, SNAPSHOT_VERIFY_KEYS_FILE: verifyKeys } = settings;
  if (settings.SNAPSHOT_BUS === 'kafka')
    return {
      signer: signingKey === undefined ? undefined : loadSnapshotSigner(signingKey),
      verifier: verifyKeys === undefined ? undefined : loadSnapshotVerifier(verifyKeys),
    };
  const given = SNAPSHOT_KEY_FILES.filter((setting) => settings[setting] !== undefined);
  if (given.length > 0)
    throw new SettingsError(
      given.map((setting) => ({
        setting,
        issue:
          "applies to the kafka snapshot bus only: make dev's in-memory bus signs and verifies nothing (unset it, or set KAFKA_BROKERS to run on the Kafka topic)",
      })),
    );
  return {};
}
