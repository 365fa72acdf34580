import type { RedisClient } from '../redis/client.js';
import { redisTimeMs } from '../redis/redis-time.js';
import type { UsageBatchStore, UsageCounts } from './usage-cells.js';

/**
 * Usage batches in Redis: one hash per batch (`<prefix>u:{usage}:batch:<id>`, cell → requests) and a
 * set of the pending batch ids (`<prefix>u:{usage}:batches`), the id once the whole hash is written. The
 * `{usage}` hash tag keeps both on one Redis Cluster slot. A batch the flusher never collects expires
 * a week after its last write (the flusher remembers applied batch ids longer than that).
 *
 * A batch the flusher moves aside (moveAside: it kept failing to add it) is renamed to
 * `<prefix>u:{usage}:dead:<id>` and its id moved to the set `<prefix>u:{usage}:dead`, both kept a week
 * from then (USAGE_BATCH_TTL_SECONDS). To add it again once the cause is fixed — it was never applied:
 * `RENAME <prefix>u:{usage}:dead:<id> <prefix>u:{usage}:batch:<id>` and
 * `SMOVE <prefix>u:{usage}:dead <prefix>u:{usage}:batches <id>` (within 13 days of the batch's making).
 */
export const USAGE_BATCH_TTL_SECONDS = 7 * 86_400;

/**
 * Cells one command writes or reads: a batch may hold GATEWAY_USAGE_MAX_CELLS (100,000) of them, and one
 * HSET or HGETALL of them all stalled the single-threaded Redis every tenant's rate limits and cache share.
 */
export const USAGE_BATCH_FIELDS_PER_COMMAND = 500;

export class RedisUsageBatchStore implements UsageBatchStore {
  private readonly redis: RedisClient;
  private readonly prefix: string;

  constructor(redis: RedisClient, keyPrefix: string) {
    this.redis = redis;
    this.prefix = `${keyPrefix}u:{usage}:`;
  }

  private batchKey(batchId: string): string {
    return `${this.prefix}batch:${batchId}`;
  }

  /**
   * The hash in chunks (each with the TTL, so a writer dying part-way leaves nothing for ever), then the id
   * in the pending set: the flusher never reads a batch still being written. A retried write sets the same
   * fields to the same counts.
   */
  async write(batchId: string, counts: UsageCounts): Promise<void> {
    if (counts.size === 0) return;
    const key = this.batchKey(batchId);
    let fields: Array<string | number> = [];
    for (const [cell, requests] of counts) {
      fields.push(cell, requests);
      if (fields.length === 2 * USAGE_BATCH_FIELDS_PER_COMMAND) {
        await this.writeFields(key, fields);
        fields = [];
      }
    }
    if (fields.length > 0) await this.writeFields(key, fields);
    await this.redis.sadd(`${this.prefix}batches`, batchId);
  }

  private async writeFields(key: string, fields: Array<string | number>): Promise<void> {
    const result = await this.redis
      .multi()
      .hset(key, ...fields)
      .expire(key, USAGE_BATCH_TTL_SECONDS)
      .exec();
    const failed = result?.find(([error]) => error !== null);
    if (!result || failed) throw failed?.[0] ?? new Error('usage batch not written');
  }

  /** Redis's TIME, in ms: the clock the gateways name their batches by. */
  time(): Promise<number> {
    return redisTimeMs(this.redis);
  }

  async list(): Promise<string[]> {
    return this.redis.smembers(`${this.prefix}batches`);
  }

  read(batchId: string): Promise<UsageCounts> {
    return this.readHash(this.batchKey(batchId));
  }

  /** HSCAN, USAGE_BATCH_FIELDS_PER_COMMAND fields a command: nothing writes a batch once it is listed. */
  private async readHash(key: string): Promise<UsageCounts> {
    const counts: UsageCounts = new Map();
    let cursor = '0';
    do {
      const [next, fieldsAndValues] = await this.redis.hscan(
        key,
        cursor,
        'COUNT',
        USAGE_BATCH_FIELDS_PER_COMMAND,
      );
      for (let i = 0; i < fieldsAndValues.length; i += 2)
        counts.set(fieldsAndValues[i]!, Number(fieldsAndValues[i + 1]));
      cursor = next;
    } while (cursor !== '0');
    return counts;
  }

  async remove(batchId: string): Promise<void> {
    await this.redis.multi().del(this.batchKey(batchId)).srem(`${this.prefix}batches`, batchId).exec();
  }

  private deadKey(batchId: string): string {
    return `${this.prefix}dead:${batchId}`;
  }

  async moveAside(batchId: string): Promise<void> {
    // RENAME fails (and nothing else) when the hash is gone (expired): the id still leaves the pending set.
    const result = await this.redis
      .multi()
      .rename(this.batchKey(batchId), this.deadKey(batchId))
      .expire(this.deadKey(batchId), USAGE_BATCH_TTL_SECONDS)
      .srem(`${this.prefix}batches`, batchId)
      .sadd(`${this.prefix}dead`, batchId)
      .expire(`${this.prefix}dead`, USAGE_BATCH_TTL_SECONDS)
      .exec();
    if (!result) throw new Error('usage batch not moved aside');
  }

  /** Ids of the batches moved aside (their hashes may have expired since). */
  async listMovedAside(): Promise<string[]> {
    return this.redis.smembers(`${this.prefix}dead`);
  }

  readMovedAside(batchId: string): Promise<UsageCounts> {
    return this.readHash(this.deadKey(batchId));
  }
}
