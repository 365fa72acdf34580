import type { RedisClient } from '../redis/client.js';
import {
  CACHE_SOFT_PURGED_TAGS_MAX,
  type CachePurgeMessage,
  type CachePurger,
  encodePurgeMessage,
  generationField,
  generationKey,
  type PurgeTarget,
  purgeChannel,
  purgeMessageFor,
  RETIRED_ROUTES_FIELD,
  SOFT_TAG_FIELD_PREFIX,
  SoftPurgedTagsFull,
  type TagPurgeTarget,
  type TagsPurgeMessage,
  TENANT_GENERATION_FIELD,
  tagIndexKey,
  tagPurgeMessages,
} from './purge-protocol.js';

export interface RedisCachePurger extends CachePurger {
  /** Bumps the target's generation and publishes it; resolves with the message sent. */
  purge(target: PurgeTarget): Promise<CachePurgeMessage>;
  /**
   * Deletes the tagged entries and their tag sets (or soft-purges them), then publishes it in
   * tagPurgeMessages; resolves with the whole purge as one message.
   */
  purgeTagged(target: TagPurgeTarget): Promise<CachePurgeMessage>;
  forgetRoute(tenantId: string, routeId: string): Promise<void>;
}

/** Lua: whether a generation-hash field is a soft-purged tag (SOFT_TAG_FIELD_PREFIX). */
const IS_SOFT_TAG_LUA = `local function isSoftTag(field) return string.sub(field, 1, ${SOFT_TAG_FIELD_PREFIX.length}) == '${SOFT_TAG_FIELD_PREFIX}' end`;

/**
 * Bumps a generation (KEYS[1]: the hash, ARGV[1]: the field); a route without a field starts above every
 * deleted route's generation. A tenant purge also forgets the soft-purged tags, since every entry stored
 * before it is unreachable. Returns the new generation.
 */
const BUMP_GENERATION_LUA = `${IS_SOFT_TAG_LUA}
local bumped
if ARGV[1] == '${TENANT_GENERATION_FIELD}' or redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  bumped = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
else
  bumped = tonumber(redis.call('HGET', KEYS[1], '${RETIRED_ROUTES_FIELD}') or '0') + 1
  redis.call('HSET', KEYS[1], ARGV[1], bumped)
end
if ARGV[1] == '${TENANT_GENERATION_FIELD}' then
  for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    if isSoftTag(field) then redis.call('HDEL', KEYS[1], field) end
  end
end
return bumped
`;

/**
 * Records a soft purge (KEYS[1]: the hash; ARGV: the most soft-purged tags kept, the time, the fields)
 * unless it would take the tenant past that many: then nothing is written and the count held is
 * returned; -1 when written.
 */
const SOFT_PURGE_LUA = `${IS_SOFT_TAG_LUA}
local added = 0
for i = 3, #ARGV do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 then added = added + 1 end
end
if added > 0 then
  local held = 0
  for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    if isSoftTag(field) then held = held + 1 end
  end
  if held + added > tonumber(ARGV[1]) then return held end
end
for i = 3, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], ARGV[2]) end
return -1
`;

/** Drops a deleted route's field (KEYS[1]: the hash, ARGV[1]: the route id), keeping its generation in the highest retired one. */
const FORGET_ROUTE_LUA = `
local generation = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if generation > tonumber(redis.call('HGET', KEYS[1], '${RETIRED_ROUTES_FIELD}') or '0') then
  redis.call('HSET', KEYS[1], '${RETIRED_ROUTES_FIELD}', generation)
end
return redis.call('HDEL', KEYS[1], ARGV[1])
`;

const BUMP_GENERATION = 'vantageedgeCacheBumpGeneration';
const SOFT_PURGE = 'vantageedgeCacheSoftPurgeBounded';
const FORGET_ROUTE = 'vantageedgeCacheForgetRoute';
type Script = (...keysAndArgs: Array<string | number>) => Promise<number>;

function script(redis: RedisClient, name: string, lua: string): Script {
  if (!(name in redis)) redis.defineCommand(name, { numberOfKeys: 1, lua });
  const command = (redis as unknown as Record<string, Script>)[name]!;
  return command.bind(redis);
}

/**
 * Sends purges over Redis (purge-protocol.ts): increments the generation, then publishes it so every
 * replica drops its in-process copies. `keyPrefix` must be the gateways' GATEWAY_REDIS_KEY_PREFIX.
 * Redis errors reject (the caller answers them); nothing is retried.
 */
export function createRedisCachePurger(redis: RedisClient, keyPrefix: string): RedisCachePurger {
  const channel = purgeChannel(keyPrefix);
  const bumpGeneration = script(redis, BUMP_GENERATION, BUMP_GENERATION_LUA);
  const softPurge = script(redis, SOFT_PURGE, SOFT_PURGE_LUA);
  const forgetRoute = script(redis, FORGET_ROUTE, FORGET_ROUTE_LUA);
  const purge = async (target: PurgeTarget): Promise<CachePurgeMessage> => {
    const bumped = await bumpGeneration(generationKey(keyPrefix, target.tenantId), generationField(target));
    const message = purgeMessageFor(target, bumped);
    await redis.publish(channel, encodePurgeMessage(message));
    return message;
  };
  /**
   * Records a soft purge of all `tags` at once, or of none when they would take the tenant past
   * CACHE_SOFT_PURGED_TAGS_MAX (a tag named twice counts once); returns when.
   */
  const recordSoftPurge = async (tenantId: string, tags: readonly string[]): Promise<number> => {
    // Kept in the generation hash (no TTL, never evicted): replicas load it with the generations.
    const softAt = Date.now();
    const fields = [...new Set(tags)].map((tag) => `${SOFT_TAG_FIELD_PREFIX}${tag}`);
    const held = await softPurge(
      generationKey(keyPrefix, tenantId),
      CACHE_SOFT_PURGED_TAGS_MAX,
      softAt,
      ...fields,
    );
    if (held >= 0) throw new SoftPurgedTagsFull(held);
    return softAt;
  };
  const publishTagPurge = async (message: TagsPurgeMessage): Promise<CachePurgeMessage> => {
    for (const part of tagPurgeMessages(message)) await redis.publish(channel, encodePurgeMessage(part));
    return message;
  };
  const purgeTagged = async ({ tenantId, tags, soft }: TagPurgeTarget): Promise<CachePurgeMessage> => {
    if (soft)
      return publishTagPurge({
        kind: 'tags',
        tenantId,
        tags: [...tags],
        softAt: await recordSoftPurge(tenantId, tags),
      });
    for (const tag of tags) {
      const index = tagIndexKey(keyPrefix, tenantId, tag);
      const keys = await redis.smembers(index);
      // Members carry the prefix already; all share the tenant's hash tag (one Cluster slot).
      await redis.del(index, ...keys);
    }
    // The tagged entries are gone: their soft purges no longer matter.
    await redis.hdel(
      generationKey(keyPrefix, tenantId),
      ...tags.map((tag) => `${SOFT_TAG_FIELD_PREFIX}${tag}`),
    );
    return publishTagPurge({ kind: 'tags', tenantId, tags: [...tags] });
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
    async forgetRoute(tenantId, routeId) {
      await forgetRoute(generationKey(keyPrefix, tenantId), routeId);
    },
  };
}
