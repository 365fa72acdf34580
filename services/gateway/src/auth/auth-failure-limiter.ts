import {
  countFailure,
  type FailureWindow,
  FailureWindows,
  windowRefusedForMs,
} from '@vantageedge/shared/net/failure-windows';
import { clientCountingKey } from '@vantageedge/shared/net/ip-address';
import { Counter, type Registry } from 'prom-client';
import { FairLru } from '../ratelimit/fair-lru.js';

/**
 * Failed authentications per client IP (an IPv6 client by its /64, or GATEWAY_CLIENT_IPV6_PREFIX), per
 * replica and in memory (not shared through Redis: an attacker spread over N replicas gets N times the
 * allowance, which still bounds the crypto and JWKS work each replica does for it).
 *
 * A client is counted per tenant, so one tenant (whose page can make every browser behind a NAT fail on
 * its own host) cannot lock that address out of other tenants; and across tenants against a larger
 * bound, so one address still gets a bounded number of verifications from the replica. A client at either
 * bound in its current one-minute window is refused until that window ends, before any verification; a
 * verification still in flight counts as a failure until it succeeds. Bounded: the least recently seen
 * clients are forgotten first, a tenant's from its own share, so that a tenant whose clients come from
 * many addresses forgets its own, not the counts that hold another tenant's brute-forcer back.
 */
export class AuthFailureLimiter {
  readonly #maxPerMinute: number;
  readonly #maxPerMinuteAllTenants: number;
  readonly #ipv6Prefix: number | undefined;
  /** Per tenant, by client. */
  readonly #tenantWindows: FairLru<FailureWindow>;
  /** By client alone: the count across tenants. */
  readonly #clientWindows: FailureWindows;
  readonly #failures: Counter<'code'> | undefined;
  readonly #refused: Counter | undefined;

  constructor(options: {
    maxPerMinute: number;
    /** Default: ten times `maxPerMinute`. */
    maxPerMinuteAllTenants?: number | undefined;
    maxClients?: number;
    /** The network an IPv6 client is counted by (default: its /64). */
    ipv6Prefix?: number | undefined;
    registry?: Registry;
  }) {
    this.#ipv6Prefix = options.ipv6Prefix;
    this.#maxPerMinute = options.maxPerMinute;
    this.#maxPerMinuteAllTenants = options.maxPerMinuteAllTenants ?? options.maxPerMinute * 10;
    const maxClients = options.maxClients ?? 100_000;
    this.#tenantWindows = new FairLru(maxClients);
    this.#clientWindows = new FailureWindows(maxClients);
    if (options.registry) {
      this.#failures = new Counter({
        name: 'vantageedge_gateway_auth_failures_total',
        help: 'Requests whose credential was presented and rejected (401), by error code',
        labelNames: ['code'],
        registers: [options.registry],
      });
      this.#refused = new Counter({
        name: 'vantageedge_gateway_auth_failures_refused_total',
        help: 'Requests answered 429 too_many_auth_failures without verifying their credential',
        registers: [options.registry],
      });
    }
  }

  /** Seconds until the client may try again on this tenant; 0 when it may now. Counts the refusal. */
  refusedForSeconds(tenantId: string, clientIp: string): number {
    if (this.#maxPerMinute <= 0) return 0;
    const client = clientCountingKey(clientIp, this.#ipv6Prefix);
    const now = Date.now();
    const left = Math.max(
      windowRefusedForMs(this.#tenantWindows.get(tenantId, client), this.#maxPerMinute, now),
      this.#clientWindows.refusedForMs(client, this.#maxPerMinuteAllTenants, now),
    );
    if (left <= 0) return 0;
    this.#refused?.inc();
    return Math.ceil(left / 1000);
  }

  /** A credential rejected at once (an API key, a cached or malformed token). */
  recordFailure(tenantId: string, clientIp: string, code: string): void {
    this.#failures?.labels(code).inc();
    this.#count(tenantId, clientIp);
  }

  /**
   * A credential about to be verified asynchronously counts as a failure from now on, so that a burst of
   * them (or one waiting for a slow JWKS fetch) cannot all pass the check before the first one fails.
   * Settle it with the failure's code, or with undefined to give the slot back.
   */
  reserve(tenantId: string, clientIp: string): (failureCode: string | undefined) => void {
    const windows = this.#count(tenantId, clientIp);
    return (failureCode) => {
      if (failureCode !== undefined) this.#failures?.labels(failureCode).inc();
      // A window that has ended since is no longer in the map: giving its slot back changes nothing.
      else if (windows !== undefined) for (const window of windows) window.failures--;
    };
  }

  #count(tenantId: string, clientIp: string): readonly FailureWindow[] | undefined {
    if (this.#maxPerMinute <= 0) return undefined;
    const client = clientCountingKey(clientIp, this.#ipv6Prefix);
    const now = Date.now();
    const current = this.#tenantWindows.get(tenantId, client);
    const counted = countFailure(current, now);
    if (counted !== current) this.#tenantWindows.set(tenantId, client, counted);
    return [counted, this.#clientWindows.count(client, now)];
  }
}
