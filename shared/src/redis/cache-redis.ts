import { hostPortList, redisUrl } from '../settings/common-settings.js';
import type { RedisClientOptions } from './client.js';
import { redisTlsCa } from './redis-connection-security.js';

/**
 * The response cache's own Redis. Cache entries are meant to be evicted under memory pressure, rate-limit
 * and quota counters never are, and a Redis has one eviction policy: with both in one Redis at
 * `maxmemory`, a tenant filling its cache share evicts other tenants' counters (their limits start over).
 * Unset: the cache shares REDIS_URL / REDIS_CLUSTER_NODES with the counters (small deployments).
 * Gateways and the control plane (cache purges) must name the same server.
 */
export const cacheRedisSettings = {
  GATEWAY_CACHE_REDIS_URL: redisUrl.optional(),
  /** Comma-separated host:port seeds of a Redis Cluster for the cache; wins over GATEWAY_CACHE_REDIS_URL. */
  GATEWAY_CACHE_REDIS_CLUSTER_NODES: hostPortList({ defaultPort: 6379 }).optional(),
};

/**
 * Client options for the cache's own Redis, with the timeouts and REDIS_TLS_CA_FILE of the main one;
 * undefined: none set. On a Cluster the TLS and credentials are GATEWAY_CACHE_REDIS_URL's, else REDIS_URL's.
 */
export function cacheRedisClientOptions(settings: {
  REDIS_URL?: string | undefined;
  GATEWAY_CACHE_REDIS_URL?: string | undefined;
  GATEWAY_CACHE_REDIS_CLUSTER_NODES?: string[] | undefined;
  REDIS_COMMAND_TIMEOUT_MS: number;
  REDIS_CONNECT_TIMEOUT_MS: number;
  REDIS_TLS_CA_FILE?: string | undefined;
}): RedisClientOptions | undefined {
  const clusterNodes = settings.GATEWAY_CACHE_REDIS_CLUSTER_NODES ?? [];
  if (settings.GATEWAY_CACHE_REDIS_URL === undefined && clusterNodes.length === 0) return undefined;
  const url = settings.GATEWAY_CACHE_REDIS_URL ?? settings.REDIS_URL;
  const setting = settings.GATEWAY_CACHE_REDIS_URL === undefined ? 'REDIS_URL' : 'GATEWAY_CACHE_REDIS_URL';
  return {
    url,
    clusterNodes,
    tlsCa: redisTlsCa(settings, { setting, value: url }),
    commandTimeoutMs: settings.REDIS_COMMAND_TIMEOUT_MS,
    connectTimeoutMs: settings.REDIS_CONNECT_TIMEOUT_MS,
  };
}
