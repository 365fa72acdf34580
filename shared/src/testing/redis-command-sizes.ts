import type { Redis } from 'ioredis';

interface SentCommand {
  name: string;
  args: unknown[];
  promise: Promise<unknown>;
}

export interface CommandSizes {
  /** The most keys (arguments, or elements of an array reply) one command sent from now on carried. */
  largest(): { name: string; size: number };
  /** The most bytes (of its arguments, or of a string reply) one command sent from now on moved. */
  largestBytes(): { name: string; bytes: number };
  stop(): void;
}

/** Elements of an array reply (nested ones included), or of the one ioredis made an object (HGETALL). */
function replySize(reply: unknown): number {
  if (Array.isArray(reply)) return reply.flat(Number.POSITIVE_INFINITY).length;
  if (reply !== null && typeof reply === 'object' && !Buffer.isBuffer(reply))
    return 2 * Object.keys(reply).length;
  return 1;
}

/** Bytes of a command's string and Buffer arguments, or of a string reply. */
function byteSize(values: unknown[]): number {
  let bytes = 0;
  for (const value of values) {
    if (Buffer.isBuffer(value)) bytes += value.length;
    else if (typeof value === 'string') bytes += Buffer.byteLength(value);
  }
  return bytes;
}

/**
 * Records the size of every command `client` sends (its arguments, and the elements or fields
 * of its reply): what one command makes the single-threaded Redis work through. Scripts count as one command.
 */
export function recordCommandSizes(client: Redis): CommandSizes {
  let largest = { name: '', size: 0 };
  let largestBytes = { name: '', bytes: 0 };
  const record = (name: string, size: number, bytes: number) => {
    if (size > largest.size) largest = { name, size };
    if (bytes > largestBytes.bytes) largestBytes = { name, bytes };
  };
  const original = client.sendCommand;
  const spy = function (this: Redis, command: SentCommand, ...rest: unknown[]) {
    record(command.name, command.args.length, byteSize(command.args));
    command.promise.then(
      (reply) => record(command.name, replySize(reply), byteSize([reply])),
      () => {},
    );
    return (original as (...args: unknown[]) => unknown).call(this, command, ...rest);
  };
  client.sendCommand = spy as unknown as Redis['sendCommand'];
  return {
    largest: () => largest,
    largestBytes: () => largestBytes,
    stop: () => {
      client.sendCommand = original;
    },
  };
}
