import { randomUUID } from 'node:crypto';
import {
  type CachePurgeMessage,
  encodePurgeMessage,
  generationKey,
  PURGE_FENCE_HORIZON,
  type PurgeGenerations,
  type PurgeTarget,
  parseGenerations,
  parsePurgeMessage,
  purgeChannel,
  purgeFenceKey,
  type TagPurgeTarget,
  tenantBoundKeys,
  tenantBoundVersionKey,
} from '@vantageedge/shared/cache-purge/purge-protocol';
import {
  createRedisCachePurger,
  deleteListed,
  forgetTenantEntries,
  PURGE_DELETE_BATCH,
  type RedisCachePurger,
} from '@vantageedge/shared/cache-purge/redis-cache-purger';
import type { Logger } from '@vantageedge/shared/observability/logger';
import {
  duplicateForSubscribe,
  onSubscribeConnectionReady,
  type RedisClient,
} from '@vantageedge/shared/redis/client';
import { type TenantNodeOf, tenantNodeLocator } from '@vantageedge/shared/redis/tenant-node';
import { type CacheRecord, decodeRecord, encodeRecord, recordHead } from './cache-entry.js';
import {
  type CacheStore,
  chargedBytes,
  DEFAULT_TENANT_MAX_BYTES,
  MAX_EVICTIONS_PER_STORE,
  type PurgeListener,
  type PutOutcome,
  type ResponseWrite,
  type TenantBoundOptions,
  tenantOfKey,
  type VariantWrite,
} from './cache-store.js';

/**
 * The tenant byte bound, shared by the write scripts (prepended to them). A tenant's share lives under
 * its hash tag: `bound:lru` (ZSET, member = stored key, score = last use in µs by the Redis clock),
 * `bound:sizes` (HASH, key → bytes charged when stored, chargedBytes), `bound:bytes` (their sum) and
 * `bound:lists` (HASH, key → the sets it is listed in, one per line: `p<path index>`, `s<tag set>`,
 * `m<URL key>` for a variant). `admit` records the key's new size and evicts least recently used
 * members while over the bound, at most `limit` of them; a member whose key is gone (expired, purged)
 * is only reclaimed. Either way the member leaves every set it was listed in, and a Vary marker whose
 * last variant left goes too: nothing of an entry outlives its place in the bound.
 * Returns { evicted, reclaimed }.
 */
