import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Registry } from 'prom-client';
import type { buildConnector } from 'undici';
import { BoundCounter, type CounterSeries } from '../observability/bound-metrics.js';
import { handshakeCheckMs } from './origin-handshake-cost.js';
import { DEFAULT_ORIGIN_TLS, type OriginTlsSettings } from './origin-tls.js';

/**
 * A tenant's new https connection to an origin was refused: its handshakes on this replica spent their
 * certificate-check budget (the pipeline answers 503 origin_tls_budget with Retry-After; a health probe is
 * skipped). No handshake was begun, and no request sent.
 */
export class OriginTlsBudgetSpentError extends Error {
  readonly code = 'ORIGIN_TLS_BUDGET_SPENT';

  constructor(readonly retryAfterSeconds: number) {
    super(
      `the tenant's TLS handshakes with its origins spent their certificate-check budget on this gateway; retry after ${retryAfterSeconds} s`,
    );
    this.name = 'OriginTlsBudgetSpentError';
  }
}

/** Who opens the connection, for the metrics. */
export type HandshakeSource = 'request' | 'health_check' | 'websocket';

export interface OriginTlsBudgetOptions {
  /** Estimated milliseconds of certificate checks a tenant's handshakes may cost per second (the refill). */
  readonly msPerSecond: number;
  /** What a tenant may spend at once (the bucket's size). */
  readonly burstMs: number;
  /** The most handshakes of one tenant in progress at once; others wait their turn. */
  readonly perTenantAtOnce: number;
  readonly registry?: Registry;
  /** The clock the buckets refill by, in ms (default performance.now). */
  readonly now?: () => number;
}

interface TenantHandshakes {
  /** Estimated ms left to spend; below 0 after a handshake dearer than what was left. */
  tokens: number;
  refilledAt: number;
  /** Handshakes admitted and not yet settled, and what each was expected to cost. */
  pending: number;
  reserved: number;
  /** The dearest handshake charged lately (until `dearestUntil`): what the next one is expected to cost. */
  dearest: number;
  dearestUntil: number;
  readonly waiting: Waiter[];
}

interface Waiter {
  readonly start: (settle: (costMs: number) => void) => void;
  readonly refuse: (error: OriginTlsBudgetSpentError) => void;
}

/** How long past a tenant's debt its dearest handshake stays what its next ones are expected to cost. */
const DEAREST_MS = 60_000;

/**
 * The certificate checks of origin TLS handshakes each tenant may cost this replica: a token bucket per
 * tenant of estimated milliseconds of the replica's thread (`handshakeCheckMs`). OpenSSL checks every
 * certificate an origin sends in the handshake itself, before node lets anyone look at the chain, and
 * a hostile chain costs up to ≈ 0.5–1 s per handshake: no check of the chain afterwards saves that, so
 * what is bounded is how often, and how many at once, a tenant's origins may make the replica pay it.
 *
 * Each handshake is charged its estimate once it is over (completed, failed, or cut off by the connect
 * timeout after the certificates arrived); a resumed session costs nothing. While a tenant's bucket is
 * empty its new https connections are refused (OriginTlsBudgetSpentError) — never another tenant's.
 * The charge comes after the cost, so how many of a tenant's handshakes run at once is bounded too: at
 * most `perTenantAtOnce`, and only while the bucket holds more than they are expected to cost, each the
 * dearest the tenant paid lately (remembered a minute past the time its bucket is out of debt, so a
 * cheap handshake in between does not make it forget); the others wait their turn. A tenant whose origin
 * is dear thus has one handshake at a time, and a burst to an origin of unknown cost costs the replica at
 * most `perTenantAtOnce` handshakes before the first is charged.
 */
export class OriginTlsBudget {
  readonly #tenants = new Map<string, TenantHandshakes>();
  readonly #ratePerMs: number;
  readonly #burstMs: number;
  readonly #atOnce: number;
  readonly #now: () => number;
  readonly #metrics: BudgetMetrics | undefined;

  constructor(options: OriginTlsBudgetOptions) {
    this.#ratePerMs = options.msPerSecond / 1000;
    this.#burstMs = options.burstMs;
    this.#atOnce = options.perTenantAtOnce;
    this.#now = options.now ?? (() => performance.now());
    this.#metrics = options.registry ? budgetMetrics(options.registry) : undefined;
  }

