import type { RedisClient } from '@vantageedge/shared/redis/client';
import type { Command } from 'ioredis';

/** Told a reply its command's caller no longer waited for (its promise had failed: command timeout). */
export type LateReplyHandler = (reply: unknown) => void;

/** Runs `send` (one call of the defined command), telling `onLate` of that call's late reply, if any. */
export type SendHearingLateReply = <T>(onLate: LateReplyHandler, send: () => Promise<T>) => Promise<T>;

const hearing = new WeakMap<RedisClient, Map<string, SendHearingLateReply>>();

/**
 * A command that timed out (`commandTimeout`) still runs when it reaches Redis, and its reply still
 * comes: ioredis drops it, its promise having failed. For a command whose effect must follow the
 * caller's decision (a charge the caller decided without), this hears that reply, so the caller can
 * undo what it did. No extra command: it watches the reply of the one sent.
 *
 * The command `name` must be defined on `client` (defineCommand). ioredis makes each call's command
 * with its script's Command class (private: read defensively), synchronously within the call, also
 * when auto-pipelined; that class is replaced by one telling the late reply to the handler given for
 * the call. Undefined when ioredis no longer has that class: late replies are then not heard.
 * A call made before a Cluster client knows its slots builds its command later: its late reply is not
 * heard either.
 */
export function hearLateReplies(client: RedisClient, name: string): SendHearingLateReply | undefined {
  const known = hearing.get(client)?.get(name);
  if (known) return known;
  const scripts: unknown = Reflect.get(client, 'scriptsSet');
  const script: unknown = typeof scripts === 'object' && scripts !== null ? Reflect.get(scripts, name) : null;
  if (typeof script !== 'object' || script === null) return undefined;
  const ScriptCommand: unknown = Reflect.get(script, 'Command');
  if (typeof ScriptCommand !== 'function') return undefined;

  let next: LateReplyHandler | undefined;
  const Base = ScriptCommand as new (...args: unknown[]) => Command;
  class HeardCommand extends Base {
    constructor(...args: unknown[]) {
      super(...args);
      const onLate = next;
      next = undefined;
      if (onLate === undefined) return;
      const resolve = this.resolve;
      this.resolve = (reply: unknown) => {
        // Settled before its reply: it failed (timed out), and its caller went on without it.
        if (this.isSettled) {
          try {
            onLate(this.transformReply(reply as Buffer));
          } catch {
            // The handler's failure must not reach ioredis's reply parser: that reply is lost to it only.
          }
        }
        return resolve(reply);
      };
    }
  }
  Reflect.set(script, 'Command', HeardCommand);

  const send: SendHearingLateReply = (onLate, call) => {
    next = onLate;
    try {
      return call();
    } finally {
      next = undefined;
    }
  };
  const byName = hearing.get(client) ?? new Map<string, SendHearingLateReply>();
  byName.set(name, send);
  hearing.set(client, byName);
  return send;
}
