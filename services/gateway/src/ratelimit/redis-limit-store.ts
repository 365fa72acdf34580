import type { Cluster, Redis } from 'ioredis';
import type { LimitOutcome, LimitRequest, LimitStore } from './limit-store.js';
import { CONSUME_LIMITS_LUA } from './lua.js';

type ConsumeLimits = (numberOfKeys: number, ...keysAndArgs: Array<string | number>) => Promise<number[]>;

const COMMAND = 'vantageedgeConsumeLimits';

/**
 * Limits shared by every gateway replica: one EVALSHA per call, whatever the number of limits
 * (ioredis defineCommand loads the script on first use and after a server restart).
 */
export class RedisLimitStore implements LimitStore {
  readonly #consume: ConsumeLimits;

  constructor(redis: Redis | Cluster) {
    if (!(COMMAND in redis)) redis.defineCommand(COMMAND, { lua: CONSUME_LIMITS_LUA });
    const command = (redis as unknown as Record<string, ConsumeLimits>)[COMMAND]!;
    this.#consume = command.bind(redis);
  }

  async consume(requests: readonly LimitRequest[]): Promise<LimitOutcome[]> {
    const args: Array<string | number> = [];
    for (const request of requests) args.push(request.key);
    for (const { spec, cost, minCost } of requests) {
      args.push(
        spec.algorithm === 'token_bucket' ? 'tb' : 'sw',
        spec.algorithm === 'token_bucket' ? spec.ratePerMs : spec.windowMs,
        spec.capacity,
        cost,
        minCost,
        spec.ttlMs,
      );
    }
    const reply = await this.#consume(requests.length, ...args);
    const outcomes: LimitOutcome[] = [];
    for (let i = 0; i < requests.length; i++) {
      outcomes.push({
        granted: reply[i * 4]!,
        remaining: reply[i * 4 + 1]!,
        resetMs: reply[i * 4 + 2]!,
        retryAfterMs: reply[i * 4 + 3]!,
      });
    }
    return outcomes;
  }
}