const TENANT_BOUND_LUA = `
local function nowMicros()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local MARKER_META = '{"m":'
local function unlist(lists, member, dropEmptyMarker)
  local listed = redis.call('HGET', lists, member)
  if not listed then return end
  redis.call('HDEL', lists, member)
  local path, url = nil, nil
  for item in string.gmatch(listed, '[^\\n]+') do
    local kind, name = string.sub(item, 1, 1), string.sub(item, 2)
    if kind == 'm' then url = name else redis.call('SREM', name, member) end
    if kind == 'p' then path = name end
  end
  if not url then return end
  local variants = url .. ':variants'
  redis.call('SREM', variants, member)
  if dropEmptyMarker and redis.call('SCARD', variants) == 0
    and redis.call('GETRANGE', url, 4, 3 + #MARKER_META) == MARKER_META then
    redis.call('DEL', url)
    if path then redis.call('SREM', path, url, variants) end
  end
end
local function forget(lru, sizes, total, lists, member, keepMarker)
  local recorded = tonumber(redis.call('HGET', sizes, member) or '0')
  redis.call('ZREM', lru, member)
  redis.call('HDEL', sizes, member)
  unlist(lists, member, not keepMarker)
  return redis.call('DECRBY', total, recorded)
end
local function admit(lru, sizes, total, lists, key, size, max, limit)
  local previous = tonumber(redis.call('HGET', sizes, key) or '0')
  local bytes = redis.call('INCRBY', total, size - previous)
  redis.call('HSET', sizes, key, size)
  redis.call('ZADD', lru, nowMicros(), key)
  local evicted, reclaimed = 0, 0
  while bytes > max and evicted + reclaimed < limit do
    local oldest = nil
    for _, member in ipairs(redis.call('ZRANGE', lru, 0, 1)) do
      if member ~= key then oldest = member break end
    end
    if not oldest then break end
    bytes = forget(lru, sizes, total, lists, oldest)
    if redis.call('DEL', oldest) == 1 then evicted = evicted + 1 else reclaimed = reclaimed + 1 end
  end
  -- Over after the evictions one write may make: a tenant within its bound without this entry takes it
  -- (over by at most the entry, which later writes evict back); one over its bound even without it
  -- does not, or entries as large as the bound, each paid for by a few small ones, would pile up.
  local refused = 0
  if bytes - size > max then
    forget(lru, sizes, total, lists, key)
    redis.call('DEL', key)
    refused = 1
  end
  return { evicted, reclaimed, refused }
end
local function listUnder(set, ttl, ...)
  redis.call('SADD', set, ...)
  redis.call('PEXPIRE', set, ttl, 'NX')
  redis.call('PEXPIRE', set, ttl, 'GT')
end
-- Whether the tenant's purge fence (purgeFenceKey) holds a purge of one of the listings KEYS[from..]
-- (and the path index at KEYS[pathAt]) since the origin was asked: msAgo ms before now ('': not
-- checked), or at the writer's own time at, whichever is earlier (msAgo leaves out the time the write
-- waited to run here; at is another machine's clock).
local function purgedSinceAsked(fence, msAgo, at, pathAt, from)
  if msAgo == '' then return false end
  local t = redis.call('TIME')
  local askedAt = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(msAgo)
  if tonumber(at) < askedAt then askedAt = tonumber(at) end
  local function since(member)
    local purgedAt = redis.call('ZSCORE', fence, member)
    return purgedAt and tonumber(purgedAt) >= askedAt
  end
  if since('${PURGE_FENCE_HORIZON}') or since(KEYS[pathAt]) then return true end
  for i = from, #KEYS do
    if since(KEYS[i]) then return true end
  end
  return false
end
`;

/**
 * A response write, atomic with its tenant's bound. KEYS: key, path index, bound lru, sizes, bytes,
 * lists, the tenant's purge fence, then the entry's tag sets. ARGV: ttl ms, record, tenant max bytes,
 * eviction limit, charged bytes, the head (recordHead) of the response it replaces or '' for any, how
 * long ago its origin was asked (ms, or '') and when by the writer's clock. Returns { 4 } when the key
 * does not begin with that head (another response, or none), { 5 } when the path index or a tag set was
 * purged since the origin was asked (nothing written), { 1, evicted, reclaimed } when stored,
 * { 0 } when the entry alone is larger than the bound, { 3, evicted, reclaimed } when, after the
 * evictions one write may make, the tenant is over
 * its bound even without it (not stored: the next writes evict more). The path index and tag sets' TTLs only grow (PEXPIRE NX, then GT; Redis ≥ 7): a
 * shorter-lived entry must not cut short the listing of longer-lived ones; evicted entries leave them.
 */
const PUT_RESPONSE_LUA = `${TENANT_BOUND_LUA}
if ARGV[6] ~= '' and redis.call('GETRANGE', KEYS[1], 0, #ARGV[6] - 1) ~= ARGV[6] then return { 4 } end
if purgedSinceAsked(KEYS[7], ARGV[7], ARGV[8], 2, 8) then return { 5 } end
local ttl = tonumber(ARGV[1])
local max = tonumber(ARGV[3])
local size = tonumber(ARGV[5])
if size > max then return { 0 } end
unlist(KEYS[6], KEYS[1], false)
local counts = admit(KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[1], size, max, tonumber(ARGV[4]))
if counts[3] == 1 then return { 3, counts[1], counts[2] } end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
listUnder(KEYS[2], ttl, KEYS[1])
local listed = { 'p' .. KEYS[2] }
for i = 8, #KEYS do
  listUnder(KEYS[i], ttl, KEYS[1])
  listed[#listed + 1] = 's' .. KEYS[i]
end
redis.call('HSET', KEYS[6], KEYS[1], table.concat(listed, '\\n'))
return { 1, counts[1], counts[2] }
`;

