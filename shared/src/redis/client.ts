import { Cluster, Redis } from 'ioredis';
import { z } from 'zod';
import type { Logger } from '../observability/logger.js';
import { commaList, LOCAL_DEFAULTS, redisUrl } from '../settings/common-settings.js';
import { TopologyTimedCluster } from './cluster-client.js';

/**
 * One Redis client factory for every service: a single server (REDIS_URL) or Redis Cluster
 * (REDIS_CLUSTER_NODES, "host:port,host:port"; wins when set).
 *
 * The options are chosen for a gateway's hot path, where Redis is an accelerator and never a reason
 * for a request to hang:
 * - `enableOfflineQueue: false`: while disconnected a command fails at once instead of queueing.
 * - `commandTimeout`: a command that gets no reply (half-open socket, overloaded server) fails after it.
 * - `maxRetriesPerRequest: 1`: no long retry loops per command; reconnecting happens in the background
 *   (`retryStrategy`, capped backoff, never gives up) so recovery is automatic.
 *
 * Cluster: keys that must live together (all limits of one request, a tenant's cache generation and its
 * entries) share a `{tenant_id}` hash tag, so scripts touching several keys stay on one slot. Its topology
 * queries are timed by the connect timeout, not the command timeout (cluster-client.ts).
 */

export type RedisClient = Redis | Cluster;

export const redisSettings = {
  REDIS_URL: redisUrl.default(LOCAL_DEFAULTS.REDIS_URL),
  /** Comma-separated host:port seeds; when set the client is a Cluster client and REDIS_URL is ignored. */
  REDIS_CLUSTER_NODES: commaList.optional(),
  REDIS_COMMAND_TIMEOUT_MS: z.coerce.number().int().min(1).max(60_000).default(50),
  REDIS_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(1).max(60_000).default(1_000),
};

export interface RedisClientOptions {
  url?: string | undefined;
  clusterNodes?: readonly string[] | undefined;
  commandTimeoutMs?: number | undefined;
  connectTimeoutMs?: number | undefined;
  /** Shown in logs; also the CLIENT SETNAME of the connection. */
  name?: string | undefined;
  /**
   * ioredis `enableAutoPipelining`: commands issued in the same turn of the event loop (e.g. the rate
   * limit checks of concurrent requests) leave in one write and one pipeline instead of one each.
   */
  autoPipelining?: boolean | undefined;
  logger?: Logger | undefined;
  /** Cluster nodes reached at another address than the one they announce (NAT, port forwarding). */
  natMap?: Record<string, { host: string; port: number }> | undefined;
}

/** Reconnect with capped backoff and never give up: Redis coming back must heal the gateway by itself. */
function reconnectDelay(attempt: number): number {
  return Math.min(50 * 2 ** Math.min(attempt, 5), 1_000);
}

export function parseClusterNode(node: string): { host: string; port: number } {
  const separator = node.lastIndexOf(':');
  const host = separator > 0 ? node.slice(0, separator) : node;
  const port = separator > 0 ? Number(node.slice(separator + 1)) : 6379;
  if (host === '' || !Number.isInteger(port) || port <= 0 || port > 65_535) {
    throw new Error(`REDIS_CLUSTER_NODES: "${node}" is not host:port`);
  }
  return { host, port };
}

export function createRedisClient(options: RedisClientOptions): RedisClient {
  const commandTimeout = options.commandTimeoutMs ?? 50;
  const connectTimeout = options.connectTimeoutMs ?? 1_000;
  const common = {
    commandTimeout,
    connectTimeout,
    maxRetriesPerRequest: 1,
    connectionName: options.name ?? 'vantageedge',
  };
  const enableAutoPipelining = options.autoPipelining ?? false;
  const client: RedisClient =
    options.clusterNodes && options.clusterNodes.length > 0
      ? new TopologyTimedCluster(options.clusterNodes.map(parseClusterNode), {
          enableOfflineQueue: false,
          enableAutoPipelining,
          clusterRetryStrategy: reconnectDelay,
          topologyTimeoutMs: connectTimeout,
          redisOptions: common,
          ...(options.natMap ? { natMap: options.natMap } : {}),
        })
      : new Redis(options.url ?? LOCAL_DEFAULTS.REDIS_URL, {
          ...common,
          enableOfflineQueue: false,
          enableAutoPipelining,
          retryStrategy: reconnectDelay,
        });

  const logger = options.logger;
  let reported = false;
  client.on('error', (error: Error) => {
    // ioredis emits an error per failed reconnect attempt; log the first of each outage only.
    if (!reported) logger?.warn('redis unavailable', { redis: common.connectionName, error: error.message });
    reported = true;
  });
  client.on('ready', () => {
    if (reported) logger?.info('redis available again', { redis: common.connectionName });
    reported = false;
  });
  return client;
}

/** A second connection with the same settings, for SUBSCRIBE (a subscribed connection can't run commands). */
export function duplicateForSubscribe(client: RedisClient): RedisClient {
  // Subscriptions must survive outages: queue the SUBSCRIBE until connected and resubscribe on reconnect.
  // A Cluster copy inherits `enableOfflineQueue: false` too, and its SUBSCRIBE, sent before the copy has
  // discovered the cluster, would fail: no purge message would ever arrive.
  return client instanceof Cluster
    ? client.duplicate([], { enableOfflineQueue: true })
    : client.duplicate({ enableOfflineQueue: true });
}

export function redisClientOptionsFromSettings(settings: {
  REDIS_URL: string;
  REDIS_CLUSTER_NODES?: string[] | undefined;
  REDIS_COMMAND_TIMEOUT_MS: number;
  REDIS_CONNECT_TIMEOUT_MS: number;
}): RedisClientOptions {
  return {
    url: settings.REDIS_URL,
    clusterNodes: settings.REDIS_CLUSTER_NODES,
    commandTimeoutMs: settings.REDIS_COMMAND_TIMEOUT_MS,
    connectTimeoutMs: settings.REDIS_CONNECT_TIMEOUT_MS,
  };
}

/** Resolves once the client is connected (commands fail fast before that: no offline queue). */
export function whenReady(client: RedisClient, timeoutMs = 5_000): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(new Error(`redis not ready after ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
  });
}
