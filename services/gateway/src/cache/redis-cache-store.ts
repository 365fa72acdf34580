import { randomUUID } from 'node:crypto';
import {
  type CachePurgeMessage,
  encodePurgeMessage,
  generationKey,
  type PurgeGenerations,
  type PurgeTarget,
  parseGenerations,
  parsePurgeMessage,
  purgeChannel,
  type TagPurgeTarget,
  tenantKeyspace,
} from '@vantageedge/shared/cache-purge/purge-protocol';
import {
  createRedisCachePurger,
  type RedisCachePurger,
} from '@vantageedge/shared/cache-purge/redis-cache-purger';
import type { Logger } from '@vantageedge/shared/observability/logger';
import { duplicateForSubscribe, type RedisClient } from '@vantageedge/shared/redis/client';
import type { ChainableCommander } from 'ioredis';
import { type CacheRecord, decodeRecord, encodeRecord } from './cache-entry.js';
import {
  type CacheStore,
  DEFAULT_TENANT_MAX_BYTES,
  MAX_EVICTIONS_PER_STORE,
  type PurgeListener,
  type ResponseWrite,
  type TenantBoundOptions,
  tenantOfKey,
  type VariantWrite,
} from './cache-store.js';

/**
 * The tenant byte bound, shared by the write scripts (prepended to them). A tenant's share lives under
 * its hash tag: `bound:lru` (ZSET, member = stored key, score = last use in µs by the Redis clock),
 * `bound:sizes` (HASH, key → bytes recorded when stored) and `bound:bytes` (their sum). `admit` records
 * the key's new size and evicts least recently used members while over the bound, at most `limit` of
 * them; a member whose key is gone (expired, purged) is only reclaimed. Returns { evicted, reclaimed }.
 */
const TENANT_BOUND_LUA = `
local function nowMicros()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function admit(lru, sizes, total, key, size, max, limit)
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
    local recorded = tonumber(redis.call('HGET', sizes, oldest) or '0')
    redis.call('ZREM', lru, oldest)
    redis.call('HDEL', sizes, oldest)
    bytes = redis.call('DECRBY', total, recorded)
    if redis.call('DEL', oldest) == 1 then evicted = evicted + 1 else reclaimed = reclaimed + 1 end
  end
  return { evicted, reclaimed }
end
`;

/**
 * A response write, atomic with its tenant's bound. KEYS: key, path index, bound lru, sizes, bytes.
 * ARGV: ttl ms, record, tenant max bytes, eviction limit. Returns { 1, evicted, reclaimed } when
 * stored, { 0 } when the record alone is larger than the bound.
 */
const PUT_RESPONSE_LUA = `${TENANT_BOUND_LUA}
local ttl = tonumber(ARGV[1])
local size = #ARGV[2]
if size > tonumber(ARGV[3]) then return { 0 } end
local counts = admit(KEYS[3], KEYS[4], KEYS[5], KEYS[1], size, tonumber(ARGV[3]), tonumber(ARGV[4]))
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
redis.call('SADD', KEYS[2], KEYS[1])
redis.call('PEXPIRE', KEYS[2], ttl, 'NX')
redis.call('PEXPIRE', KEYS[2], ttl, 'GT')
return { 1, counts[1], counts[2] }
`;

/**
 * A variant write in one round trip, atomic per URL (all keys share the tenant's `{…}` hash tag, so
 * one Cluster slot). KEYS: url key, variant key, the URL's variant set, path index, bound lru, sizes,
 * bytes. ARGV: ttl ms, marker, variant record, max variants, tenant max bytes, eviction limit.
 * Returns { 1, evicted, reclaimed } when stored, { 0 } when the URL already has max live variants
 * (members whose entry expired or was evicted are forgotten first), { 2 } when the variant alone is
 * larger than the tenant's bound. The variant counts against the bound; its small marker does not.
 * TTLs only grow (PEXPIRE NX, then GT; Redis ≥ 7): a shorter-lived variant must not cut short the
 * marker or the indexes of longer-lived ones.
 */