/**
 * A variant write in one round trip, atomic per URL (all keys share the tenant's `{…}` hash tag, so
 * one Cluster slot). KEYS: url key, variant key, the URL's variant set, path index, bound lru, sizes,
 * bytes, lists, the tenant's purge fence, then the entry's tag sets. ARGV: ttl ms, marker, variant
 * record, max variants, tenant max bytes, eviction limit, charged bytes, the head of the variant it
 * replaces or '' for any, how long ago its origin was asked (ms, or '') and when by the writer's clock.
 * Returns
 * { 4 } when the variant key does not begin with that head or the URL key does not hold that marker,
 * { 5 } when the path index or a tag set was purged since the origin was asked (nothing written),
 * { 1, evicted, reclaimed, replaced } when stored,
 * { 2 } when the variant alone is larger than the tenant's bound, { 3, evicted, reclaimed, replaced }
 * when, after the evictions one write may make, the tenant is over its bound even without it.
 * A URL with max variants already makes room first: members whose entry expired or was evicted are
 * forgotten, then the least recently used live ones (`replaced`) leave with everything of theirs
 * (entry, tenant share, path index, tag sets). Their recency is their score in the tenant's LRU: when
 * they were stored, refreshed or last read from the store (GET_AND_TOUCH), so a HIT costs no write of
 * its own. The variant's charge covers the marker, which leaves with the URL's last variant. TTLs only
 * grow (PEXPIRE NX, then GT): a shorter-lived variant must not cut short the marker or the indexes of
 * longer-lived ones.
 */