  /**
   * `connector` with each https connection's TLS handshake admitted by the tenant's budget and charged to
   * it. The TCP connection is made first (DNS and connect hold no turn: a tenant's target that never
   * answers does not keep its other origins waiting), then the handshake, over it, in the tenant's turn.
   * Put inside the connect timeout: a connection waiting for its turn is timed as its connect.
   */
  connector(
    tenantId: string,
    source: HandshakeSource,
    connector: buildConnector.connector,
    /** The origin's: its trust store, and whether the gateway checks the chain again (twice the cost). */
    tls: Pick<OriginTlsSettings, 'rechecksChain' | 'trustStore' | 'trustStoreCheckMs'> = DEFAULT_ORIGIN_TLS,
  ): buildConnector.connector {
    const costFactor = tls.rechecksChain ? 2 : 1;
    const connect = connector as (...args: Parameters<buildConnector.connector>) => unknown;
    return (options, callback) => {
      if (options.protocol !== 'https:') return connect(options, callback) as undefined;
      // Looked up as the connection begins, while its tenant is configured: a handshake that ends after
      // the tenant left counts into series that left /metrics with it, and brings none back.
      const series = this.#metrics?.of(tenantId, source);
      // Answered in a microtask of its own: a refusal may come while another connection's handshake ends.
      const refuse = (error: OriginTlsBudgetSpentError) => {
        series?.refused.inc();
        queueMicrotask(() => callback(error, null));
      };
      const spent = this.#spent(tenantId);
      if (spent !== undefined) {
        refuse(spent);
        return;
      }
      let tcp: Socket | undefined;
      let socket: TLSSocket | undefined;
      let charge: (() => void) | undefined;
      let cancel = () => {};
      let cancelled = false;
      const handshake = (connected: Socket) => (settle: (costMs: number) => void) => {
        if (cancelled) {
          settle(0);
          return;
        }
        let settled = false;
        charge = () => {
          if (settled) return;
          settled = true;
          const received = {
            bytes: connected.bytesRead,
            trustStore: tls.trustStore(),
            trustStoreCheckMs: tls.trustStoreCheckMs,
          };
          const cost = socket === undefined ? 0 : costFactor * handshakeCheckMs(socket, received);
          series?.charged.inc(cost);
          settle(cost);
        };
        socket = connect({ ...options, httpSocket: connected }, (error, secured) => {
          charge?.();
          if (error === null) callback(null, secured);
          else callback(error, null);
        }) as TLSSocket | undefined;
        // Charged as the handshake ends, while its certificates can still be read: node emits `secure`
        // before it judges the chain, and a failure before it lets go of the connection.
        socket?.prependOnceListener?.('secure', charge);
        socket?.prependOnceListener?.('error', charge);
      };
      tcp = connect({ ...options, protocol: 'http:', port: options.port || '443' }, (error, connected) => {
        if (error !== null) {
          callback(error, null);
          return;
        }
        cancel = this.admit(tenantId, handshake(connected), (refusal) => {
          connected.destroy();
          refuse(refusal);
        });
      }) as Socket | undefined;
      // What the connect timeout destroys: the connection (its handshake charged for the certificates
      // that arrived), or the turn still waited for.
      return {
        destroy: (error?: Error) => {
          cancelled = true;
          cancel();
          charge?.();
          socket?.destroy(error);
          tcp?.destroy(error);
        },
      } as unknown as undefined;
    };
  }

