import type { RedisClient } from '../redis/client.js';
import {
  type CachePurgeMessage,
  type CachePurger,
  encodePurgeMessage,
  generationField,
  generationKey,
  type PurgeTarget,
  purgeChannel,
  purgeMessageFor,
  SOFT_TAG_FIELD_PREFIX,
  type TagPurgeTarget,
  tagIndexKey,
} from './purge-protocol.js';

export interface RedisCachePurger extends CachePurger {
  /** Bumps the target's generation and publishes it; resolves with the message sent. */
  purge(target: PurgeTarget): Promise<CachePurgeMessage>;
  /** Deletes the tagged entries and their tag sets, then publishes it; resolves with the message sent. */
  purgeTagged(target: TagPurgeTarget): Promise<CachePurgeMessage>;
}

/**
 * Sends purges over Redis (purge-protocol.ts): increments the generation, then publishes it so every
 * replica drops its in-process copies. `keyPrefix` must be the gateways' GATEWAY_REDIS_KEY_PREFIX.
 * Redis errors reject (the caller answers them); nothing is retried.
 */
export function createRedisCachePurger(redis: RedisClient, keyPrefix: string): RedisCachePurger {
  const channel = purgeChannel(keyPrefix);
  const purge = async (target: PurgeTarget): Promise<CachePurgeMessage> => {
    const bumped = await redis.hincrby(generationKey(keyPrefix, target.tenantId), generationField(target), 1);
    const message = purgeMessageFor(target, bumped);
    await redis.publish(channel, encodePurgeMessage(message));
    return message;
  };
  const purgeTagged = async ({ tenantId, tags, soft }: TagPurgeTarget): Promise<CachePurgeMessage> => {
    if (soft) {
      // Kept in the generation hash (no TTL, never evicted): replicas load it with the generations.
      const softAt = Date.now();
      const fields: Record<string, number> = {};
      for (const tag of tags) fields[`${SOFT_TAG_FIELD_PREFIX}${tag}`] = softAt;
      await redis.hset(generationKey(keyPrefix, tenantId), fields);
      const message: CachePurgeMessage = { kind: 'tags', tenantId, tags: [...tags], softAt };
      await redis.publish(channel, encodePurgeMessage(message));
      return message;
    }
    for (const tag of tags) {
      const index = tagIndexKey(keyPrefix, tenantId, tag);
      const keys = await redis.smembers(index);
      // Members carry the prefix already; all share the tenant's hash tag (one Cluster slot).
      await redis.del(index, ...keys);
    }
    const message: CachePurgeMessage = { kind: 'tags', tenantId, tags: [...tags] };
    await redis.publish(channel, encodePurgeMessage(message));
    return message;
  };
  return {
    purge,
    purgeTagged,
    async purgeTags(tenantId, tags, options) {
      await purgeTagged({ kind: 'tags', tenantId, tags, soft: options?.soft });
    },
    async purgeRoute(tenantId, routeId) {
      await purge({ kind: 'route', tenantId, routeId });
    },
    async purgeTenant(tenantId) {
      await purge({ kind: 'tenant', tenantId });
    },
  };
}
