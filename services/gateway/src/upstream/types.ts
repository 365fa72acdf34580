import type { IncomingHttpHeaders } from 'node:http';
import type { ClientSlots } from '@vantageedge/shared/net/client-slots';
import type { Dispatcher } from 'undici';
import type { Resolve } from './dns-lookups.js';
import type { OriginTlsSettings } from './origin-tls.js';

/**
 * The contract between the gateway's request pipeline and load balancing. One UpstreamSet per
 * origin, built when a snapshot arrives (and closed when the origin changes or disappears).
 */

export interface UpstreamTarget {
  /**
   * Stable id: the target URL's origin, e.g. "http://10.0.0.5:8080" (plus its base path when the origin
   * repeats in the set); consistent hashing places the target by it.
   */
  readonly id: string;
  /** How metrics, logs and spans name the target: its id, bounded (targetLabel). */
  readonly label: string;
  readonly url: URL;
  /** Path prefix of the target URL ('' when the target URL has none); prepended to the forwarded path. */
  readonly basePath: string;
  /** How connections to an https target are verified (the origin's TLS settings); default: verified. */
  readonly tls?: OriginTlsSettings;
  /**
   * How connections to the target made outside its pools (WebSocket upgrades) look names up: in its set's
   * scope of its tenant's lookups, like the pools'. Default: the tenant's lookups in no scope.
   */
  readonly lookups?: TargetLookups;
  /** Keep-alive connection pool to this target. */
  readonly dispatcher: Dispatcher;
  /**
   * A pool to this target whose new connections time out after `connectMs` (a route's connect_ms);
   * the default pool when the target has as many such pools as it keeps.
   */
  dispatcherWithConnectTimeout?(connectMs: number): Dispatcher;
  /**
   * The requests each client has in flight to this target, waiting for a connection included, bounded
   * to its share of the target's connections (GATEWAY_UPSTREAM_CLIENT_SHARE); none when unlimited.
   */
  readonly clientSlots?: ClientSlots | undefined;
}

export interface TargetLookups {
  readonly resolve: Resolve;
  /**
   * A connection is being made with `resolve`; call what it returns once it is made or has failed. The
   * set's lookups not yet started leave the line when it has closed and its connections being made have
   * ended (as its pools' requests do), not before.
   */
  connecting(): () => void;
}

/** What a balancer may hash on or look at; built once per request by the pipeline. */
export interface PickContext {
  readonly clientIp: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  /** The request came from a trusted proxy: a hash_key it alone passes on (True-Client-IP, …) is read. */
  readonly peerTrusted?: boolean | undefined;
  /** The headers the route's request transform wrote (exchange.routeRequestHeaders): read as a trusted proxy's. */
  readonly routeHeaders?: readonly string[] | undefined;
}

/** What a retry asks of the set besides a pick: targets already tried, passed over while others are available. */
export interface AcquireOptions {
  readonly avoid?: readonly string[] | undefined;
}

export type UpstreamOutcome =
  // An HTTP response read to its end, or one its client ended; 5xx but 501 counts as a failure for
  // health/circuit. An answer the origin cut after its head is a `reset` or `timeout`, a failure.
  | { kind: 'response'; status: number }
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
  /**
   * The client is still sending the request body to the target: until `clientBodySent`, the exchange
   * holds none of the target's half-open probe slots (a client pausing its upload must not keep a
   * recovered target from every other client).
   */
  clientBodyPending?(): void;
  /** The request body has been sent whole: the exchange takes a free probe slot, if the circuit wants one. */
  clientBodySent?(): void;
  /**
   * The origin's final response head arrived: a half-open probe with a failed head (or a switch of
   * protocols) is judged by it now; one with a good head when its answer ends (release: a body the origin
   * cut fails it), or, a long one, once it has streamed for its circuit's trial watch (a stream, a slow
   * reader must not keep the probe slot until they end).
   */
  responseStarted?(status: number): void;
  /**
   * May this lease's failure be retried within the target's retry budget (retries ≤ `percent` of its
   * requests over the last 10 s, at least `minRetries`)? Spends one retry when it may. Only sets whose
   * requests are counted (trackRetryBudget) have budgets; others never allow a retry.
   */
  claimRetry?(percent: number, minRetries: number): boolean;
}

export interface UpstreamSet {
  /** How connections to the origin's https targets are made and verified; default: verified. */
  readonly tls?: OriginTlsSettings;
  /**
   * Chooses a healthy target whose circuit admits a request and counts it as in flight.
   * Undefined when no target is available: the pipeline answers 503 at once.
   */
  acquire(context: PickContext, options?: AcquireOptions): UpstreamLease | undefined;
  /** From now on, count requests per target for retry budgets (a route retries on this origin). */
  trackRetryBudget?(): void;
  /**
   * The connect_ms values of the routes sending to the origin now: a target's pool for a value none of
   * them uses any more gives its place up to another value (it drains first).
   */
  useConnectTimeouts?(values: ReadonlySet<number>): void;
  /**
   * Stops health checks and closes pools (after in-flight requests finish). `successor`: the set that
   * replaces this one for the same origin (the tenant's newer version): picks asked of this one from
   * now on — requests that began under the older version, their retries — are its picks.
   */
  close(successor?: UpstreamSet): Promise<void>;
}
