import type { RedisClient } from '../redis/client.js';
import type { UsageBatchStore, UsageCounts } from './usage-cells.js';

/**
 * Usage batches in Redis: one hash per batch (`<prefix>u:{usage}:batch:<id>`, cell → requests) and a
 * set of the pending batch ids (`<prefix>u:{usage}:batches`), written together in one MULTI. The
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

  async write(batchId: string, counts: UsageCounts): Promise<void> {
    if (counts.size === 0) return;
    const fields: Array<string | number> = [];
    for (const [cell, requests] of counts) fields.push(cell, requests);
    const result = await this.redis
      .multi()
      .hset(this.batchKey(batchId), ...fields)
      .expire(this.batchKey(batchId), USAGE_BATCH_TTL_SECONDS)
      .sadd(`${this.prefix}batches`, batchId)
      .exec();
    const failed = result?.find(([error]) => error !== null);
    if (!result || failed) throw failed?.[0] ?? new Error('usage batch not written');
  }

  async list(): Promise<string[]> {
    return this.redis.smembers(`${this.prefix}batches`);
  }

  async read(batchId: string): Promise<UsageCounts> {
    const hash = await this.redis.hgetall(this.batchKey(batchId));
    return new Map(Object.entries(hash).map(([cell, requests]) => [cell, Number(requests)]));
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

  async readMovedAside(batchId: string): Promise<UsageCounts> {
    const hash = await this.redis.hgetall(this.deadKey(batchId));
    return new Map(Object.entries(hash).map(([cell, requests]) => [cell, Number(requests)]));
  }
}
