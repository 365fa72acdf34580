import type { RedisClient } from '../redis/client.js';
import type { UsageBatchStore, UsageCounts } from './usage-cells.js';

/**
 * Usage batches in Redis: one hash per batch (`<prefix>u:{usage}:batch:<id>`, cell → requests) and a
 * set of the pending batch ids (`<prefix>u:{usage}:batches`), written together in one MULTI. The
 * `{usage}` hash tag keeps both on one Redis Cluster slot. A batch the flusher never collects expires
 * a week after its last write (the flusher remembers applied batch ids longer than that).
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
}
