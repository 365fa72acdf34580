import { performance } from 'node:perf_hooks';
import { type ChainableCommander, type Cluster, type Command, Pipeline } from 'ioredis';

const TIMED_OUT = 'Command timed out';

/**
 * A Cluster pipeline (an auto-pipeline: the calls of one event-loop turn for one group of slots) that
 * fails within `callTimeoutMs` of its creation, as a command sent alone does, and whose commands are
 * never written once it has its result.
 *
 * Each of its commands is timed only once handed to a node's connection. When its master's connection
 * is still opening (a master whose host is gone), ioredis fails the commands before that, and sends the
 * whole pipeline again after its failover delay and a slot table refresh — seconds when that refresh
 * asks nodes that do not answer, up to 16 times — while the callers wait, and every later call for
 * those slots waits behind it. Past its deadline that retry is not sent: it would run after its callers
 * had decided without it.
 *
 * Whenever its commands all failed alike (all timed out, say) ioredis prepares them for a retry, which
 * renews their promises, and then may not send it: the failures are the pipeline's result. A command
 * that timed out waiting for its node's connection to open is still queued there and, no longer
 * settled, would be written once the connection opens: such abandoned commands are settled here, and
 * the Cluster client's connections write no settled command (cluster-client.ts).
 *
 * Nothing is added on the common path (one clock reading per pipeline): the deadline's timer starts
 * only when ioredis prepares a retry, which is when it calls `sendCommand` on a sent pipeline.
 */
export class CallTimedPipeline extends Pipeline {
  readonly #createdAt = performance.now();
  readonly #callTimeoutMs: number;
  #sent = false;
  #failed = false;
  #deadline: NodeJS.Timeout | undefined;
  /** Commands ioredis prepared to send again, until it does. */
  #retrying: Command[] | undefined;

  constructor(cluster: Cluster, callTimeoutMs: number) {
    super(cluster);
    this.#callTimeoutMs = callTimeoutMs;
  }

  override exec(callback?: Parameters<Pipeline['exec']>[0]): ReturnType<Pipeline['exec']> {
    // A transaction's first exec only appends its EXEC (callTimedTransaction): nothing is sent yet. Its
    // arguments become EXEC's: none unless given.
    if (Reflect.get(this, '_transactions') > 0) return callback ? super.exec(callback) : super.exec();
    if (this.#sent && !this.#failed && this.#left() <= 0) this.#fail();
    if (this.#failed) return this.promise as ReturnType<Pipeline['exec']>;
    this.#sent = true;
    this.#retrying = undefined;
    return super.exec(callback);
  }

  override sendCommand(command: Command): unknown {
    if (this.#sent) {
      if (this.#deadline === undefined) this.#startDeadline();
      this.#retrying ??= [];
      this.#retrying.push(command);
    }
    return super.sendCommand(command);
  }

  #left(): number {
    return this.#callTimeoutMs - (performance.now() - this.#createdAt);
  }

  #startDeadline(): void {
    const deadline = setTimeout(() => this.#fail(), Math.max(this.#left(), 0));
    this.#deadline = deadline;
    const settled = () => {
      clearTimeout(deadline);
      for (const command of this.#retrying ?? [])
        if (!command.isSettled) command.reject(new Error(TIMED_OUT));
      this.#retrying = undefined;
    };
    this.promise.then(settled, settled);
  }

  #fail(): void {
    this.#failed = true;
    this.reject(new Error(TIMED_OUT));
  }
}

type ExecResult = Array<[error: Error | null, reply?: unknown]>;
type ExecCallback = (error: Error | null, result?: ExecResult | null) => void;

/**
 * A Cluster transaction (`multi()`: MULTI, its commands and EXEC in one pipeline to one master) timed as
 * a CallTimedPipeline: ioredis makes its own of a plain Pipeline, which nothing times from the call, so
 * one waiting for its master's connection waited for the failover retry past its deadline, and was
 * written once that connection opened although its caller had been told it failed. It answers as
 * ioredis' does: EXEC's replies, each `[error]` or `[null, reply]`, or the transaction's error (with
 * `previousErrors`, the queued commands' own).
 */
export function callTimedTransaction(
  cluster: Cluster,
  callTimeoutMs: number,
  commands?: unknown[][],
): ChainableCommander {
  const transaction = new CallTimedPipeline(cluster, callTimeoutMs);
  // Pipeline#multi (untyped): queues MULTI and makes the next exec append EXEC.
  (transaction as unknown as { multi(): unknown }).multi();
  if (commands) transaction.addBatch(commands);
  const exec = (): Promise<ExecResult> =>
    CallTimedPipeline.prototype.exec.call(transaction) as Promise<ExecResult>;
  const execTransaction = (callback?: ExecCallback): Promise<ExecResult | null> => {
    let result: Promise<ExecResult | null>;
    if (cluster.slots.length === 0) {
      // Its keys' master is known once the client is (delayUntilReady is bounded by the call timeout).
      result = new Promise((resolve, reject) =>
        cluster.delayUntilReady((error) => (error ? reject(error) : execTransaction().then(resolve, reject))),
      );
    } else {
      if (Reflect.get(transaction, '_transactions') > 0) exec();
      // ioredis' retries (a MOVED, a closed connection) call exec again: the same promise.
      if (Reflect.get(transaction, 'nodeifiedPromise') === true) return exec();
      result = exec().then(unwrapExec);
    }
    if (callback)
      result.then(
        (value) => callback(null, value),
        (error: Error) => callback(error),
      );
    return result;
  };
  Reflect.set(transaction, 'exec', execTransaction);
  return transaction as unknown as ChainableCommander;
}

function unwrapExec(result: ExecResult): ExecResult | null {
  const last = result[result.length - 1];
  if (last === undefined) throw new Error('transaction sent without its EXEC');
  const [error, replies] = last;
  if (error) {
    Reflect.set(
      error,
      'previousErrors',
      result.slice(0, -1).flatMap(([queued]) => (queued ? [queued] : [])),
    );
    throw error;
  }
  // WATCH/EXEC: a transaction aborted by a watched key's change answers null.
  if (!Array.isArray(replies)) return null;
  return replies.map((reply): [Error | null, unknown?] => (reply instanceof Error ? [reply] : [null, reply]));
}
