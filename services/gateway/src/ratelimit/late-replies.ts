import type { RedisClient } from '@vantageedge/shared/redis/client';
import type { Command } from 'ioredis';

/** One call of a defined command whose reply may come after its caller stopped waiting for it. */
export interface LateReplyWatch {
  /** Set by the caller once the call failed (command timeout): a reply coming after that is late. */
  gaveUp: boolean;
  /** Told the call's late reply (as the call would have resolved with it), at most once. */
  heard(reply: unknown): void;
}

export interface LateReplies {
  /**
   * `watch` watches the next call of the command, made synchronously right after (one call); pass
   * undefined right after that call, so that no other call is watched by it.
   */
  watchNext(watch: LateReplyWatch | undefined): void;
}

const byClient = new WeakMap<RedisClient, Map<string, LateReplies>>();
const WATCH = Symbol('lateReplyWatch');

/** A call's options (one object per call, ioredis'), carrying its watch to a command sent again. */
interface WatchedOptions {
  [WATCH]?: LateReplyWatch | undefined;
}

/**
 * A command that timed out (`commandTimeout`) still runs when it reaches Redis, and its reply still
 * comes: ioredis drops it, its promise having failed. For a command whose effect must follow the
 * caller's decision (a charge the caller decided without), this hears that reply, so the caller can
 * undo what it did. No extra command: it watches the reply of the one sent.
 *
 * The command `name` must be defined on `client` (defineCommand). ioredis makes each call's command
 * with its script's Command class (private: read defensively), synchronously within the call, also
 * when auto-pipelined; that class is replaced by one that keeps the call's watch and tells it the reply
 * when its caller had given up. The reply is caught where ioredis transforms it (a public method), not
 * by replacing the command's resolve, which ioredis renews when it re-initializes a command (a Cluster
 * pipeline whose commands all failed alike does so) and which would cost a function per command.
 * Undefined when ioredis no longer has that class: late replies are then not heard.
 *
 * A call refused with NOSCRIPT (a script cache flushed on the server) is sent again by ioredis as a new
 * command, made later with the call's options object: the watch rides on that object, so the call sent
 * again is watched too and its late answer heard (its caller waits for it: the answer is the call's).
 */
export function hearLateReplies(client: RedisClient, name: string): LateReplies | undefined {
  const known = byClient.get(client)?.get(name);
  if (known) return known;
  const scripts: unknown = Reflect.get(client, 'scriptsSet');
  const script: unknown = typeof scripts === 'object' && scripts !== null ? Reflect.get(scripts, name) : null;
  if (typeof script !== 'object' || script === null) return undefined;
  const ScriptCommand: unknown = Reflect.get(script, 'Command');
  if (typeof ScriptCommand !== 'function') return undefined;
  if (typeof Reflect.get(ScriptCommand.prototype, 'transformReply') !== 'function') return undefined;

  let next: LateReplyWatch | undefined;
  const Base = ScriptCommand as new (...args: unknown[]) => Command;
  class WatchedCommand extends Base {
    [WATCH]: LateReplyWatch | undefined;
    constructor(name: unknown, args?: unknown, options?: WatchedOptions, callback?: unknown) {
      super(name, args, options, callback);
      if (next === undefined) this[WATCH] = options?.[WATCH];
      else {
        this[WATCH] = next;
        if (options !== undefined) options[WATCH] = next;
        next = undefined;
      }
    }
    override transformReply(reply: Buffer | Buffer[]): ReturnType<Command['transformReply']> {
      const value = super.transformReply(reply);
      const watch = this[WATCH];
      this[WATCH] = undefined;
      if (watch?.gaveUp === true) {
        try {
          watch.heard(value);
        } catch {
          // The watch's failure must not reach ioredis's reply parser: that reply is lost to it only.
        }
      }
      return value;
    }
  }
  Reflect.set(script, 'Command', WatchedCommand);

  const replies: LateReplies = {
    watchNext(watch) {
      next = watch;
    },
  };
  const byName = byClient.get(client) ?? new Map<string, LateReplies>();
  byName.set(name, replies);
  byClient.set(client, byName);
  return replies;
}
