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
} from '@vantageedge/shared/cache-purge/purge-protocol';
import {
  createRedisCachePurger,
  type RedisCachePurger,
} from '@vantageedge/shared/cache-purge/redis-cache-purger';
import type { Logger } from '@vantageedge/shared/observability/logger';
import { duplicateForSubscribe, type RedisClient } from '@vantageedge/shared/redis/client';
import type { ChainableCommander } from 'ioredis';
import { type CacheRecord, decodeRecord, encodeRecord } from './cache-entry.js';
import type { CacheStore, PurgeListener, ResponseWrite, VariantWrite } from './cache-store.js';

/**
 * A variant write in one round trip, atomic per URL (all keys share the tenant's `{…}` hash tag, so
 * one Cluster slot). KEYS: url key, variant key, the URL's variant set, path index.
 * ARGV: ttl ms, marker, variant record, max variants. Returns 1 when stored, 0 when the URL already
 * has max live variants (members whose entry expired or was evicted are forgotten first).
 * TTLs only grow (PEXPIRE NX, then GT; Redis ≥ 7): a shorter-lived variant must not cut short the
 * marker or the indexes of longer-lived ones.
 */
const PUT_VARIANT_LUA = `
local ttl = tonumber(ARGV[1])
local max = tonumber(ARGV[4])
if redis.call('SISMEMBER', KEYS[3], KEYS[2]) == 0 then
  if redis.call('SCARD', KEYS[3]) >= max then
    for _, member in ipairs(redis.call('SMEMBERS', KEYS[3])) do
      if redis.call('EXISTS', member) == 0 then redis.call('SREM', KEYS[3], member) end
    end
    if redis.call('SCARD', KEYS[3]) >= max then return 0 end
  end
  redis.call('SADD', KEYS[3], KEYS[2])
end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ttl)
local markerTtl = redis.call('PTTL', KEYS[1])
if markerTtl < ttl then markerTtl = ttl end
redis.call('SET', KEYS[1], ARGV[2], 'PX', markerTtl)
redis.call('SADD', KEYS[4], KEYS[1], KEYS[2], KEYS[3])
for _, key in ipairs({ KEYS[3], KEYS[4] }) do
  redis.call('PEXPIRE', key, ttl, 'NX')
  redis.call('PEXPIRE', key, ttl, 'GT')
end
return 1
`;

/** Deletes KEYS[1] only while it still holds ARGV[1] (a lease given back by its holder). */
const RELEASE_LEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

const PUT_VARIANT = 'vantageedgeCachePutVariant';
type PutVariant = (...keysAndArgs: Array<string | number | Buffer>) => Promise<number>;

export interface RedisCacheStoreOptions {
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
  readonly #putVariant: PutVariant;
  readonly #logger: Logger | undefined;
  #subscriber: RedisClient | null = null;
  readonly #listeners: PurgeListener[] = [];

  constructor(redis: RedisClient, options: RedisCacheStoreOptions = {}) {
    this.#redis = redis;
    this.#prefix = options.keyPrefix ?? '';
    this.#logger = options.logger;
    this.#purger = createRedisCachePurger(redis, this.#prefix);
    if (!(PUT_VARIANT in redis)) redis.defineCommand(PUT_VARIANT, { numberOfKeys: 4, lua: PUT_VARIANT_LUA });
    const command = (redis as unknown as Record<string, PutVariant>)[PUT_VARIANT]!;
    this.#putVariant = command.bind(redis);
  }

  async get(key: string): Promise<CacheRecord | null> {
    const buffer = await this.#redis.getBuffer(this.#prefix + key);
    return buffer ? decodeRecord(buffer) : null;
  }

  async putResponse({ key, entry, ttlMs, pathIndexKey, tagIndexKeys }: ResponseWrite): Promise<void> {
    const index = this.#prefix + pathIndexKey;
    const write = this.#redis
      .multi()
      .set(this.#prefix + key, encodeRecord(entry), 'PX', ttlMs)
      .sadd(index, this.#prefix + key)
      .pexpire(index, ttlMs, 'NX')
      .pexpire(index, ttlMs, 'GT');
    this.#listUnderTags(write, key, tagIndexKeys ?? [], ttlMs);
    await write.exec();
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

  async putVariant(write: VariantWrite): Promise<'stored' | 'too_many_variants'> {
    const p = this.#prefix;
    const stored = await this.#putVariant(
      p + write.urlKey,
      p + write.key,
      `${p}${write.urlKey}:variants`,
      p + write.pathIndexKey,
      write.ttlMs,
      encodeRecord({ kind: 'vary', varyOn: write.entry.varyOn }),
      encodeRecord(write.entry),
      write.maxVariants,
    );
    if (stored !== 1) return 'too_many_variants';
    if (write.tagIndexKeys !== undefined && write.tagIndexKeys.length > 0) {
      const tagWrite = this.#redis.multi();
      this.#listUnderTags(tagWrite, write.key, write.tagIndexKeys, write.ttlMs);
      await tagWrite.exec();
    }
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
    // that is not subscribed would keep serving purged responses from its L1), then resync.
    const channel = purgeChannel(this.#prefix);
    const trySubscribe = (attempt: number) => {
      if (this.#subscriber !== subscriber) return;
      subscriber.subscribe(channel).then(
        () => {
          if (attempt > 1) for (const each of this.#listeners) each.onResync();
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
