import type { RedisClient } from '../redis/client.js';
import {
  CONSUME_QUOTA_SCRIPT,
  counterExpiry,
  parseQuotaReply,
  type QuotaDecision,
  type QuotaWindow,
} from './quota-windows.js';

/** Checks and counts a request against its quota windows, atomically over every gateway replica. */
export interface QuotaStore {
  consume(windows: readonly QuotaWindow[]): Promise<QuotaDecision>;
  /** The current counts of the windows' counters (0 for a counter not there). */
  read(windows: readonly QuotaWindow[]): Promise<number[]>;
}

export class RedisQuotaStore implements QuotaStore {
  private readonly redis: RedisClient;

  constructor(redis: RedisClient) {
    this.redis = redis;
    if (!('consumeQuota' in redis)) {
      redis.defineCommand('consumeQuota', { lua: CONSUME_QUOTA_SCRIPT });
    }
  }

  async consume(windows: readonly QuotaWindow[]): Promise<QuotaDecision> {
    const run = (
      this.redis as unknown as Record<string, (...args: Array<string | number>) => Promise<unknown>>
    )['consumeQuota'] as (...args: Array<string | number>) => Promise<unknown>;
    const reply = await run.call(
      this.redis,
      windows.length,
      ...windows.map((window) => window.key),
      ...windows.map((window) => window.limit),
      ...windows.map(counterExpiry),
    );
    return parseQuotaReply(reply);
  }

  async read(windows: readonly QuotaWindow[]): Promise<number[]> {
    if (windows.length === 0) return [];
    const values = await Promise.all(windows.map((window) => this.redis.get(window.key)));
    return values.map((value) => Number(value ?? 0));
  }
}

/** One process (make dev without Redis): the same rules on a Map. */
export class InMemoryQuotaStore implements QuotaStore {
  private readonly counters = new Map<string, { used: number; expiresAt: number }>();

  async consume(windows: readonly QuotaWindow[]): Promise<QuotaDecision> {
    const now = Date.now();
    const used = windows.map((window) => this.current(window.key, now));
    const full = windows.findIndex((window, index) => (used[index] ?? 0) >= window.limit);
    if (full >= 0) return { allowed: false, index: full, used: used[full] ?? 0 };
    return {
      allowed: true,
      used: windows.map((window, index) => {
        const next = (used[index] ?? 0) + 1;
        this.counters.set(window.key, { used: next, expiresAt: counterExpiry(window) });
        return next;
      }),
    };
  }

  async read(windows: readonly QuotaWindow[]): Promise<number[]> {
    const now = Date.now();
    return windows.map((window) => this.current(window.key, now));
  }

  private current(key: string, now: number): number {
    const counter = this.counters.get(key);
    if (!counter || counter.expiresAt <= now) return 0;
    return counter.used;
  }
}
