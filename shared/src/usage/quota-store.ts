import { z } from 'zod';
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

/** API keys with counters of their own per tenant and period (see quota-windows.ts). */
export const DEFAULT_QUOTA_TENANT_MAX_KEYS = 10_000;

/** Read by the gateways and the control plane alike: a key's GET reads the counter they count it on. */
export const quotaStoreSettings = {
  /**
   * The most API keys of one tenant with quota counters of their own per period (day, month) in the
   * shared Redis; past it, a key counts on the period's shared overflow counter.
   */
  GATEWAY_QUOTA_TENANT_MAX_KEYS: z.coerce
    .number()
    .int()
    .min(1)
    .max(10_000_000)
    .default(DEFAULT_QUOTA_TENANT_MAX_KEYS),
};

export interface RedisQuotaStoreOptions {
  /** GATEWAY_QUOTA_TENANT_MAX_KEYS: the same value on every gateway and the control plane. */
  tenantMaxKeys?: number;
}

export class RedisQuotaStore implements QuotaStore {
  private readonly redis: RedisClient;
  private readonly tenantMaxKeys: number;

  constructor(redis: RedisClient, options: RedisQuotaStoreOptions = {}) {
    this.redis = redis;
    this.tenantMaxKeys = options.tenantMaxKeys ?? DEFAULT_QUOTA_TENANT_MAX_KEYS;
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
      windows.length * 3,
      ...windows.map((window) => window.key),
      ...windows.map((window) => window.ledger?.key ?? window.key),
      ...windows.map((window) => window.ledger?.overflowKey ?? window.key),
      ...windows.map((window) => window.limit),
      ...windows.map(counterExpiry),
      ...windows.map((window) => window.ledger?.member ?? ''),
      this.tenantMaxKeys,
    );
    return parseQuotaReply(reply);
  }

  /** A key's own counter, or the overflow counter when the key had no room in the ledger. */
  async read(windows: readonly QuotaWindow[]): Promise<number[]> {
    return Promise.all(windows.map((window) => this.readOne(window)));
  }

  private async readOne(window: QuotaWindow): Promise<number> {
    const own = await this.redis.get(window.key);
    const { ledger } = window;
    if (own !== null || ledger === undefined) return Number(own ?? 0);
    const [member, size] = await Promise.all([
      this.redis.sismember(ledger.key, ledger.member),
      this.redis.scard(ledger.key),
    ]);
    if (member === 1 || size < this.tenantMaxKeys) return 0;
    return Number((await this.redis.get(ledger.overflowKey)) ?? 0);
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
