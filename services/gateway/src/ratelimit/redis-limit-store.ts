import { type TenantNodeOf, tenantNodeLocator } from '@vantageedge/shared/redis/tenant-node';
import type { Cluster, Redis } from 'ioredis';
import type { LimitOutcome, LimitRequest, LimitStore } from './limit-store.js';
import { CONSUME_LIMITS_LUA } from './lua.js';

type ConsumeLimits = (numberOfKeys: number, ...keysAndArgs: Array<string | number>) => Promise<number[]>;

const COMMAND = 'vantageedgeConsumeLimits';

/** The most caller keys (per user, API key or address) one tenant's limits keep in Redis by default. */
export const DEFAULT_TENANT_MAX_LIMIT_KEYS = 100_000;

export interface RedisLimitStoreOptions {
  /** The most caller keys one tenant may have; a caller past it shares the limit's overflow key. */
  tenantMaxKeys?: number | undefined;
}

/**
 * Limits shared by every gateway replica: one EVALSHA per call, whatever the number of limits
 * (ioredis defineCommand loads the script on first use and after a server restart).
 */
export class RedisLimitStore implements LimitStore {
  readonly #consume: ConsumeLimits;
  readonly #tenantMaxKeys: number;
  readonly nodeOf: TenantNodeOf;

  constructor(redis: Redis | Cluster, options: RedisLimitStoreOptions = {}) {
    this.#tenantMaxKeys = options.tenantMaxKeys ?? DEFAULT_TENANT_MAX_LIMIT_KEYS;
    this.nodeOf = tenantNodeLocator(redis);
    if (!(COMMAND in redis)) redis.defineCommand(COMMAND, { lua: CONSUME_LIMITS_LUA });
    const command = (redis as unknown as Record<string, ConsumeLimits>)[COMMAND]!;
    this.#consume = command.bind(redis);
  }

  async consume(requests: readonly LimitRequest[]): Promise<LimitOutcome[]> {
    const args: Array<string | number> = [];
    let ledgerKey = requests[0]?.key ?? '';
    for (const request of requests) args.push(request.key);
    for (const { key, callerKey } of requests) {
      args.push(callerKey ? callerKey.overflowKey : key);
      if (callerKey) ledgerKey = callerKey.ledgerKey;
    }
    args.push(ledgerKey);
    for (const { spec, cost, minCost, callerKey } of requests) {
      args.push(
        spec.algorithm === 'token_bucket' ? 'tb' : 'sw',
        spec.algorithm === 'token_bucket' ? spec.ratePerMs : spec.windowMs,
        spec.capacity,
        cost,
        minCost,
        spec.ttlMs,
        callerKey ? 1 : 0,
      );
    }
    args.push(this.#tenantMaxKeys);
    const reply = await this.#consume(requests.length * 2 + 1, ...args);
    const outcomes: LimitOutcome[] = [];
    for (let i = 0; i < requests.length; i++) {
      const outcome: LimitOutcome = {
        granted: reply[i * 5]!,
        remaining: reply[i * 5 + 1]!,
        resetMs: reply[i * 5 + 2]!,
        retryAfterMs: reply[i * 5 + 3]!,
      };
      if (reply[i * 5 + 4] === 1) outcome.overflowed = true;
      outcomes.push(outcome);
    }
    return outcomes;
  }
}