  /** The refusal a tenant's new handshake would meet now: its bucket is empty, nothing in progress. */
  #spent(tenantId: string): OriginTlsBudgetSpentError | undefined {
    const tenant = this.#tenants.get(tenantId);
    if (tenant === undefined || tenant.pending > 0) return undefined;
    this.#refill(tenant, this.#now());
    return tenant.tokens > 0 ? undefined : this.#spentError(tenant);
  }

  #spentError(tenant: TenantHandshakes): OriginTlsBudgetSpentError {
    return new OriginTlsBudgetSpentError(Math.max(1, Math.ceil(-tenant.tokens / this.#ratePerMs / 1000)));
  }

  /**
   * Starts `start` now, or once the tenant's budget allows, with what settles its cost; or calls
   * `refuse` (the bucket is empty and nothing is in progress). Returns what gives up a turn not yet begun.
   */
  admit(
    tenantId: string,
    start: (settle: (costMs: number) => void) => void,
    refuse: (error: OriginTlsBudgetSpentError) => void,
  ): () => void {
    const tenant = this.#tenant(tenantId);
    const waiter: Waiter = { start, refuse };
    if (tenant.waiting.length === 0 && this.#tryStart(tenantId, tenant, waiter)) return () => {};
    tenant.waiting.push(waiter);
    return () => {
      const at = tenant.waiting.indexOf(waiter);
      if (at >= 0) tenant.waiting.splice(at, 1);
      this.#forgetIfIdle(tenantId, tenant);
    };
  }

  /** Starts `waiter` when the budget allows, refuses it when empty with nothing in progress; false: wait. */
  #tryStart(tenantId: string, tenant: TenantHandshakes, waiter: Waiter): boolean {
    const now = this.#now();
    this.#refill(tenant, now);
    if (tenant.pending >= this.#atOnce) return false;
    if (tenant.tokens - tenant.reserved <= 0) {
      if (tenant.pending > 0) return false;
      this.#forgetIfIdle(tenantId, tenant);
      waiter.refuse(this.#spentError(tenant));
      return true;
    }
    const expected = now < tenant.dearestUntil ? tenant.dearest : 0;
    tenant.pending++;
    tenant.reserved += expected;
    let settled = false;
    waiter.start((costMs) => {
      if (settled) return;
      settled = true;
      const at = this.#now();
      this.#refill(tenant, at);
      tenant.pending--;
      tenant.reserved = tenant.pending === 0 ? 0 : tenant.reserved - expected;
      tenant.tokens -= costMs;
      if (costMs > 0 && (costMs >= tenant.dearest || at >= tenant.dearestUntil)) {
        tenant.dearest = costMs;
        // Out of debt once the bucket has refilled what it is short of.
        const outOfDebt = tenant.tokens < 0 ? -tenant.tokens / this.#ratePerMs : 0;
        tenant.dearestUntil = at + outOfDebt + DEAREST_MS;
      }
      this.#next(tenantId, tenant);
    });
    return true;
  }

  /** Starts (or refuses) the tenant's waiting connections in turn, while the budget allows. */
  #next(tenantId: string, tenant: TenantHandshakes): void {
    for (let waiter = tenant.waiting.shift(); waiter !== undefined; waiter = tenant.waiting.shift()) {
      if (!this.#tryStart(tenantId, tenant, waiter)) {
        tenant.waiting.unshift(waiter);
        break;
      }
    }
    this.#forgetIfIdle(tenantId, tenant);
  }

  #tenant(tenantId: string): TenantHandshakes {
    let tenant = this.#tenants.get(tenantId);
    if (tenant === undefined) {
      tenant = {
        tokens: this.#burstMs,
        refilledAt: this.#now(),
        pending: 0,
        reserved: 0,
        dearest: 0,
        dearestUntil: 0,
        waiting: [],
      };
      this.#tenants.set(tenantId, tenant);
    }
    return tenant;
  }

  #refill(tenant: TenantHandshakes, now: number): void {
    tenant.tokens = Math.min(this.#burstMs, tenant.tokens + (now - tenant.refilledAt) * this.#ratePerMs);
    tenant.refilledAt = now;
  }

  /** A tenant with nothing in progress and a full bucket is forgotten: a new entry is the same. */
  #forgetIfIdle(tenantId: string, tenant: TenantHandshakes): void {
    if (tenant.pending > 0 || tenant.waiting.length > 0) return;
    this.#refill(tenant, this.#now());
    if (tenant.tokens >= this.#burstMs && this.#now() >= tenant.dearestUntil) this.#tenants.delete(tenantId);
  }

  /** Tenants the replica keeps an entry for (for tests). */
  get tenantsTracked(): number {
    return this.#tenants.size;
  }
}

/**
 * The budget's series, by tenant and source. Bound series: they leave /metrics when their tenant leaves
 * the replica's config (removeTenantSeries), and stay while it is only replaced.
 */
class BudgetMetrics {
  readonly #charged: BoundCounter;
  readonly #refused: BoundCounter;

  constructor(registry: Registry) {
    this.#charged = new BoundCounter({
      name: 'vantageedge_upstream_tls_handshake_check_ms_total',
      help: "Estimated milliseconds of the replica's thread spent checking origin certificates in TLS handshakes, by tenant and source (request|health_check|websocket)",
      labelNames: ['tenant', 'source'],
      registry,
    });
    this.#refused = new BoundCounter({
      name: 'vantageedge_upstream_tls_budget_refusals_total',
      help: 'New origin TLS connections refused (a request answered 503 origin_tls_budget, a health probe skipped) because the tenant spent its handshake budget (GATEWAY_ORIGIN_TLS_CHECK_MS_PER_SECOND)',
      labelNames: ['tenant', 'source'],
      registry,
    });
  }

  of(tenant: string, source: HandshakeSource): { charged: CounterSeries; refused: CounterSeries } {
    return {
      charged: this.#charged.series([tenant, source]),
      refused: this.#refused.series([tenant, source]),
    };
  }
}

const metricsByRegistry = new WeakMap<Registry, BudgetMetrics>();

function budgetMetrics(registry: Registry): BudgetMetrics {
  let metrics = metricsByRegistry.get(registry);
  if (metrics === undefined) {
    metrics = new BudgetMetrics(registry);
    metricsByRegistry.set(registry, metrics);
  }
  return metrics;
}
