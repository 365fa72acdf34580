import { Cluster, Redis } from 'ioredis';
import { z } from 'zod';
import type { Logger } from '../observability/logger.js';
import { hostPortList, LOCAL_DEFAULTS, parseHostPort, redisUrl } from '../settings/common-settings.js';
import { TopologyTimedCluster } from './cluster-client.js';
import { traceRedisCommands } from './command-spans.js';
import { redisConnectionSecurity, redisTlsCa, redisTlsSettings } from './redis-connection-security.js';

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
 * - `socketTimeout`: a connection that receives nothing for `unansweredConnectionMs` while commands
 *   wait is replaced by a new one. Its socket may be dead without a word (a NAT or load balancer that
 *   forgot the flow, a partition): no error ever comes, every command on it times out, and the store
 *   circuits' trials went on failing on it long after a new connection would have been answered.
 * - `autoResendUnfulfilledCommands: false`: a command without its reply when its connection is replaced
 *   is not sent again on the new one. Its caller was told it failed (`commandTimeout`) and decided
 *   without it (a fallback limit, an uncounted quota, a request refused): sent again, it would charge
 *   a limit or a quota for a request that Redis did not decide.
 *
 * TLS and credentials come from the URL (rediss://user:password@…), also for every Cluster node
 * (redis-connection-security.ts); REDIS_TLS_CA_FILE names a private CA.
 *
 * Cluster: keys that must live together (all limits of one request, a tenant's cache generation and its
 * entries) share a `{tenant_id}` hash tag, so scripts touching several keys stay on one slot. Its topology
 * queries are timed by the connect timeout, not the command timeout (cluster-client.ts).
 */

export type RedisClient = Redis | Cluster;

/** A Redis Cluster seed named without a port is on Redis's own. */
const REDIS_PORT = 6379;

export const redisSettings = {
  REDIS_URL: redisUrl.default(LOCAL_DEFAULTS.REDIS_URL),
  /** Comma-separated host:port seeds; when set the client is a Cluster client and REDIS_URL is ignored. */
  REDIS_CLUSTER_NODES: hostPortList({ defaultPort: REDIS_PORT }).optional(),
  REDIS_COMMAND_TIMEOUT_MS: z.coerce.number().int().min(1).max(60_000).default(50),
  REDIS_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(1).max(60_000).default(1_000),
  ...redisTlsSettings,
};

export interface RedisClientOptions {
  /** A single server's URL; with clusterNodes, only its scheme (rediss: TLS) and user:password are used. */
  url?: string | undefined;
  clusterNodes?: readonly string[] | undefined;
  /** CA certificates (PEM) trusted for TLS instead of Node's built-in list (REDIS_TLS_CA_FILE). */
  tlsCa?: readonly string[] | undefined;
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
  /**
   * Each command a CLIENT span under the active span when tracing is on (command-spans.ts): the control
   * plane's clients. Not the gateway's, whose requests send several commands each.
   */
  commandSpans?: boolean | undefined;
}

/** Reconnect with capped backoff and never give up: Redis coming back must heal the gateway by itself. */
function reconnectDelay(attempt: number): number {
  return Math.min(50 * 2 ** Math.min(attempt, 5), 1_000);
}

export function parseClusterNode(node: string): { host: string; port: number } {
  const address = parseHostPort(node, REDIS_PORT);
  if (address === undefined) throw new Error(`Redis Cluster node "${node}" is not host:port`);
  return address;
}

/**
 * How long a connection may stay silent while commands wait for their replies before it is replaced:
 * as long as making a new one may take, and never before its commands have timed out.
 */
export function unansweredConnectionMs(commandTimeoutMs: number, connectTimeoutMs: number): number {
  return Math.max(connectTimeoutMs, 2 * commandTimeoutMs);
}

export function createRedisClient(options: RedisClientOptions): RedisClient {
  const commandTimeout = options.commandTimeoutMs ?? 50;
  const connectTimeout = options.connectTimeoutMs ?? 1_000;
  const common = {
    commandTimeout,
    connectTimeout,
    socketTimeout: unansweredConnectionMs(commandTimeout, connectTimeout),
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 1,
    connectionName: options.name ?? 'vantageedge',
  };
  const enableAutoPipelining = options.autoPipelining ?? false;
  const clustered = options.clusterNodes !== undefined && options.clusterNodes.length > 0;
  const url = options.url ?? (clustered ? undefined : LOCAL_DEFAULTS.REDIS_URL);
  const security = redisConnectionSecurity(url, options.tlsCa);
  const client: RedisClient = clustered
    ? new TopologyTimedCluster((options.clusterNodes ?? []).map(parseClusterNode), {
        enableOfflineQueue: false,
        enableAutoPipelining,
        clusterRetryStrategy: reconnectDelay,
        topologyTimeoutMs: connectTimeout,
        redisOptions: { ...common, ...security },
        // Over TLS the seeds are reached by the name their certificates carry, not a resolved address.
        ...(security.tls ? { dnsLookup: keepHostName } : {}),
        ...(options.natMap ? { natMap: options.natMap } : {}),
      })
    : new Redis(url ?? LOCAL_DEFAULTS.REDIS_URL, {
        ...common,
        ...security,
        enableOfflineQueue: false,
        enableAutoPipelining,
        retryStrategy: reconnectDelay,
      });

  if (options.commandSpans) traceRedisCommands(client);
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

function keepHostName(hostname: string, callback: (error: null, address: string) => void): void {
  callback(null, hostname);
}

/** How often a subscribed connection, which sends nothing of its own, is asked for a PING (ms). */
export const SUBSCRIBER_PING_INTERVAL_MS = 5_000;

/**
 * A second connection with the same settings, for SUBSCRIBE (a subscribed connection can't run commands).
 * Once subscribed it only listens, so a connection dead without a word (see `socketTimeout`) would go
 * unnoticed for ever and no message would arrive again: it sends a PING every `pingIntervalMs`, whose
 * missing answer replaces the connection and resubscribes (a Cluster's too).
 */
export function duplicateForSubscribe(
  client: RedisClient,
  { pingIntervalMs = SUBSCRIBER_PING_INTERVAL_MS }: { pingIntervalMs?: number | undefined } = {},
): RedisClient {
  // Subscriptions must survive outages: queue the SUBSCRIBE until connected and resubscribe on reconnect.
  // A Cluster copy inherits `enableOfflineQueue: false` too, and its SUBSCRIBE, sent before the copy has
  // discovered the cluster, would fail: no purge message would ever arrive. A SUBSCRIBE not answered yet
  // when its connection is replaced is sent again: only an answered one is resubscribed.
  const resendSubscribe = { autoResendUnfulfilledCommands: true };
  if (client instanceof Cluster) {
    // createRedisClient sets no replyMapping; ioredis types it as never undefined.
    const { replyMapping: _none, ...inherited } = client.options.redisOptions ?? {};
    const subscriber = client.duplicate([], {
      enableOfflineQueue: true,
      redisOptions: { ...inherited, ...resendSubscribe },
    });
    pingClusterSubscriberWhileOpen(subscriber, pingIntervalMs, inherited.socketTimeout ?? pingIntervalMs);
    reportClusterSubscribeConnections(subscriber);
    return subscriber;
  }
  const subscriber = client.duplicate({ enableOfflineQueue: true, ...resendSubscribe });
  pingWhileOpen(subscriber, pingIntervalMs);
  replaceOnUnansweredSubscribe(subscriber);
  return subscriber;
}

/** Emitted by a Cluster subscribe copy when a new connection of its subscriber is ready. */
const SUBSCRIBE_CONNECTION_READY = 'vantageedge:subscribe-connection-ready';
const reportingClusters = new WeakSet<Cluster>();

/**
 * Calls `listener` whenever a new connection of `subscriber` (from duplicateForSubscribe) is ready:
 * after a reconnect, and for a Cluster whenever its subscriber moved to another node (its node failed,
 * restarted or stopped answering PINGs), which the Cluster client does not report: it stays ready.
 * Messages published between the old connection's end and the new one's SUBSCRIBE were lost. ioredis
 * subscribes the channels again by itself, but says neither when that holds nor, on a Cluster, whether
 * it failed (then the connection stays subscribed to nothing): subscribe again here, and take what was
 * received before the answer as possibly incomplete.
 */
export function onSubscribeConnectionReady(subscriber: RedisClient, listener: () => void): void {
  if (subscriber instanceof Cluster && reportingClusters.has(subscriber))
    subscriber.on(SUBSCRIBE_CONNECTION_READY, listener);
  else subscriber.on('ready', listener);
}

/**
 * A Cluster client subscribes through a connection its subscriber (ioredis' ClusterSubscriber, private)
 * makes to one node, and replaces it by one to another node when it ends, without a word: each new
 * one's `ready` is reported as SUBSCRIBE_CONNECTION_READY. Read defensively: an upgrade that moves it
 * leaves the Cluster's own `ready` (onSubscribeConnectionReady falls back to it).
 */
function reportClusterSubscribeConnections(cluster: Cluster): void {
  const clusterSubscriber: unknown = Reflect.get(cluster, 'subscriber');
  if (typeof clusterSubscriber !== 'object' || clusterSubscriber === null) return;
  const select: unknown = Reflect.get(clusterSubscriber, 'selectSubscriber');
  if (typeof select !== 'function') return;
  Reflect.set(clusterSubscriber, 'selectSubscriber', (...args: unknown[]) => {
    const selected: unknown = select.apply(clusterSubscriber, args);
    const connection = subscribeConnectionOf(cluster);
    connection?.once('ready', () => cluster.emit(SUBSCRIBE_CONNECTION_READY));
    return selected;
  });
  reportingClusters.add(cluster);
}

/**
 * After a reconnect ioredis subscribes the channels again by itself and hears nobody's answer: such a
 * SUBSCRIBE past the command timeout was an unhandled rejection (an escaped error for the replica) and
 * left the connection subscribed to nothing (channels are recorded once answered). Every SUBSCRIBE's
 * failure is heard here, and one unanswered on an open connection replaces it, as an unanswered PING
 * does: the new connection sends it again (autoResendUnfulfilledCommands).
 */
function replaceOnUnansweredSubscribe(connection: Redis): void {
  for (const name of ['subscribe', 'psubscribe', 'ssubscribe'] as const) {
    const send = connection[name].bind(connection) as (...args: unknown[]) => Promise<unknown>;
    Object.defineProperty(connection, name, {
      configurable: true,
      writable: true,
      value: (...args: unknown[]) => {
        const sent = send(...args);
        sent.catch(() => {
          if (connection.status === 'ready') connection.disconnect(true);
        });
        return sent;
      },
    });
  }
}

/**
 * A Cluster client subscribes through one connection of its own to one node, made without the client's
 * options (no socket timeout, no retry): a PING it has not answered within `unansweredMs` closes it, and
 * the client then subscribes the same channels through a new connection (to a node of its choosing). So
 * does one still not ready after `unansweredMs`: its node accepted it and answers nothing (a frozen
 * node, whose kernel still accepts), and it would wait for that node for ever.
 */
function pingClusterSubscriberWhileOpen(cluster: Cluster, intervalMs: number, unansweredMs: number): void {
  let opening: { connection: Redis; since: number } | null = null;
  const timer = setInterval(() => {
    const connection = subscribeConnectionOf(cluster);
    if (connection?.status === 'connecting' || connection?.status === 'connect') {
      if (opening?.connection !== connection) opening = { connection, since: Date.now() };
      else if (Date.now() - opening.since >= unansweredMs) connection.disconnect();
      return;
    }
    opening = null;
    if (connection?.status !== 'ready') return;
    const unanswered = setTimeout(() => connection.disconnect(), unansweredMs);
    unanswered.unref();
    connection.ping().then(
      () => clearTimeout(unanswered),
      () => undefined,
    );
  }, intervalMs);
  timer.unref();
  cluster.once('end', () => clearInterval(timer));
}

/** ioredis keeps it in a private field: read defensively, so an upgrade that moves it only stops the PINGs. */
function subscribeConnectionOf(cluster: Cluster): Redis | null {
  const subscriber: unknown = Reflect.get(cluster, 'subscriber');
  if (typeof subscriber !== 'object' || subscriber === null) return null;
  const getInstance: unknown = Reflect.get(subscriber, 'getInstance');
  if (typeof getInstance !== 'function') return null;
  const connection: unknown = getInstance.call(subscriber);
  return connection instanceof Redis ? connection : null;
}

function pingWhileOpen(connection: Redis, intervalMs: number): void {
  const timer = setInterval(() => {
    if (connection.status === 'ready') connection.ping().catch(() => undefined);
  }, intervalMs);
  timer.unref();
  connection.once('end', () => clearInterval(timer));
}

/**
 * The options of every client of REDIS_URL / REDIS_CLUSTER_NODES. Reads REDIS_TLS_CA_FILE: a bad one
 * is a SettingsError naming it (call at start, under checkSettingsOrExit).
 */
export function redisClientOptionsFromSettings(settings: {
  REDIS_URL: string;
  REDIS_CLUSTER_NODES?: string[] | undefined;
  REDIS_COMMAND_TIMEOUT_MS: number;
  REDIS_CONNECT_TIMEOUT_MS: number;
  REDIS_TLS_CA_FILE?: string | undefined;
}): RedisClientOptions {
  return {
    url: settings.REDIS_URL,
    clusterNodes: settings.REDIS_CLUSTER_NODES,
    tlsCa: redisTlsCa(settings, { setting: 'REDIS_URL', value: settings.REDIS_URL }),
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
