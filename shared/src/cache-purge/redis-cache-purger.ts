import type { RedisClient } from '../redis/client.js';
import {
  CACHE_SOFT_PURGED_TAGS_MAX,
  type CachePurgeMessage,
  type CachePurger,
  encodePurgeMessage,
  generationField,
  generationKey,
  PURGE_FENCE_HORIZON,
  PURGE_FENCE_MAX_LISTINGS,
  PURGE_FENCE_MS,
  type PurgeTarget,
  purgeChannel,
  purgeFenceKey,
  purgeMessageFor,
  RETIRED_ROUTES_FIELD,
  SOFT_TAG_FIELD_PREFIX,
  SOFT_TAGS_HELD_FIELD,
  SoftPurgedTagsFull,
  type TagPurgeTarget,
  type TagsPurgeMessage,
  TENANT_GENERATION_FIELD,
  tagIndexKey,
  tagPurgeMessages,
  tenantBoundKeys,
  tenantBoundVersionKey,
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
  forgetTenant(tenantId: string): Promise<void>;
}

/** Lua: whether a generation-hash field is a soft-purged tag (SOFT_TAG_FIELD_PREFIX). */
const IS_SOFT_TAG_LUA = `local function isSoftTag(field) return string.sub(field, 1, ${SOFT_TAG_FIELD_PREFIX.length}) == '${SOFT_TAG_FIELD_PREFIX}' end`;

/**
 * Bumps a generation (KEYS[1]: the hash, ARGV[1]: the field); a route without a field starts above every
 * deleted route's generation. Returns the new generation. A tenant purge makes the soft-purged tags
 * moot (every entry stored before it is unreachable): the caller forgets them afterwards, a batch at a
 * time (forgetSoftTags), since one script walking 10,000 fields would stall Redis for every tenant.
 */
const BUMP_GENERATION_LUA = `
if ARGV[1] == '${TENANT_GENERATION_FIELD}' or redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
end
local bumped = tonumber(redis.call('HGET', KEYS[1], '${RETIRED_ROUTES_FIELD}') or '0') + 1
redis.call('HSET', KEYS[1], ARGV[1], bumped)
return bumped
`;

/**
 * Records a soft purge (KEYS[1]: the hash; ARGV: the most soft-purged tags kept, the time, the fields)
 * unless it would take the tenant past that many: then nothing is written and the count held is
 * returned; -1 when written. The count is kept in field SOFT_TAGS_HELD_FIELD; a hash written before it
 * was kept is counted once.
 */
const SOFT_PURGE_LUA = `${IS_SOFT_TAG_LUA}
local added = 0
for i = 3, #ARGV do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 then added = added + 1 end
end
local held = tonumber(redis.call('HGET', KEYS[1], '${SOFT_TAGS_HELD_FIELD}'))
if not held then
  held = 0
  for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    if isSoftTag(field) then held = held + 1 end
  end
  redis.call('HSET', KEYS[1], '${SOFT_TAGS_HELD_FIELD}', held)
end
if added > 0 and held + added > tonumber(ARGV[1]) then return held end
for i = 3, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], ARGV[2]) end
redis.call('HINCRBY', KEYS[1], '${SOFT_TAGS_HELD_FIELD}', added)
return -1
`;

/**
 * Forgets soft-purged tags (KEYS[1]: the hash; ARGV: a time, the fields) recorded at or before that
 * time: one recorded since (after a tenant purge began) stays. Returns how many were forgotten.
 */
const FORGET_SOFT_TAGS_LUA = `
local forgotten = 0
for i = 2, #ARGV do
  local at = redis.call('HGET', KEYS[1], ARGV[i])
  if at and (tonumber(at) or 0) <= tonumber(ARGV[1]) then
    forgotten = forgotten + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
if forgotten > 0 and redis.call('HEXISTS', KEYS[1], '${SOFT_TAGS_HELD_FIELD}') == 1 then
  redis.call('HINCRBY', KEYS[1], '${SOFT_TAGS_HELD_FIELD}', -forgotten)
end
return forgotten
`;