const PUT_VARIANT_LUA = `${TENANT_BOUND_LUA}
local ttl = tonumber(ARGV[1])
local max = tonumber(ARGV[4])
local size = #ARGV[3]
if size > tonumber(ARGV[5]) then return { 2 } end
if redis.call('SISMEMBER', KEYS[3], KEYS[2]) == 0 then
  if redis.call('SCARD', KEYS[3]) >= max then
    for _, member in ipairs(redis.call('SMEMBERS', KEYS[3])) do
      if redis.call('EXISTS', member) == 0 then redis.call('SREM', KEYS[3], member) end
    end
    if redis.call('SCARD', KEYS[3]) >= max then return { 0 } end
  end
  redis.call('SADD', KEYS[3], KEYS[2])
end
local counts = admit(KEYS[5], KEYS[6], KEYS[7], KEYS[2], size, tonumber(ARGV[5]), tonumber(ARGV[6]))
redis.call('SET', KEYS[2], ARGV[3], 'PX', ttl)
local markerTtl = redis.call('PTTL', KEYS[1])
if markerTtl < ttl then markerTtl = ttl end
redis.call('SET', KEYS[1], ARGV[2], 'PX', markerTtl)
redis.call('SADD', KEYS[4], KEYS[1], KEYS[2], KEYS[3])
for _, key in ipairs({ KEYS[3], KEYS[4] }) do
  redis.call('PEXPIRE', key, ttl, 'NX')
  redis.call('PEXPIRE', key, ttl, 'GT')
end
return { 1, counts[1], counts[2] }
`;

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

const PUT_VARIANT = 'vantageedgeCachePutVariantBounded';
const PUT_RESPONSE = 'vantageedgeCachePutResponseBounded';
const GET_AND_TOUCH = 'vantageedgeCacheGetAndTouch';
type BoundedWrite = (...keysAndArgs: Array<string | number | Buffer>) => Promise<number[]>;
type GetAndTouch = (...keysAndArgs: string[]) => Promise<Buffer | null>;

/** The keys of a tenant's share of the store (TENANT_BOUND_LUA), all under its hash tag. */
function tenantBoundKeys(prefix: string, tenantId: string): [lru: string, sizes: string, bytes: string] {
  const keyspace = tenantKeyspace(prefix, tenantId);
  return [`${keyspace}bound:lru`, `${keyspace}bound:sizes`, `${keyspace}bound:bytes`];
}

function defineScript(redis: RedisClient, name: string, numberOfKeys: number, lua: string): void {
  if (!(name in redis)) redis.defineCommand(name, { numberOfKeys, lua });
}

function scriptCommand<T>(redis: RedisClient, name: string): T {
  const command = (redis as unknown as Record<string, (...args: unknown[]) => unknown>)[name]!;
  return command.bind(redis) as T;
}

export interface RedisCacheStoreOptions extends TenantBoundOptions {
  /** Prepended to every key and the purge channel: GATEWAY_REDIS_KEY_PREFIX (tests isolate with it). */
  keyPrefix?: string | undefined;
  logger?: Logger | undefined;
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
  readonly #tenantMaxBytes: number;
  readonly #onEvicted: TenantBoundOptions['onEvicted'];
  readonly #logger: Logger | undefined;
  #subscriber: RedisClient | null = null;
  readonly #listeners: PurgeListener[] = [];

  constructor(redis: RedisClient, options: RedisCacheStoreOptions = {}) {
    this.#redis = redis;
    this.#prefix = options.keyPrefix ?? '';
    this.#logger = options.logger;
    this.#purger = createRedisCachePurger(redis, this.#prefix);
    this.#tenantMaxBytes = options.tenantMaxBytes ?? DEFAULT_TENANT_MAX_BYTES;
    this.#onEvicted = options.onEvicted;
    defineScript(redis, PUT_VARIANT, 7, PUT_VARIANT_LUA);
    defineScript(redis, PUT_RESPONSE, 5, PUT_RESPONSE_LUA);
    defineScript(redis, GET_AND_TOUCH, 2, GET_AND_TOUCH_LUA);
    this.#putVariant = scriptCommand(redis, PUT_VARIANT);
    this.#putResponse = scriptCommand(redis, PUT_RESPONSE);
    this.#getAndTouch = scriptCommand(redis, `${GET_AND_TOUCH}Buffer`);
  }

  async get(key: string): Promise<CacheRecord | null> {
    const tenantId = tenantOfKey(key);
    const buffer =
      tenantId === undefined
        ? await this.#redis.getBuffer(this.#prefix + key)
        : await this.#getAndTouch(this.#prefix + key, tenantBoundKeys(this.#prefix, tenantId)[0]);
    return buffer ? decodeRecord(buffer) : null;
  }

