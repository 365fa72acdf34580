import { type TenantNodeOf, tenantNodeLocator } from '@vantageedge/shared/redis/tenant-node';
import type { Cluster, Redis } from 'ioredis';
import { hearLateReplies, type SendHearingLateReply } from './late-replies.js';
import type { LateOutcomes, LimitOutcome, LimitRequest, LimitStore } from './limit-store.js';
import { CONSUME_LIMITS_LUA, REFUND_LIMITS_LUA } from './lua.js';

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
  readonly #hearingLateReply: SendHearingLateReply | undefined;
  readonly #tenantMaxKeys: number;
  readonly nodeOf: TenantNodeOf;

  constructor(redis: Redis | Cluster, options: RedisLimitStoreOptions = {}) {
    this.#tenantMaxKeys = options.tenantMaxKeys ?? DEFAULT_TENANT_MAX_LIMIT_KEYS;
    this.nodeOf = tenantNodeLocator(redis);
    if (!(COMMAND in redis)) redis.defineCommand(COMMAND, { lua: CONSUME_LIMITS_LUA });
    if (!(REFUND_COMMAND in redis)) redis.defineCommand(REFUND_COMMAND, { lua: REFUND_LIMITS_LUA });
    const commands = redis as unknown as Record<string, ConsumeLimits & RefundLimits>;
    this.#consume = commands[COMMAND]!.bind(redis);
    this.#refund = commands[REFUND_COMMAND]!.bind(redis);
    this.#hearingLateReply = hearLateReplies(redis, COMMAND);
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
    const send = () => this.#consume(requests.length * 2 + 1, ...args);
    const sent =
      onLate === undefined || this.#hearingLateReply === undefined
        ? send()
        : this.#hearingLateReply((reply) => this.#giveBack(requests, reply, onLate), send);
    return outcomesOf(requests, await sent);
  }

  /** A late answer: gives back what `onLate` says the caller did not use of its charges. */
  #giveBack(requests: readonly LimitRequest[], reply: unknown, onLate: LateOutcomes): void {
    if (!Array.isArray(reply) || reply.length !== requests.length * REPLY_FIELDS) return;
    const outcomes = outcomesOf(requests, reply as number[]);
    const units = onLate(outcomes);
    const keys: string[] = [];
    const args: Array<string | number> = [];
    requests.forEach(({ key, spec, callerKey }, i) => {
      const back = Math.min(units[i] ?? 0, outcomes[i]!.granted);
      if (!(back > 0)) return;
      keys.push(outcomes[i]!.overflowed && callerKey ? callerKey.overflowKey : key);
      const window = (reply as number[])[i * REPLY_FIELDS + 5]!;
      if (spec.algorithm === 'token_bucket') args.push('tb', spec.ratePerMs, spec.capacity, back, 0);
      else args.push('sw', spec.windowMs, spec.capacity, back, window);
    });
    // Lost with its connection at worst: the charge then stays, as it did before being heard of.
    if (keys.length > 0) this.#refund(keys.length, ...keys, ...args).catch(() => undefined);
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