/** Drops a deleted route's field (KEYS[1]: the hash, ARGV[1]: the route id), keeping its generation in the highest retired one. */
const FORGET_ROUTE_LUA = `
local generation = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if generation > tonumber(redis.call('HGET', KEYS[1], '${RETIRED_ROUTES_FIELD}') or '0') then
  redis.call('HSET', KEYS[1], '${RETIRED_ROUTES_FIELD}', generation)
end
return redis.call('HDEL', KEYS[1], ARGV[1])
`;

/** The most keys one command of a purge deletes: Redis runs one command at a time, for every tenant. */
export const PURGE_DELETE_BATCH = 500;

/**
 * Records a purge of a listing in its tenant's fence (purgeFenceKey; KEYS[1]: the fence, ARGV: the
 * listing, the most members, how long kept in ms), at the Redis clock the fills' writes read. Past the
 * most members the oldest listings leave, the latest time of those kept in member ''.
 */
const FENCE_PURGE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
redis.call('ZADD', KEYS[1], now, ARGV[1])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2])
if over > 0 then
  -- Member '' is never above a named listing, so it leaves first and comes back: one more goes.
  local horizon = 0
  local left = redis.call('ZPOPMIN', KEYS[1], over + 1)
  for i = 2, #left, 2 do horizon = math.max(horizon, tonumber(left[i])) end
  redis.call('ZADD', KEYS[1], 'GT', horizon, '${PURGE_FENCE_HORIZON}')
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return now
`;

/**
 * Takes a listing aside to delete it (KEYS: the listing, where it goes): renamed, so the entries stored
 * after the purge's fence, whose lookups began after it, are listed anew and stay. Returns 0 when an
 * earlier purge's listing is still there (it failed part-way, or runs alongside), nothing taken; 1 otherwise.
 */
const TAKE_LISTING_LUA = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('RENAME', KEYS[1], KEYS[2]) end
return 1
`;

/**
 * Deletes every key the set `listing` lists (a tag set or a path index), and the set with them, once
 * the purge is recorded in the tenant's `fence` (purgeFenceKey) for the fills under way,
 * PURGE_DELETE_BATCH keys per command: one set may list 100,000s of a tenant's small entries, and one
 * SMEMBERS + DEL of them all would stall the shared Redis for every tenant. The set is taken aside
 * first (`<listing>:purging`): nothing is listed there any more, so the rounds end, and an entry listed
 * meanwhile (stored after the fence) can never take the place of one listed before in a round. Members
 * popped leave it, so a purge that failed part-way deletes the rest when retried.
 */
export async function deleteListed(redis: RedisClient, listing: string, fence: string): Promise<void> {
  // First: a fill storing after this can no longer be listed where the deletion below misses it.
  await fencePurge(redis, listing, fence);
  const taken = `${listing}:purging`;
  const take = script(redis, PURGE_SCRIPTS.takeListing);
  const tookListing = (await take(listing, taken)) === 1;
  await deleteTaken(redis, taken);
  if (tookListing) return;
  // Once that earlier listing is gone, any listing taken aside since is this purge's.
  await take(listing, taken);
  await deleteTaken(redis, taken);
}

/** Deletes the keys a listing taken aside lists, and it with them. */
async function deleteTaken(redis: RedisClient, taken: string): Promise<void> {
  const rounds = Math.ceil((await redis.scard(taken)) / PURGE_DELETE_BATCH);
  for (let round = 0; round < rounds; round++) {
    // Members carry the prefix already; all share the tenant's hash tag (one Cluster slot).
    const keys = await redis.spop(taken, PURGE_DELETE_BATCH);
    if (keys.length === 0) return;
    await redis.unlink(...keys);
  }
}

/** Records a purge of `listing` in its tenant's `fence`: the fills under way are not stored. */
async function fencePurge(redis: RedisClient, listing: string, fence: string): Promise<void> {
  await script(redis, PURGE_SCRIPTS.fencePurge)(fence, listing, PURGE_FENCE_MAX_LISTINGS, PURGE_FENCE_MS);
}

type Script = (...keysAndArgs: Array<string | number>) => Promise<number>;

