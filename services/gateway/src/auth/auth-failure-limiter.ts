import { clientCountingKey } from '@vantageedge/shared/net/ip-address';
import { LRUCache } from 'lru-cache';
import { Counter, type Registry } from 'prom-client';

const WINDOW_MS = 60_000;

interface FailureWindow {
  startedAt: number;
  failures: number;
}

/**
 * Failed authentications per client IP (an IPv6 client by its /64), per replica and in memory (not shared through Redis: an
 * attacker spread over N replicas gets N times the allowance, which still bounds the crypto and JWKS
 * work each replica does for it). A client with `maxPerMinute` failures in its current one-minute
 * window is refused until that window ends, before any verification. Bounded: the least recently
 * seen clients are forgotten first.
 */
export class AuthFailureLimiter {
  readonly #maxPerMinute: number;
  readonly #clients: LRUCache<string, FailureWindow>;
  readonly #failures: Counter<'code'> | undefined;
  readonly #refused: Counter | undefined;

  constructor(options: { maxPerMinute: number; maxClients?: number; registry?: Registry }) {
    this.#maxPerMinute = options.maxPerMinute;
    this.#clients = new LRUCache({ max: options.maxClients ?? 100_000 });
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

  /** Seconds until the client may try again; 0 when it may now. Counts the refusal. */
  refusedForSeconds(clientIp: string): number {
    if (this.#maxPerMinute <= 0) return 0;
    const window = this.#clients.get(clientCountingKey(clientIp));
    if (window === undefined || window.failures < this.#maxPerMinute) return 0;
    const left = window.startedAt + WINDOW_MS - Date.now();
    if (left <= 0) return 0;
    this.#refused?.inc();
    return Math.ceil(left / 1000);
  }

  recordFailure(clientIp: string, code: string): void {
    this.#failures?.labels(code).inc();
    if (this.#maxPerMinute <= 0) return;
    const now = Date.now();
    const client = clientCountingKey(clientIp);
    const window = this.#clients.get(client);
    if (window === undefined || now - window.startedAt >= WINDOW_MS) {
      this.#clients.set(client, { startedAt: now, failures: 1 });
    } else {
      window.failures++;
    }
  }
}