const PUT_VARIANT_LUA = `${TENANT_BOUND_LUA}
if ARGV[8] ~= '' and (redis.call('STRLEN', KEYS[1]) ~= #ARGV[2]
    or redis.call('GETRANGE', KEYS[1], 0, #ARGV[2] - 1) ~= ARGV[2]
    or redis.call('GETRANGE', KEYS[2], 0, #ARGV[8] - 1) ~= ARGV[8]) then
  return { 4 }
end
if purgedSinceAsked(KEYS[9], ARGV[9], ARGV[10], 4, 10) then return { 5 } end
local ttl = tonumber(ARGV[1])
local max = tonumber(ARGV[5])
local size = tonumber(ARGV[7])
local maxVariants = tonumber(ARGV[4])
if size > max then return { 2 } end
local replaced = 0
if redis.call('SISMEMBER', KEYS[3], KEYS[2]) == 0 and redis.call('SCARD', KEYS[3]) >= maxVariants then
  local live = {}
  for _, member in ipairs(redis.call('SMEMBERS', KEYS[3])) do
    if redis.call('EXISTS', member) == 0 then
      redis.call('SREM', KEYS[3], member)
    else
      live[#live + 1] = { member, tonumber(redis.call('ZSCORE', KEYS[5], member) or '0') }
    end
  end
  if #live >= maxVariants then
    table.sort(live, function(a, b) return a[2] < b[2] end)
    for i = 1, #live - maxVariants + 1 do
      local victim = live[i][1]
      forget(KEYS[5], KEYS[6], KEYS[7], KEYS[8], victim, true)
      redis.call('SREM', KEYS[3], victim)
      redis.call('DEL', victim)
      replaced = replaced + 1
    end
  end
end
-- The URL held a response (it did not vary before): the marker replaces it in the tenant's share.
local urlHeldResponse = redis.call('HEXISTS', KEYS[6], KEYS[1]) == 1
if urlHeldResponse then
  local recorded = tonumber(redis.call('HGET', KEYS[6], KEYS[1]))
  redis.call('ZREM', KEYS[5], KEYS[1])
  redis.call('HDEL', KEYS[6], KEYS[1])
  redis.call('DECRBY', KEYS[7], recorded)
  unlist(KEYS[8], KEYS[1], false)
end
unlist(KEYS[8], KEYS[2], false)
local counts = admit(KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[2], size, max, tonumber(ARGV[6]))
if counts[3] == 1 then
  -- The response the URL held left the tenant's share above: it goes with the refused variant, as does
  -- a marker whose last variant made room above (charged within its variants, it has no share left).
  if urlHeldResponse then
    redis.call('DEL', KEYS[1])
  elseif replaced > 0 and redis.call('SCARD', KEYS[3]) == 0
    and redis.call('GETRANGE', KEYS[1], 4, 3 + #MARKER_META) == MARKER_META then
    redis.call('DEL', KEYS[1])
    redis.call('SREM', KEYS[4], KEYS[1], KEYS[3])
  end
  return { 3, counts[1], counts[2], replaced }
end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ttl)
local markerTtl = redis.call('PTTL', KEYS[1])
if markerTtl < ttl then markerTtl = ttl end
redis.call('SET', KEYS[1], ARGV[2], 'PX', markerTtl)
listUnder(KEYS[3], ttl, KEYS[2])
listUnder(KEYS[4], ttl, KEYS[1], KEYS[2], KEYS[3])
local listed = { 'p' .. KEYS[4], 'm' .. KEYS[1] }
for i = 10, #KEYS do
  listUnder(KEYS[i], ttl, KEYS[2])
  listed[#listed + 1] = 's' .. KEYS[i]
end
redis.call('HSET', KEYS[8], KEYS[2], table.concat(listed, '\\n'))
return { 1, counts[1], counts[2], replaced }
`;

/**
 * Evicts a tenant's least recently used members while its bytes are over a bound, as a write's `admit`
 * does, without a write: a config lowered the bound. KEYS: bound lru, sizes, bytes, lists, bound
 * version. ARGV: tenant max bytes, eviction limit, the config version of that bound (decimal). Returns
 * { over, evicted, reclaimed }: over is 1 while members are left and the tenant is still over its bound
 * (the limit reached: call again). A bound older than one a replica trimmed for already (replicas apply
 * a config at different times) trims nothing: { 0, 0, 0 }.
 */
const TRIM_TENANT_LUA = `${TENANT_BOUND_LUA}
local max, limit, version = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local newest = redis.call('GET', KEYS[5])
if newest and (#newest > #version or (#newest == #version and newest > version)) then
  return { 0, 0, 0 }
end
if newest ~= version then redis.call('SET', KEYS[5], version) end
local bytes = tonumber(redis.call('GET', KEYS[3]) or '0')
local evicted, reclaimed = 0, 0
while bytes > max and evicted + reclaimed < limit do
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
  if not oldest then break end
  bytes = forget(KEYS[1], KEYS[2], KEYS[3], KEYS[4], oldest)
  if redis.call('DEL', oldest) == 1 then evicted = evicted + 1 else reclaimed = reclaimed + 1 end
end
local over = 0
if bytes > max and redis.call('ZCARD', KEYS[1]) > 0 then over = 1 end
return { over, evicted, reclaimed }
`;

/**
 * The most members one trim script evicts: a trim of a large share runs as several scripts, and the
 * single-threaded Redis serves other tenants between them.
 */
const TRIM_EVICTIONS_PER_CALL = 128;

/** A tenant's trim in progress: the bound it trims toward (the latest asked), its config version, its end. */
interface RunningTrim {
  bound: number;
  configVersion: bigint;
  done: Promise<void>;
}

