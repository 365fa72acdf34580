import { type TenantNodeOf, tenantNodeLocator } from '@vantageedge/shared/redis/tenant-node';
import type { Cluster, Redis } from 'ioredis';
import { hearLateReplies, type LateReplies, type LateReplyWatch } from './late-replies.js';
import type { LateOutcomes, LimitOutcome, LimitRequest, LimitStore } from './limit-store.js';
import { CONSUME_LIMITS_LUA, consumeLimitsLua, LEDGER_EPOCH_MS, REFUND_LIMITS_LUA } from './lua.js';

type ConsumeLimits = (numberOfKeys: number, ...keysAndArgs: Array<string | number>) => Promise<number[]>;
type RefundLimits = (numberOfKeys: number, ...keysAndArgs: Array<string | number>) => Promise<unknown>;

const COMMAND = 'vantageedgeConsumeLimits';
const REFUND_COMMAND = 'vantageedgeRefundLimits';
/** Integers per limit in CONSUME_LIMITS_LUA's reply. */
const REPLY_FIELDS = 6;

/** The most caller keys (per user, API key or address) one tenant's limits keep in Redis by default. */
export const DEFAULT_TENANT_MAX_LIMIT_KEYS = 100_000;

export interface RedisLimitStoreOptions {
  /** The most caller keys one tenant may have; a caller past it shares the limit's overflow key. */
  tenantMaxKeys?: number | undefined;
  /**
   * The length of the ledger's epochs (default LEDGER_EPOCH_MS): how late an expired caller key stops
   * counting. Every store on one Redis must use the same; shorter ones are for tests.
   */
  ledgerEpochMs?: number | undefined;
}

/**
 * Limits shared by every gateway replica: one EVALSHA per call, whatever the number of limits
 * (ioredis defineCommand loads the script on first use and after a server restart).
 *
 * A call whose answer comes after the command timeout was still run by Redis: its charges are
 * applied although the caller decided without them. When such an answer arrives, the caller's
 * `onLate` says what to give back and one more script (REFUND_LIMITS_LUA) does, on that late path only.
 */
export class RedisLimitStore implements LimitStore {
  readonly #consume: ConsumeLimits;
  readonly #refund: RefundLimits;
  readonly #lateReplies: LateReplies | undefined;
  readonly #tenantMaxKeys: number;
  readonly nodeOf: TenantNodeOf;

  constructor(redis: Redis | Cluster, options: RedisLimitStoreOptions = {}) {
    this.#tenantMaxKeys = options.tenantMaxKeys ?? DEFAULT_TENANT_MAX_LIMIT_KEYS;
    this.nodeOf = tenantNodeLocator(redis);
    const epochMs = options.ledgerEpochMs ?? LEDGER_EPOCH_MS;
    const command = epochMs === LEDGER_EPOCH_MS ? COMMAND : `${COMMAND}Epoch${epochMs}`;
    if (!(command in redis)) {
      redis.defineCommand(command, {
        lua: epochMs === LEDGER_EPOCH_MS ? CONSUME_LIMITS_LUA : consumeLimitsLua(epochMs),
      });
    }
    if (!(REFUND_COMMAND in redis)) redis.defineCommand(REFUND_COMMAND, { lua: REFUND_LIMITS_LUA });
    const commands = redis as unknown as Record<string, ConsumeLimits & RefundLimits>;
    this.#consume = commands[command]!.bind(redis);
    this.#refund = commands[REFUND_COMMAND]!.bind(redis);
    this.#lateReplies = hearLateReplies(redis, command);
  }

  async consume(requests: readonly LimitRequest[], onLate?: LateOutcomes): Promise<LimitOutcome[]> {
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
    const late = this.#lateReplies;
    let watch: LateCharge | undefined;
    let sent: Promise<number[]>;
    if (onLate === undefined || late === undefined) sent = this.#consume(requests.length * 2 + 1, ...args);
    else {
      watch = new LateCharge(requests, onLate, this.#refund);
      late.watchNext(watch);
      try {
        sent = this.#consume(requests.length * 2 + 1, ...args);
      } finally {
        late.watchNext(undefined);
      }
    }
    let reply: number[];
    try {
      reply = await sent;
    } catch (error) {
      if (watch !== undefined) watch.gaveUp = true;
      throw error;
    }
    return outcomesOf(requests, reply);
  }
}

/** A call's charges, given back for what `onLate` says the caller did not use if its answer comes late. */
class LateCharge implements LateReplyWatch {
  gaveUp = false;

  constructor(
    private readonly requests: readonly LimitRequest[],
    private readonly onLate: LateOutcomes,
    private readonly refund: RefundLimits,
  ) {}

  heard(reply: unknown): void {
    const { requests } = this;
    if (!Array.isArray(reply) || reply.length !== requests.length * REPLY_FIELDS) return;
    const outcomes = outcomesOf(requests, reply as number[]);
    const units = this.onLate(outcomes);
    const keys: string[] = [];
    const args: Array<string | number> = [];
    requests.forEach(({ key, spec, callerKey }, i) => {
      const back = Math.min(units[i] ?? 0, outcomes[i]!.granted);
      if (!(back > 0)) return;
      keys.push(outcomes[i]!.overflowed && callerKey ? callerKey.overflowKey : key);
      const anchor = (reply as number[])[i * REPLY_FIELDS + 5]!;
      if (spec.algorithm === 'token_bucket') args.push('tb', spec.ratePerMs, spec.capacity, back, anchor);
      else args.push('sw', spec.windowMs, spec.capacity, back, anchor);
    });
    // Lost with its connection at worst: the charge then stays, as it did before being heard of.
    if (keys.length > 0) this.refund(keys.length, ...keys, ...args).catch(() => undefined);
  }
}

function outcomesOf(requests: readonly LimitRequest[], reply: readonly number[]): LimitOutcome[] {
  const outcomes: LimitOutcome[] = [];
  for (let i = 0; i < requests.length; i++) {
    const at = i * REPLY_FIELDS;
    const outcome: LimitOutcome = {
      granted: reply[at]!,
      remaining: reply[at + 1]!,
      resetMs: reply[at + 2]!,
      retryAfterMs: reply[at + 3]!,
    };
    if (reply[at + 4] === 1) outcome.overflowed = true;
    outcomes.push(outcome);
  }
  return outcomes;
}