/** A client's bound command for `definition`, defined on it first if it has none of that name. */
function script(redis: RedisClient, definition: ScriptDefinition): Script {
  defineScript(redis, definition);
  const command = (redis as unknown as Record<string, Script>)[definition.name]!;
  return command.bind(redis);
}

function defineScript(redis: RedisClient, { name, lua, keys }: ScriptDefinition): void {
  if (!(name in redis)) redis.defineCommand(name, { numberOfKeys: keys, lua });
}

/**
 * Deletes some of a tenant's stored entries (KEYS: its bound lru, sizes and lists, tenantBoundKeys;
 * ARGV: about the most keys to delete): the least recently used leave the accounting one by one
 * (ZPOPMIN: replicas forgetting the tenant at the same time take different ones) and are unlinked with
 * every set they are listed in (path index, tag sets), each with the copy a purge that failed part-way
 * left taken aside (deleteListed: it keeps the set's TTL, which no later purge of a removed tenant
 * ends), and, for a variant, its URL's Vary marker and variant set, until that many keys are doomed (one
 * entry more may name up to ~135) or none is left.
 * Returns how many entries it took: 0 once the accounting is empty.
 */
const FORGET_ENTRIES_LUA = `
local most = tonumber(ARGV[1])
local entries, doomed, seen = {}, {}, {}
local function doom(key)
  if seen[key] then return end
  seen[key] = true
  doomed[#doomed + 1] = key
end
while #doomed < most and #entries < most do
  local popped = redis.call('ZPOPMIN', KEYS[1])
  local entry = popped[1]
  if not entry then break end
  entries[#entries + 1] = entry
  doom(entry)
  local listed = redis.call('HGET', KEYS[3], entry)
  if listed then
    for item in string.gmatch(listed, '[^\\n]+') do
      local name = string.sub(item, 2)
      doom(name)
      if string.sub(item, 1, 1) == 'm' then doom(name .. ':variants') else doom(name .. ':purging') end
    end
  end
end
if #entries == 0 then return 0 end
redis.call('HDEL', KEYS[2], unpack(entries))
redis.call('HDEL', KEYS[3], unpack(entries))
for i = 1, #doomed, most do redis.call('UNLINK', unpack(doomed, i, math.min(i + most - 1, #doomed))) end
return #entries
`;

/**
 * Deletes what a tenant no longer served stored in the cache: its entries and what lists them, found
 * through its accounting (every entry stored is a member of its bound lru), about PURGE_DELETE_BATCH
 * keys a command, then the accounting (tenantBoundKeys). An origin may keep its responses for decades
 * (max-age and stale-while-revalidate of 2^31 s): left to their TTLs, they would outlive the tenant in
 * memory no tenant's bound counts any more.
 */
export async function forgetTenantEntries(
  redis: RedisClient,
  keyPrefix: string,
  tenantId: string,
): Promise<void> {
  const bound = tenantBoundKeys(keyPrefix, tenantId);
  const [lru, sizes, , lists] = bound;
  const forgetEntries = script(redis, PURGE_SCRIPTS.forgetEntries);
  while ((await forgetEntries(lru, sizes, lists, PURGE_DELETE_BATCH)) > 0);
  // UNLINK frees them off Redis's main thread. One command: the keys share the tenant's hash tag.
  await redis.unlink(...bound, tenantBoundVersionKey(keyPrefix, tenantId));
}

interface ScriptDefinition {
  readonly name: string;
  readonly lua: string;
  /** How many of a call's leading arguments are keys. */
  readonly keys: number;
}

/**
 * Every script of the purges. Named for what they do: a client that defined an older version under
 * another name keeps it.
 */
const PURGE_SCRIPTS = {
  bumpGeneration: { name: 'vantageedgeCacheBumpGenerationOnly', lua: BUMP_GENERATION_LUA, keys: 1 },
  softPurge: { name: 'vantageedgeCacheSoftPurgeCounted', lua: SOFT_PURGE_LUA, keys: 1 },
  forgetRoute: { name: 'vantageedgeCacheForgetRoute', lua: FORGET_ROUTE_LUA, keys: 1 },
  forgetSoftTags: { name: 'vantageedgeCacheForgetSoftTags', lua: FORGET_SOFT_TAGS_LUA, keys: 1 },
  fencePurge: { name: 'vantageedgeCacheFencePurge', lua: FENCE_PURGE_LUA, keys: 1 },
  takeListing: { name: 'vantageedgeCacheTakeListing', lua: TAKE_LISTING_LUA, keys: 2 },
  forgetEntries: { name: 'vantageedgeCacheForgetEntries', lua: FORGET_ENTRIES_LUA, keys: 3 },
} as const satisfies Record<string, ScriptDefinition>;