  async putResponse(write: ResponseWrite): Promise<'stored' | 'over_tenant_bound'> {
    const p = this.#prefix;
    const result = await this.#putResponse(
      p + write.key,
      p + write.pathIndexKey,
      ...this.#boundKeys(write.key),
      write.ttlMs,
      encodeRecord(write.entry),
      write.tenantMaxBytes ?? this.#tenantMaxBytes,
      MAX_EVICTIONS_PER_STORE,
    );
    if (result[0] !== 1) return 'over_tenant_bound';
    this.#reportEvictions(result);
    await this.#writeTags(write);
    return 'stored';
  }

  #boundKeys(key: string): [string, string, string] {
    const tenantId = tenantOfKey(key);
    if (tenantId === undefined) throw new Error('cache keys live in a tenant keyspace (c:{<tenant_id>}:)');
    return tenantBoundKeys(this.#prefix, tenantId);
  }

  #reportEvictions(result: number[]): void {
    const [, evicted = 0, reclaimed = 0] = result;
    if (evicted > 0) this.#onEvicted?.('lru', evicted);
    if (reclaimed > 0) this.#onEvicted?.('expired', reclaimed);
  }

  async #writeTags({ key, tagIndexKeys, ttlMs }: ResponseWrite): Promise<void> {
    if (tagIndexKeys === undefined || tagIndexKeys.length === 0) return;
    const tagWrite = this.#redis.multi();
    this.#listUnderTags(tagWrite, key, tagIndexKeys, ttlMs);
    await tagWrite.exec();
  }

  /** Lists the key in its tag sets, whose TTLs only grow (like the path index). */
  #listUnderTags(write: ChainableCommander, key: string, tagIndexKeys: readonly string[], ttlMs: number) {
    for (const tagIndexKey of tagIndexKeys) {
      const tagSet = this.#prefix + tagIndexKey;
      write
        .sadd(tagSet, this.#prefix + key)
        .pexpire(tagSet, ttlMs, 'NX')
        .pexpire(tagSet, ttlMs, 'GT');
    }
  }

  async putVariant(write: VariantWrite): Promise<'stored' | 'too_many_variants' | 'over_tenant_bound'> {
    const p = this.#prefix;
    const result = await this.#putVariant(
      p + write.urlKey,
      p + write.key,
      `${p}${write.urlKey}:variants`,
      p + write.pathIndexKey,
      ...this.#boundKeys(write.key),
      write.ttlMs,
      encodeRecord({ kind: 'vary', varyOn: write.entry.varyOn }),
      encodeRecord(write.entry),
      write.maxVariants,
      write.tenantMaxBytes ?? this.#tenantMaxBytes,
      MAX_EVICTIONS_PER_STORE,
    );
    if (result[0] === 0) return 'too_many_variants';
    if (result[0] === 2) return 'over_tenant_bound';
    this.#reportEvictions(result);
    await this.#writeTags(write);
    return 'stored';
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
    const index = this.#prefix + pathIndexKey;
    const keys = await this.#redis.smembers(index);
    await this.#redis.del(index, ...keys);
    await this.#redis.publish(purgeChannel(this.#prefix), encodePurgeMessage({ kind: 'path', pathIndexKey }));
  }

  async generations(tenantId: string): Promise<PurgeGenerations> {
    return parseGenerations(await this.#redis.hgetall(generationKey(this.#prefix, tenantId)));
  }

  purge(target: PurgeTarget): Promise<CachePurgeMessage> {
    return this.#purger.purge(target);
  }

  purgeTagged(target: TagPurgeTarget): Promise<CachePurgeMessage> {
    return this.#purger.purgeTagged(target);
  }

  subscribe(listener: PurgeListener): void {
    this.#listeners.push(listener);
    if (this.#subscriber) return;
    const subscriber = duplicateForSubscribe(this.#redis);
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
    // After a reconnect purge messages may have been missed.
    subscriber.on('ready', () => {
      for (const each of this.#listeners) each.onResync();
    });
    // A SUBSCRIBE slower than the command timeout is rejected: try again until it holds (a replica
    // that is not subscribed would keep serving purged responses from its L1). Once it holds, resync:
    // generations read before that may predate a purge whose message came too early to be received.
    const channel = purgeChannel(this.#prefix);
    const trySubscribe = (attempt: number) => {
      if (this.#subscriber !== subscriber) return;
      subscriber.subscribe(channel).then(
        () => {
          for (const each of this.#listeners) each.onResync();
        },
        (error: Error) => {
          this.#logger?.warn('cache purge subscribe failed; trying again', { error: error.message, attempt });
          setTimeout(() => trySubscribe(attempt + 1), Math.min(2_000, 100 * attempt)).unref();
        },
      );
    };
    trySubscribe(1);
  }

  async close(): Promise<void> {
    this.#listeners.length = 0;
    this.#subscriber?.disconnect();
    this.#subscriber = null;
  }
}
