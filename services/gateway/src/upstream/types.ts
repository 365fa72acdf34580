import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';

/**
 * The contract between the gateway's request pipeline and load balancing. One UpstreamSet per
 * origin, built when a snapshot arrives (and closed when the origin changes or disappears).
 */

export interface UpstreamTarget {
  /** Stable id for metrics and logs: the target URL's origin, e.g. "http://10.0.0.5:8080". */
  readonly id: string;
  readonly url: URL;
  /** Path prefix of the target URL ('' when the target URL has none); prepended to the forwarded path. */
  readonly basePath: string;
  /** Keep-alive connection pool to this target. */
  readonly dispatcher: Dispatcher;
}

/** What a balancer may hash on or look at; built once per request by the pipeline. */
export interface PickContext {
  readonly clientIp: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
}

export type UpstreamOutcome =
  | { kind: 'response'; status: number } // any HTTP response; 5xx counts as a failure for health/circuit
  | { kind: 'connect_error' }
  | { kind: 'timeout' }
  | { kind: 'reset' }
  // Ended for a reason that says nothing about the target (the client went away, its body was too
  // large): not counted as success or failure, and a half-open probe slot is given back.
  | { kind: 'cancelled' };

export interface UpstreamLease {
  readonly target: UpstreamTarget;
  /** Call exactly once when the upstream exchange ends (success or failure). */
  release(outcome: UpstreamOutcome): void;
}

export interface UpstreamSet {
  /**
   * Chooses a healthy target whose circuit admits a request and counts it as in flight.
   * Undefined when no target is available: the pipeline answers 503 at once.
   */
  acquire(context: PickContext): UpstreamLease | undefined;
  /** Stops health checks and closes pools (after in-flight requests finish). */
  close(): Promise<void>;
}