/**
 * Defines every script of the purges on `redis` at once. A client that pipelines the calls of one turn of
 * the event loop (ioredis auto-pipelining, the gateway's) hands them to a pipeline that has only the
 * scripts the client had when that pipeline was opened: a script defined on its first use, while other
 * calls of the same turn were pipelined, was refused there, and ioredis then answered the pipelined calls
 * with fewer replies than callers, an uncaught exception in the process. The purger defines them when it
 * is made (the gateway's cache store makes one at start), before any call is pipelined.
 */
function definePurgeScripts(redis: RedisClient): void {
  for (const definition of Object.values(PURGE_SCRIPTS)) defineScript(redis, definition);
}

/**
 * Sends purges over Redis (purge-protocol.ts): increments the generation, then publishes it so every
 * replica drops its in-process copies. `keyPrefix` must be the gateways' GATEWAY_REDIS_KEY_PREFIX.
 * Redis errors reject (the caller answers them); nothing is retried.
 */
export function createRedisCachePurger(redis: RedisClient, keyPrefix: string): RedisCachePurger {
  definePurgeScripts(redis);
  const channel = purgeChannel(keyPrefix);
  const bumpGeneration = script(redis, PURGE_SCRIPTS.bumpGeneration);
  const softPurge = script(redis, PURGE_SCRIPTS.softPurge);
  const forgetRoute = script(redis, PURGE_SCRIPTS.forgetRoute);
  const forgetSoftTagFields = script(redis, PURGE_SCRIPTS.forgetSoftTags);
  /** Forgets the tenant's soft-purged tags recorded until `until` (epoch ms), PURGE_DELETE_BATCH a command. */
  const forgetSoftTags = async (tenantId: string, until: number): Promise<void> => {
    const hash = generationKey(keyPrefix, tenantId);
    let cursor = '0';
    do {
      const [next, fieldsAndValues] = await redis.hscan(
        hash,
        cursor,
        'MATCH',
        `${SOFT_TAG_FIELD_PREFIX}*`,
        'COUNT',
        PURGE_DELETE_BATCH,
      );
      const fields = fieldsAndValues.filter((_, i) => i % 2 === 0);
      if (fields.length > 0) await forgetSoftTagFields(hash, until, ...fields);
      cursor = next;
    } while (cursor !== '0');
  };
  const purge = async (target: PurgeTarget): Promise<CachePurgeMessage> => {
    const purgedAt = Date.now();
    const bumped = await bumpGeneration(generationKey(keyPrefix, target.tenantId), generationField(target));
    const message = purgeMessageFor(target, bumped);
    await redis.publish(channel, encodePurgeMessage(message));
    if (target.kind === 'tenant') await forgetSoftTags(target.tenantId, purgedAt);
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
    const fence = purgeFenceKey(keyPrefix, tenantId);
    if (soft) {
      // First: a fill under way would be stored after the purge, as fresh.
      await Promise.all(tags.map((tag) => fencePurge(redis, tagIndexKey(keyPrefix, tenantId, tag), fence)));
      const softAt = await recordSoftPurge(tenantId, tags);
      return publishTagPurge({ kind: 'tags', tenantId, tags: [...tags], softAt });
    }
    for (const tag of tags) await deleteListed(redis, tagIndexKey(keyPrefix, tenantId, tag), fence);
    // The tagged entries are gone: their soft purges no longer matter.
    await forgetSoftTagFields(
      generationKey(keyPrefix, tenantId),
      Number.MAX_SAFE_INTEGER,
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
    async forgetTenant(tenantId) {
      await forgetTenantEntries(redis, keyPrefix, tenantId);
      await redis.unlink(generationKey(keyPrefix, tenantId));
    },
  };
}
