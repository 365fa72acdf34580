import type { Logger } from '@vantageedge/shared/observability/logger';
import { cacheRedisClientOptions } from '@vantageedge/shared/redis/cache-redis';
import {
  createRedisClient,
  type RedisClient,
  redisClientOptionsFromSettings,
} from '@vantageedge/shared/redis/client';

type Settings = Parameters<typeof redisClientOptionsFromSettings>[0] &
  Parameters<typeof cacheRedisClientOptions>[0] & {
    GATEWAY_REDIS_AUTO_PIPELINING: boolean;
    GATEWAY_REPLICA_ID: string;
  };

export interface GatewayRedisConnections {
  /** Rate limits, quotas, usage batches, rollout heartbeats. */
  redis: RedisClient;
  /** The response cache's own connection: to its own server, or a second one to the shared Redis. */
  cacheRedis: RedisClient;
  /** The cache's own Redis server (GATEWAY_CACHE_REDIS_URL / _CLUSTER_NODES), not only a connection. */
  cacheServerOwn: boolean;
  disconnect(): void;
}

/** The replica's Redis connections, named `gateway:<replica>` and `gateway-cache:<replica>`. */
export function connectGatewayRedis(config: Settings, logger: Logger): GatewayRedisConnections {
  const redis = createRedisClient({
    ...redisClientOptionsFromSettings(config),
    autoPipelining: config.GATEWAY_REDIS_AUTO_PIPELINING,
    name: `gateway:${config.GATEWAY_REPLICA_ID}`,
    logger,
  });
  const cacheServer = cacheRedisClientOptions(config);
  // Its own connection even on the shared server: one connection answers in order, and the counters'
  // small commands would wait behind another tenant's megabyte cache fills and reads.
  const cacheRedis = createRedisClient({
    ...(cacheServer ?? redisClientOptionsFromSettings(config)),
    autoPipelining: config.GATEWAY_REDIS_AUTO_PIPELINING,
    name: `gateway-cache:${config.GATEWAY_REPLICA_ID}`,
    logger,
  });
  return {
    redis,
    cacheRedis,
    cacheServerOwn: cacheServer !== undefined,
    disconnect() {
      redis.disconnect();
      cacheRedis.disconnect();
    },
  };
}
