import { createHash } from 'node:crypto';
import type { RedisClient } from '@vantageedge/shared/redis/client';

/**
 * Token buckets for the admin API's rate limits: take tokens (one per request or command, or a
 * command's event bytes) from a named bucket. In Redis when the control plane has one (every replica
 * counts together; time is the server's), else — and for each call Redis fails — in this process's
 * memory. A refused take is not recorded, so a caller over its limit recovers as soon as it slows down.
 * A take of more than the whole burst is let through when the bucket is full and leaves it in debt
 * (so one large command is possible, and repaid before the next).
 */

export interface BucketRate {
  /** Tokens refilled per minute (continuously). */
  perMinute: number;
  /** Bucket size: how many may be taken at once after a quiet period. */
  burst: number;
}

export interface Take {
  allowed: boolean;
  /** When refused: milliseconds until the tokens asked for are there again; else 0. */
  retryAfterMs: number;
}

export interface TokenBuckets {
  /** Takes `cost` tokens (default 1). */
  take(key: string, rate: BucketRate, cost?: number): Promise<Take>;
}

const perMs = (rate: BucketRate) => rate.perMinute / 60_000;
/** Milliseconds a bucket holding `tokens` takes to be full again: after that, it is as good as absent. */
const refillMs = (rate: BucketRate, tokens = 0) => Math.ceil((rate.burst - tokens) / perMs(rate));

/** Keys are authenticated ids (Clerk user ids, tenant uuids); an unusually long one is stored hashed. */
function boundedKey(key: string): string {
  return key.length <= 160 ? key : `sha256:${createHash('sha256').update(key).digest('base64url')}`;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
  /** When it is full again (later than a refill after a take left it in debt). */
  fullAt: number;
}

/**
 * Buckets in a Map in least-recently-used order, at most `maxKeys` of them: beyond it the least recently
 * used is dropped (a dropped bucket starts full again, which only ever admits more), and buckets idle
 * long enough to be full again are swept from the old end as new ones arrive.
 */
export class MemoryTokenBuckets implements TokenBuckets {
  readonly #buckets = new Map<string, Bucket>();
  readonly #maxKeys: number;
  readonly #now: () => number;

  constructor({ maxKeys = 100_000, now = Date.now }: { maxKeys?: number; now?: () => number } = {}) {
    this.#maxKeys = maxKeys;
    this.#now = now;
  }

  get size(): number {
    return this.#buckets.size;
  }

  take(key: string, rate: BucketRate, cost = 1): Promise<Take> {
    return Promise.resolve(this.takeNow(key, rate, cost));
  }

  takeNow(rawKey: string, rate: BucketRate, cost = 1): Take {
    const key = boundedKey(rawKey);
    const now = this.#now();
    const existing = this.#buckets.get(key);
    const elapsed = existing ? Math.max(0, now - existing.updatedAt) : 0;
    const tokens = existing ? Math.min(rate.burst, existing.tokens + elapsed * perMs(rate)) : rate.burst;
    this.#buckets.delete(key);
    this.#sweep(now);
    const needed = Math.min(cost, rate.burst);
    if (tokens < needed) {
      this.#buckets.set(key, { tokens, updatedAt: now, fullAt: now + refillMs(rate, tokens) });
      return { allowed: false, retryAfterMs: Math.ceil((needed - tokens) / perMs(rate)) };
    }
    const left = tokens - cost;
    this.#buckets.set(key, { tokens: left, updatedAt: now, fullAt: now + refillMs(rate, left) });
    while (this.#buckets.size > this.#maxKeys) {
      const oldest = this.#buckets.keys().next().value;
      if (oldest === undefined) break;
      this.#buckets.delete(oldest);
    }
    return { allowed: true, retryAfterMs: 0 };
  }

  /** Drops up to two buckets at the old end that have been idle long enough to be full. */
  #sweep(now: number): void {
    for (let i = 0; i < 2; i++) {
      const oldest = this.#buckets.entries().next().value;
      if (oldest === undefined || now < oldest[1].fullAt) return;
      this.#buckets.delete(oldest[0]);
    }
  }
}

/**
 * KEYS[1]: the bucket (a hash: t = tokens, ts = ms of the last take). ARGV: burst, tokens per ms, cost.
 * Returns {1, 0} when the tokens were taken, {0, ms until they are there} when not. The key expires
 * once the bucket is full again (a second after).
 */
const TAKE_TOKEN_LUA = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local needed = math.min(cost, burst)
local h = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(h[1])
local ts = tonumber(h[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
local elapsed = now - ts
if elapsed < 0 then elapsed = 0 end
tokens = math.min(burst, tokens + elapsed * rate)
if tokens < needed then
  return {0, math.ceil((needed - tokens) / rate)}
end
tokens = tokens - cost
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 1000)
return {1, 0}
`;

type TakeCommand = (key: string, burst: number, rate: number, cost: number) => Promise<[number, number]>;
const COMMAND = 'vantageedgeAdminTakeToken';

/**
 * Buckets every control-plane replica shares, one key each under `keyPrefix` (expiring once full
 * again). A call Redis fails (down, timed out) is decided by `fallback`, this replica's memory, so the
 * admin API never waits on Redis and stays limited — per replica — while it is away.
 */
export class RedisTokenBuckets implements TokenBuckets {
  readonly #take: TakeCommand;

  constructor(
    redis: RedisClient,
    private readonly keyPrefix: string,
    private readonly fallback: MemoryTokenBuckets,
    private readonly onStoreError: (error: unknown) => void = () => {},
  ) {
    if (!(COMMAND in redis)) redis.defineCommand(COMMAND, { numberOfKeys: 1, lua: TAKE_TOKEN_LUA });
    const command = (redis as unknown as Record<string, TakeCommand>)[COMMAND] as TakeCommand;
    this.#take = command.bind(redis);
  }

  async take(key: string, rate: BucketRate, cost = 1): Promise<Take> {
    try {
      const [allowed, retryAfterMs] = await this.#take(
        `${this.keyPrefix}${boundedKey(key)}`,
        rate.burst,
        perMs(rate),
        cost,
      );
      return { allowed: allowed === 1, retryAfterMs };
    } catch (error) {
      this.onStoreError(error);
      return this.fallback.takeNow(key, rate, cost);
    }
  }
}
