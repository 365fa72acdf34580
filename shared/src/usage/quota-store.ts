import { z } from 'zod';
import type { RedisClient } from '../redis/client.js';
import { redisTimeMs } from '../redis/redis-time.js';
import { type TenantNodeOf, tenantNodeLocator } from '../redis/tenant-node.js';
import {
  CONSUME_QUOTA_SCRIPT,
  counterExpiry,
  parseQuotaReply,
  type QuotaDecision,
  type QuotaWindow,
  refusingWindowIndex,
  windowsEnd,
  windowsStart,
} from './quota-windows.js';

/** Checks and counts a request against its quota windows, atomically over every gateway replica. */
export interface QuotaStore {
  /**
   * Counts in the windows when the store's clock is in their periods; else nothing (`allowed: null`),
   * and the caller asks again with the windows of the period of `storeNow`.
   */
  consume(windows: readonly QuotaWindow[]): Promise<QuotaDecision>;
  /** The store's clock (ms epoch), whose periods the counters are of; absent: the reader's own. */
  time?(): Promise<number>;
  /** The current counts of the windows' counters (0 for a counter not there). */
  read(windows: readonly QuotaWindow[]): Promise<number[]>;
  /** The node holding a tenant's counters (a Redis Cluster's master), for a circuit per node. */
  readonly nodeOf?: TenantNodeOf | undefined;
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
  readonly nodeOf: TenantNodeOf;

  constructor(redis: RedisClient, options: RedisQuotaStoreOptions = {}) {
    this.redis = redis;
    this.nodeOf = tenantNodeLocator(redis);
    this.tenantMaxKeys = options.tenantMaxKeys ?? DEFAULT_QUOTA_TENANT_MAX_KEYS;
    if (!('consumeQuota' in redis)) {
      redis.defineCommand('consumeQuota', { lua: CONSUME_QUOTA_SCRIPT });
    }
  }

  async consume(windows: readonly QuotaWindow[]): Promise<QuotaDecision> {
    if (windows.length === 0) return { allowed: true, used: [], storeNow: Date.now() };
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
      windowsStart(windows),
      windowsEnd(windows),
    );
    return parseQuotaReply(reply);
  }

  time(): Promise<number> {
    return redisTimeMs(this.redis);
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

export interface InMemoryQuotaStoreOptions extends RedisQuotaStoreOptions {
  /** Milliseconds since the epoch; injectable for tests of expiry. */
  now?: () => number;
}

/**
 * One process (make dev without Redis): the same rules as CONSUME_QUOTA_SCRIPT on Maps, the same bound
 * (a ledger per tenant and period, then the overflow counter) and the same expiry (counterExpiry), so a
 * tenant churning through keys grows it no more than it grows the shared Redis.
 */
export class InMemoryQuotaStore implements QuotaStore {
  private readonly counters = new Map<string, number>();
  private readonly ledgers = new Map<string, Set<string>>();
  /** Counters and ledgers by when they expire: they expire with their period, so there are few times. */
  private readonly expiries = new Map<number, string[]>();
  private readonly tenantMaxKeys: number;
  private readonly now: () => number;

  constructor(options: InMemoryQuotaStoreOptions = {}) {
    this.tenantMaxKeys = options.tenantMaxKeys ?? DEFAULT_QUOTA_TENANT_MAX_KEYS;
    this.now = options.now ?? Date.now;
  }

  async consume(windows: readonly QuotaWindow[]): Promise<QuotaDecision> {
    const now = this.now();
    this.dropExpired(now);
    if (now < windowsStart(windows) || now >= windowsEnd(windows)) return { allowed: null, storeNow: now };
    const counters: string[] = [];
    const joins: boolean[] = [];
    const counts: number[] = [];
    for (const window of windows) {
      const { ledger } = window;
      let counter = window.key;
      let join = false;
      if (ledger && !this.counters.has(counter) && !this.ledgers.get(ledger.key)?.has(ledger.member)) {
        if ((this.ledgers.get(ledger.key)?.size ?? 0) < this.tenantMaxKeys) join = true;
        else counter = ledger.overflowKey;
      }
      counts.push(this.counters.get(counter) ?? 0);
      counters.push(counter);
      joins.push(join);
    }
    const full = refusingWindowIndex(windows, counts);
    if (full >= 0) return { allowed: false, index: full, used: counts[full]!, storeNow: now };
    const used = windows.map((window, index) => {
      const expiresAt = counterExpiry(window);
      const counter = counters[index]!;
      const next = (this.counters.get(counter) ?? 0) + 1;
      if (expiresAt > now) {
        if (next === 1) this.expireAt(counter, expiresAt);
        this.counters.set(counter, next);
      }
      const { ledger } = window;
      if (joins[index] && ledger && expiresAt > now) {
        let members = this.ledgers.get(ledger.key);
        if (!members) {
          members = new Set();
          this.ledgers.set(ledger.key, members);
          this.expireAt(ledger.key, expiresAt);
        }
        members.add(ledger.member);
      }
      return next;
    });
    return { allowed: true, used, storeNow: now };
  }

  async time(): Promise<number> {
    return this.now();
  }

  /** A key's own counter, or the overflow counter when the key had no room in the ledger. */
  async read(windows: readonly QuotaWindow[]): Promise<number[]> {
    this.dropExpired(this.now());
    return windows.map(({ key, ledger }) => {
      const own = this.counters.get(key);
      if (own !== undefined || ledger === undefined) return own ?? 0;
      const members = this.ledgers.get(ledger.key);
      if (members?.has(ledger.member) || (members?.size ?? 0) < this.tenantMaxKeys) return 0;
      return this.counters.get(ledger.overflowKey) ?? 0;
    });
  }

  /** How many counters and ledgers the tenant holds (its footprint, as its `q:{<tenant>}:` keys in Redis). */
  heldKeys(tenantId: string): number {
    this.dropExpired(this.now());
    const tenantTag = `q:{${tenantId}}:`;
    let held = 0;
    for (const key of [...this.counters.keys(), ...this.ledgers.keys()]) if (key.includes(tenantTag)) held++;
    return held;
  }

  private expireAt(key: string, expiresAt: number): void {
    const keys = this.expiries.get(expiresAt);
    if (keys) keys.push(key);
    else this.expiries.set(expiresAt, [key]);
  }

  private dropExpired(now: number): void {
    for (const [expiresAt, keys] of this.expiries) {
      if (expiresAt > now) continue;
      for (const key of keys) {
        this.counters.delete(key);
        this.ledgers.delete(key);
      }
      this.expiries.delete(expiresAt);
    }
  }
}