/** A read that counts as a use: refreshes the key's place in its tenant's LRU (KEYS: key, bound lru). */
const GET_AND_TOUCH_LUA = `
local value = redis.call('GET', KEYS[1])
if value then
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[2], 'XX', tonumber(t[1]) * 1000000 + tonumber(t[2]), KEYS[1])
end
return value
`;

/** Deletes KEYS[1] only while it still holds ARGV[1] (a lease given back by its holder). */
const RELEASE_LEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * GATEWAY_CACHE_STORE_MAX_ENTRY_BYTES: the largest record one write (and every HIT's GET) moves through
 * the single-threaded Redis, which serves no other tenant meanwhile. Twice the default max_body_bytes.
 */
export const DEFAULT_STORE_MAX_ENTRY_BYTES = 2 * 1024 * 1024;

/** A tenant's keys in Redis take at most this many times its byte bound (docs/cache.md). */
export const REDIS_FOOTPRINT_FACTOR = 2;

// Named for their KEYS layout and behaviour: a client that defined an older version under another
// name keeps it.
const PUT_VARIANT = 'vantageedgeCachePutVariantFencedReplacingIfSame';
const PUT_RESPONSE = 'vantageedgeCachePutResponseFencedListedIfSame';
const GET_AND_TOUCH = 'vantageedgeCacheGetAndTouch';
const TRIM_TENANT = 'vantageedgeCacheTrimTenant';
type BoundedWrite = (...keysAndArgs: Array<string | number | Buffer>) => Promise<number[]>;
type GetAndTouch = (...keysAndArgs: string[]) => Promise<Buffer | null>;

function replacedHead(write: ResponseWrite): Buffer | string {
  return write.replacing === undefined ? '' : recordHead(write.replacing);
}

function putOutcome([code]: number[]): PutOutcome {
  if (code === 1) return 'stored';
  if (code === 5) return 'purged';
  return code === 4 ? 'changed' : 'over_tenant_bound';
}

/**
 * When the write's origin was asked, as ARGV for purgedSinceAsked: how long ago (ms), and when by this
 * process's clock, the writer's own reading if earlier ('' and '': not checked).
 */
function askedWhen(write: ResponseWrite): [number | string, number | string] {
  if (write.askedMsAgo === undefined) return ['', ''];
  const msAgo = Math.max(0, Math.ceil(write.askedMsAgo));
  return [msAgo, Math.min(Date.now() - msAgo, Math.floor(write.askedAt ?? Number.POSITIVE_INFINITY))];
}

/** numberOfKeys undefined: the caller passes the number of keys first (the write scripts' tag sets vary). */
function defineScript(redis: RedisClient, name: string, numberOfKeys: number | undefined, lua: string): void {
  if (!(name in redis))
    redis.defineCommand(name, numberOfKeys === undefined ? { lua } : { numberOfKeys, lua });
}

function scriptCommand<T>(redis: RedisClient, name: string): T {
  const command = (redis as unknown as Record<string, (...args: unknown[]) => unknown>)[name]!;
  return command.bind(redis) as T;
}

export interface RedisCacheStoreOptions extends TenantBoundOptions {
  /** Prepended to every key and the purge channel: GATEWAY_REDIS_KEY_PREFIX (tests isolate with it). */
  keyPrefix?: string | undefined;
  logger?: Logger | undefined;
  /** Records larger are not written (the replica keeps them in its L1 only): DEFAULT_STORE_MAX_ENTRY_BYTES. */
  maxEntryBytes?: number | undefined;
  /** How often the purge subscription's connection is checked (ms): SUBSCRIBER_PING_INTERVAL_MS. */
  subscriberPingIntervalMs?: number | undefined;
}

/**
 * The cache store shared by every gateway replica. Entries are binary strings with a TTL; a path index
 * set per path lists its keys for invalidation; purges follow the shared purge protocol (generation
 * hash + pub/sub on a second connection, subscribed on the first subscribe()). Run Redis with
 * `maxmemory-policy volatile-lru`: every cache key has a TTL and the generation hashes have none, so
 * memory pressure evicts entries, never a purge generation (docs/cache.md).
 */
export class RedisCacheStore implements CacheStore {
  readonly #redis: RedisClient;
  readonly #prefix: string;
  readonly #purger: RedisCachePurger;
  readonly #putVariant: BoundedWrite;
  readonly #putResponse: BoundedWrite;
  readonly #getAndTouch: GetAndTouch;
  readonly #trimTenant: BoundedWrite;
  /** Each tenant's trim in progress (trimTenant). */
  readonly #trims = new Map<string, RunningTrim>();
  readonly #tenantMaxBytes: number;
  readonly #maxEntryBytes: number;
  readonly #onEvicted: TenantBoundOptions['onEvicted'];
  readonly #logger: Logger | undefined;
  readonly #subscriberPingIntervalMs: number | undefined;
  #subscriber: RedisClient | null = null;
  readonly #listeners: PurgeListener[] = [];
  readonly nodeOf: TenantNodeOf;

  constructor(redis: RedisClient, options: RedisCacheStoreOptions = {}) {
    this.#redis = redis;
    this.nodeOf = tenantNodeLocator(redis);
    this.#prefix = options.keyPrefix ?? '';
    this.#logger = options.logger;
    this.#purger = createRedisCachePurger(redis, this.#prefix);
    this.#tenantMaxBytes = options.tenantMaxBytes ?? DEFAULT_TENANT_MAX_BYTES;
    this.#maxEntryBytes = options.maxEntryBytes ?? DEFAULT_STORE_MAX_ENTRY_BYTES;
    this.#onEvicted = options.onEvicted;
    this.#subscriberPingIntervalMs = options.subscriberPingIntervalMs;
    defineScript(redis, PUT_VARIANT, undefined, PUT_VARIANT_LUA);
    defineScript(redis, PUT_RESPONSE, undefined, PUT_RESPONSE_LUA);
    defineScript(redis, GET_AND_TOUCH, 2, GET_AND_TOUCH_LUA);
    defineScript(redis, TRIM_TENANT, 5, TRIM_TENANT_LUA);
    this.#putVariant = scriptCommand(redis, PUT_VARIANT);
    this.#putResponse = scriptCommand(redis, PUT_RESPONSE);
    this.#getAndTouch = scriptCommand(redis, `${GET_AND_TOUCH}Buffer`);
    this.#trimTenant = scriptCommand(redis, TRIM_TENANT);
  }

  async get(key: string): Promise<CacheRecord | null> {
    const tenantId = tenantOfKey(key);
    const buffer =
      tenantId === undefined
        ? await this.#redis.getBuffer(this.#prefix + key)
        : await this.#getAndTouch(this.#prefix + key, tenantBoundKeys(this.#prefix, tenantId)[0]);
    return buffer ? decodeRecord(buffer) : null;
  }

  async putResponse(write: ResponseWrite): Promise<PutOutcome> {
    const p = this.#prefix;
    const record = encodeRecord(write.entry);
    if (record.length > this.#maxEntryBytes) return 'too_large_to_share';
    const keys = [
      p + write.key,
      p + write.pathIndexKey,
      ...this.#boundKeys(write.key),
      this.#fence(write.key),
      ...this.#tagSets(write),
    ];
    const result = await this.#putResponse(
      keys.length,
      ...keys,
      write.ttlMs,
      record,
      write.tenantMaxBytes ?? this.#tenantMaxBytes,
      MAX_EVICTIONS_PER_STORE,
      chargedBytes(write, record.length, p),
      replacedHead(write),
      ...askedWhen(write),
    );
    this.#reportEvictions(result);
    return putOutcome(result);
  }

  /**
   * A tenant's trim already running goes on toward the bound given last: a config applied while it runs
   * (the bound raised again, or lowered further) changes where it stops, not only where a second trim would.
   */
  trimTenant(tenantId: string, maxBytes: number | undefined, configVersion: bigint): Promise<void> {
    const bound = maxBytes ?? this.#tenantMaxBytes;
    const running = this.#trims.get(tenantId);
    if (running !== undefined) {
      running.bound = bound;
      running.configVersion = configVersion;
      return running.done;
    }
    const trim: RunningTrim = { bound, configVersion, done: Promise.resolve() };
    this.#trims.set(tenantId, trim);
    trim.done = this.#trim(tenantId, trim);
    return trim.done;
  }

  async #trim(tenantId: string, trim: RunningTrim): Promise<void> {
    try {
      const keys = [
        ...tenantBoundKeys(this.#prefix, tenantId),
        tenantBoundVersionKey(this.#prefix, tenantId),
      ];
      for (;;) {
        const { bound, configVersion } = trim;
        const [over, evicted = 0, reclaimed = 0] = await this.#trimTenant(
          ...keys,
          bound,
          TRIM_EVICTIONS_PER_CALL,
          configVersion.toString(),
        );
        if (evicted > 0) this.#onEvicted?.('lru', evicted);
        if (reclaimed > 0) this.#onEvicted?.('expired', reclaimed);
        const asked = trim.bound === bound && trim.configVersion === configVersion;
        if (asked && (over !== 1 || evicted + reclaimed === 0)) return;
      }
    } finally {
      this.#trims.delete(tenantId);
    }
  }

  #fence(key: string): string {
    return purgeFenceKey(this.#prefix, tenantOfKey(key)!);
  }

  #boundKeys(key: string): [string, string, string, string] {
    const tenantId = tenantOfKey(key);
    if (tenantId === undefined) throw new Error('cache keys live in a tenant keyspace (c:{<tenant_id>}:)');
    return tenantBoundKeys(this.#prefix, tenantId);
  }

  #tagSets({ tagIndexKeys }: ResponseWrite): string[] {
    return (tagIndexKeys ?? []).map((tagIndexKey) => this.#prefix + tagIndexKey);
  }

  #reportEvictions(result: number[]): void {
    const [, evicted = 0, reclaimed = 0, replaced = 0] = result;
    if (evicted > 0) this.#onEvicted?.('lru', evicted);
    if (reclaimed > 0) this.#onEvicted?.('expired', reclaimed);
    if (replaced > 0) this.#onEvicted?.('vary_cap', replaced);
  }

  async putVariant(write: VariantWrite): Promise<PutOutcome> {
    const p = this.#prefix;
    const record = encodeRecord(write.entry);
    if (record.length > this.#maxEntryBytes) return 'too_large_to_share';
    const keys = [
      p + write.urlKey,
      p + write.key,
      `${p}${write.urlKey}:variants`,
      p + write.pathIndexKey,
      ...this.#boundKeys(write.key),
      this.#fence(write.key),
      ...this.#tagSets(write),
    ];
    const result = await this.#putVariant(
      keys.length,
      ...keys,
      write.ttlMs,
      encodeRecord({ kind: 'vary', varyOn: write.entry.varyOn }),
      record,
      write.maxVariants,
      write.tenantMaxBytes ?? this.#tenantMaxBytes,
      MAX_EVICTIONS_PER_STORE,
      chargedBytes(write, record.length, p),
      replacedHead(write),
      ...askedWhen(write),
    );
    this.#reportEvictions(result);
    return putOutcome(result);
  }

  async acquireLease(key: string, ttlMs: number): Promise<string | null> {
    const token = randomUUID();
    const set = await this.#redis.set(this.#prefix + key, token, 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX');
    return set === 'OK' ? token : null;
  }

  async releaseLease(key: string, token: string): Promise<void> {
    await this.#redis.eval(RELEASE_LEASE_LUA, 1, this.#prefix + key, token);
  }

  async invalidatePath(pathIndexKey: string): Promise<void> {
    const tenantId = tenantOfKey(pathIndexKey);
    if (tenantId === undefined) throw new Error('cache keys live in a tenant keyspace (c:{<tenant_id>}:)');
    await deleteListed(this.#redis, this.#prefix + pathIndexKey, purgeFenceKey(this.#prefix, tenantId));
    await this.dropCopies(pathIndexKey);
  }

  async dropCopies(pathIndexKey: string): Promise<void> {
    await this.#redis.publish(purgeChannel(this.#prefix), encodePurgeMessage({ kind: 'path', pathIndexKey }));
  }

  /**
   * Read PURGE_DELETE_BATCH fields a command: the hash may hold 10,000 soft-purged tags, and every
   * replica reloads every tenant's every 15 s. HSCAN is not one snapshot, which the caller allows for:
   * purges published during a load are merged into it, and a route dropped meanwhile is held a while.
   */
  async generations(tenantId: string): Promise<PurgeGenerations> {
    const hash: Record<string, string> = {};
    let cursor = '0';
    do {
      const [next, fieldsAndValues] = await this.#redis.hscan(
        generationKey(this.#prefix, tenantId),
        cursor,
        'COUNT',
        PURGE_DELETE_BATCH,
      );
      for (let i = 0; i < fieldsAndValues.length; i += 2) hash[fieldsAndValues[i]!] = fieldsAndValues[i + 1]!;
      cursor = next;
    } while (cursor !== '0');
    return parseGenerations(hash);
  }

  purge(target: PurgeTarget): Promise<CachePurgeMessage> {
    return this.#purger.purge(target);
  }

  purgeTagged(target: TagPurgeTarget): Promise<CachePurgeMessage> {
    return this.#purger.purgeTagged(target);
  }

  forgetTenantEntries(tenantId: string): Promise<void> {
    return forgetTenantEntries(this.#redis, this.#prefix, tenantId);
  }

  subscribe(listener: PurgeListener): void {
    this.#listeners.push(listener);
    if (this.#subscriber) return;
    const subscriber = duplicateForSubscribe(this.#redis, { pingIntervalMs: this.#subscriberPingIntervalMs });
    this.#subscriber = subscriber;
    subscriber.on('error', () => {});
    subscriber.on('message', (_channel: string, text: string) => {
      const message = parsePurgeMessage(text);
      if (!message) {
        this.#logger?.warn('ignored malformed cache purge message');
        return;
      }
      for (const each of this.#listeners) each.onPurge(message);
    });
    // A SUBSCRIBE slower than the command timeout is rejected: try again until it holds (a replica
    // that is not subscribed would keep serving purged responses from its L1). Once it holds, resync:
    // messages published before that were not received.
    const channel = purgeChannel(this.#prefix);
    let round = 0;
    const trySubscribe = (attempt: number, of = ++round) => {
      // A newer connection's round replaces this one.
      if (this.#subscriber !== subscriber || of !== round) return;
      subscriber.subscribe(channel).then(
        () => {
          for (const each of this.#listeners) each.onResync();
        },
        (error: Error) => {
          this.#logger?.warn('cache purge subscribe failed; trying again', { error: error.message, attempt });
          setTimeout(() => trySubscribe(attempt + 1, of), Math.min(2_000, 100 * attempt)).unref();
        },
      );
    };
    // Each new connection (a reconnect, a Cluster subscriber moved to another node after its node failed)
    // follows a gap in which purges went unheard: subscribe on it and resync once that holds.
    onSubscribeConnectionReady(subscriber, () => setImmediate(() => trySubscribe(1)));
    trySubscribe(1);
  }

  async close(): Promise<void> {
    this.#listeners.length = 0;
    this.#subscriber?.disconnect();
    this.#subscriber = null;
  }
}
