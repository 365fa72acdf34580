import { performance } from 'node:perf_hooks';
import { type Cluster, type Command, Pipeline } from 'ioredis';

const TIMED_OUT = 'Command timed out';

/**
 * A Cluster pipeline (an auto-pipeline: the calls of one event-loop turn for one group of slots) that
 * fails within `callTimeoutMs` of its creation, as a command sent alone does.
 *
 * Each of its commands is timed only once written to a node's connection. When its master's connection
 * is still opening (a master whose host is gone), ioredis fails the commands before that, and sends the
 * whole pipeline again after its failover delay and a slot table refresh — seconds when that refresh
 * asks nodes that do not answer, up to 16 times — while the callers wait, and every later call for
 * those slots waits behind it. Once it has failed, that retry is not sent: it would run after its
 * callers had decided without it.
 *
 * Nothing is added on the common path (one clock reading per pipeline): the deadline's timer starts
 * only when ioredis prepares such a retry, which is when it calls `sendCommand` on a sent pipeline.
 */
export class CallTimedPipeline extends Pipeline {
  readonly #createdAt = performance.now();
  readonly #callTimeoutMs: number;
  #sent = false;
  #deadline: NodeJS.Timeout | undefined;
  #failed = false;

  constructor(cluster: Cluster, callTimeoutMs: number) {
    super(cluster);
    this.#callTimeoutMs = callTimeoutMs;
  }

  override exec(callback?: Parameters<Pipeline['exec']>[0]): ReturnType<Pipeline['exec']> {
    if (this.#failed) return this.promise as ReturnType<Pipeline['exec']>;
    this.#sent = true;
    return super.exec(callback);
  }

  override sendCommand(command: Command): unknown {
    if (this.#sent && this.#deadline === undefined && !this.#failed) this.#startDeadline();
    return super.sendCommand(command);
  }

  #startDeadline(): void {
    const left = this.#callTimeoutMs - (performance.now() - this.#createdAt);
    if (left <= 0) {
      this.#fail();
      return;
    }
    const deadline = setTimeout(() => this.#fail(), left);
    this.#deadline = deadline;
    const clear = () => clearTimeout(deadline);
    this.promise.then(clear, clear);
  }

  #fail(): void {
    this.#failed = true;
    this.reject(new Error(TIMED_OUT));
  }
}
