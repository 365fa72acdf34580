import { MAX_ORIGIN_CONNECT_TIMEOUT_MS, type OriginConfig } from '@vantageedge/shared/domain/gateway-config';
import { MAX_ROUTE_CONNECT_TIMEOUTS_PER_ORIGIN } from '@vantageedge/shared/domain/route-policies';
import { withoutTrailingSlashes } from '@vantageedge/shared/http/trailing-slashes';
import { ClientSlots } from '@vantageedge/shared/net/client-slots';
import {
  DEFAULT_ORIGIN_BLOCKED_CIDRS,
  OriginAddressPolicy,
} from '@vantageedge/shared/net/origin-address-policy';
import { Registry } from 'prom-client';
import type { buildConnector, Dispatcher, Pool } from 'undici';
import type { Logger } from 'winston';
import type { LabelBudget } from '../observability/label-budget.js';
import type { TenantLineBudget } from '../observability/tenant-line-budget.js';
import { type ActiveHealthChecks, startActiveHealthChecks } from './active-health-checks.js';
import type { Balancer, BalancerMember } from './balancers/balancer.js';
import { createConsistentHashBalancer } from './balancers/consistent-hash.js';
import { compileHashKey } from './balancers/hash-key.js';
import { createLeastConnectionsBalancer } from './balancers/least-connections.js';
import { createRoundRobinBalancer } from './balancers/round-robin.js';
import { type Admission, CircuitBreaker, type CircuitState } from './circuit-breaker.js';
import { closableOnClosingTrailers } from './closing-trailers.js';
import { type Resolve, type TenantDnsLookups, tenantDnsLookups } from './dns-lookups.js';
import { createGuardedConnector } from './guarded-connector.js';
import { OriginMetrics, type TargetLoad, TargetMetrics, targetLabel } from './metrics.js';
import type { OriginClientCertificate } from './origin-client-certificate.js';
import { compileOriginTls, type OriginTlsSettings, reportingTlsFailures } from './origin-tls.js';
import type { HandshakeSource, OriginTlsBudget } from './origin-tls-budget.js';
import { isTargetSuccess } from './outcome-verdict.js';
import type { ProbeBudget } from './probe-budget.js';
import { RetryBudget } from './retry-budget.js';
import { createStateChangeLog } from './state-change-log.js';
import { TargetHealth } from './target-health.js';
import { TargetPool } from './target-pool.js';
import type { TenantUpstreamSockets } from './tenant-upstream-sockets.js';
import type {
  AcquireOptions,
  PickContext,
  TargetLookups,
  UpstreamLease,
  UpstreamOutcome,
  UpstreamSet,
  UpstreamTarget,
} from './types.js';
import { withoutUnaskedContinue } from './unasked-continue.js';

export interface UpstreamSetDeps {
  readonly tenantId: string;
  /** Where the upstream metrics go; without one they are kept in a private registry. */
  readonly registry?: Registry;
  /**
   * Which targets are a `target` label of their own in `registry` (targetLabelBudget), shared by the
   * replica's upstream sets; without one, every target is.
   */
  readonly targetLabels?: LabelBudget;
  /** Health and circuit state changes are logged here (nothing is logged per request). */
  readonly logger?: Logger;
  /**
   * Each tenant's share of the state-change lines (stateChangeLineBudget), shared by the replica's
   * upstream sets; without one, only each origin's own bound applies.
   */
  readonly stateChangeLines?: TenantLineBudget;
  /** Milliseconds on a monotonic clock; injected by state-machine tests. */
  readonly now?: () => number;
  /** Connections per target pool (GATEWAY_UPSTREAM_CONNECTIONS_PER_TARGET, default 128). */
  readonly connectionsPerTarget?: number;
  /**
   * Requests that may wait for a connection in one target pool (GATEWAY_UPSTREAM_MAX_QUEUED_REQUESTS,
   * default 1024); past it the pool refuses at once (503 upstream_queue_full).
   */
  readonly maxQueuedPerTarget?: number;
  /**
   * The part of a target's connections one client may hold with requests in flight
   * (GATEWAY_UPSTREAM_CLIENT_SHARE, in [0, 1]; default and 0: no limit).
   */
  readonly clientShare?: number;
  /** The network an IPv6 client is counted by in its share (GATEWAY_CLIENT_IPV6_PREFIX; default: its /64). */
  readonly clientIpv6Prefix?: number;
  /**
   * Load balancers in front of the gateways (GATEWAY_TRUSTED_PROXIES): a request resolved to one's own
   * address (it sent no X-Forwarded-For) is many clients', so it holds no client's share.
   */
  readonly trustedProxies?: readonly string[];
  /**
   * Which addresses the pools and health checks may connect to (ORIGIN_BLOCKED_CIDRS and the
   * gateway's own listeners); default: the default blocked ranges.
   */
  readonly addressPolicy?: OriginAddressPolicy;
  /**
   * The certificate presented to the origin's https targets that ask for one (its tls.client_certificate_id,
   * opened from its own tenant's snapshot); none: no client certificate.
   */
  readonly clientCertificate?: OriginClientCertificate;
  /** The replica's health-probe budget, shared by every upstream set (GATEWAY_HEALTH_PROBES_PER_SECOND). */
  readonly probeBudget?: ProbeBudget;
  /**
   * The replica's count of each tenant's open origin sockets, which closes a tenant's idle ones past
   * GATEWAY_MAX_UPSTREAM_REQUESTS_PER_TENANT; without one the pools' sockets are not counted.
   */
  readonly upstreamSockets?: TenantUpstreamSockets;
  /**
   * The replica's budget of each tenant's origin TLS handshakes (their certificate checks), shared by
   * every set: past it the tenant's new https connections are refused. None: not bounded.
   */
  readonly originTlsBudget?: OriginTlsBudget;
  /** Where the set's names are looked up, in its tenant's turn; default: the process's. */
  readonly dnsLookups?: TenantDnsLookups;
}

const DEFAULT_ADDRESS_POLICY = new OriginAddressPolicy(DEFAULT_ORIGIN_BLOCKED_CIDRS);

/** A target's state as the admin listener or a test sees it. */
export interface UpstreamTargetStatus {
  readonly id: string;
  readonly url: string;
  readonly weight: number;
  readonly healthy: boolean;
  readonly circuit: CircuitState;
  readonly in_flight: number;
}

/** The UpstreamSet contract plus read-only introspection. */
export interface InspectableUpstreamSet extends UpstreamSet {
  readonly originId: string;
  status(): UpstreamTargetStatus[];
}

const DEFAULT_CONNECTIONS_PER_TARGET = 128;
/** Envoy's default max_pending_requests. */
const DEFAULT_MAX_QUEUED_PER_TARGET = 1024;
// Below Node's default server keep-alive (5 s) so the gateway, not the origin, closes idle sockets
// and a request is never written to a socket the origin is closing. Also the most an origin's
// `Keep-Alive: timeout=` may ask for (undici's own cap is 10 minutes of a replica's sockets).
const KEEP_ALIVE_MS = 4_000;
/**
 * Pools per target with a route's own connect timeout: the control plane keeps an origin's routes within
 * this many values (a tenant's config from before that rule may hold more: the rest use the default pool).
 */
const MAX_CONNECT_TIMEOUT_POOLS = MAX_ROUTE_CONNECT_TIMEOUTS_PER_ORIGIN;

interface PoolSettings {
  readonly connections: number;
  readonly maxQueued: number;
  /** Requests one client may have in flight at the target (0: no limit). */
  readonly perClient: number;
  readonly trustedProxies: readonly string[];
  readonly clientIpv6Prefix: number | undefined;
  readonly timeoutMs: number;
  /** Opens connections under the origin address policy, timing out after `connectMs`. */
  readonly connector: (connectMs: number) => buildConnector.connector;
}

function newPool(origin: string, settings: PoolSettings, connectMs: number): Pool {
  return new TargetPool(
    origin,
    {
      connections: settings.connections,
      keepAliveTimeout: KEEP_ALIVE_MS,
      keepAliveMaxTimeout: KEEP_ALIVE_MS,
      headersTimeout: settings.timeoutMs,
      bodyTimeout: settings.timeoutMs,
      connect: settings.connector(connectMs),
    },
    settings.maxQueued,
  );
}

/**
 * One target: its default pool and pools with routes' own connect timeouts, each made on first use (an
 * undici Pool is ≈18 KB of heap before it opens a connection: most of a target's cost to a replica, so
 * a target no request has gone to yet costs ≈3 KB).
 */
class Target implements UpstreamTarget {
  #pool: Pool | undefined;
  readonly #connectTimeoutPools = new Map<number, Pool>();
  /** The connect_ms values the origin's routes use now (useConnectTimeouts); undefined: not told. */
  #usedConnectTimeouts: ReadonlySet<number> | undefined;
  /** Pools of values no route uses any more, given up and draining. */
  readonly #draining = new Set<Pool>();
  /** The set is closing: a pool made now (a lease from before) is closed at once, as the others are. */
  #closing = false;
  readonly clientSlots: ClientSlots | undefined;

  constructor(
    readonly id: string,
    readonly label: string,
    readonly url: URL,
    readonly basePath: string,
    readonly tls: OriginTlsSettings,
    readonly lookups: TargetLookups,
    private readonly settings: PoolSettings,
  ) {
    // One count over the target's pools (routes' own connect timeouts): the share is of the target.
    if (settings.perClient > 0)
      this.clientSlots = new ClientSlots({
        limit: settings.perClient,
        trustedProxies: settings.trustedProxies,
        ipv6Prefix: settings.clientIpv6Prefix,
      });
  }

  get dispatcher(): Pool {
    this.#pool ??= this.#newPool(Math.min(this.settings.timeoutMs, MAX_ORIGIN_CONNECT_TIMEOUT_MS));
    return this.#pool;
  }

  dispatcherWithConnectTimeout(connectMs: number): Dispatcher {
    let pool = this.#connectTimeoutPools.get(connectMs);
    if (pool !== undefined) return pool;
    if (this.#connectTimeoutPools.size >= MAX_CONNECT_TIMEOUT_POOLS && !this.#freeUnusedPool())
      return this.dispatcher;
    pool = this.#newPool(connectMs);
    this.#connectTimeoutPools.set(connectMs, pool);
    return pool;
  }

  /** See UpstreamSet.useConnectTimeouts. */
  useConnectTimeouts(values: ReadonlySet<number>): void {
    this.#usedConnectTimeouts = values;
  }

  /**
   * Gives up the pool of a connect_ms no route uses any more (a route's value changed, the route went):
   * the origin did not change, so its targets outlive the routes that made their pools. It drains, as a
   * replaced set's pools do. False when every pool's value is still used.
   */
  #freeUnusedPool(): boolean {
    const used = this.#usedConnectTimeouts;
    if (used === undefined) return false;
    for (const [connectMs, pool] of this.#connectTimeoutPools) {
      if (used.has(connectMs)) continue;
      this.#connectTimeoutPools.delete(connectMs);
      this.#draining.add(pool);
      drainPool(pool, this.settings.timeoutMs)
        .catch(() => {})
        .finally(() => this.#draining.delete(pool));
      return true;
    }
    return false;
  }

  /** The pools made so far, to drain; no pool made after this call stays open. */
  closingPools(): Pool[] {
    this.#closing = true;
    const pools = [...this.#connectTimeoutPools.values(), ...this.#draining];
    if (this.#pool !== undefined) pools.unshift(this.#pool);
    return pools;
  }

  #newPool(connectMs: number): Pool {
    const pool = newPool(this.url.origin, this.settings, connectMs);
    if (this.#closing) pool.close().catch(() => {});
    return pool;
  }
}

class Member implements BalancerMember {
  /** Passed over by the pick in progress (a retry avoiding the targets it tried). */
  avoided = false;
  readonly retryBudget = new RetryBudget();

  constructor(
    readonly target: Target,
    readonly weight: number,
    readonly load: TargetLoad,
    readonly health: TargetHealth,
    readonly circuit: CircuitBreaker,
    readonly metrics: TargetMetrics,
  ) {}

  get id(): string {
    return this.target.id;
  }

  get inFlight(): number {
    return this.load.inFlight;
  }

  isAvailable(): boolean {
    return !this.avoided && this.health.healthy && this.circuit.admits();
  }
}

/** 101 Switching Protocols: the exchange is no longer HTTP; a probe is judged by it (a WebSocket's upgrade). */
const SWITCHING_PROTOCOLS = 101;

/** A half-open probe streamed its good answer for its circuit's trial watch: a success, judged now. */
function trialLasted(lease: Lease): void {
  lease.judgeTrial();
}

class Lease implements UpstreamLease {
  #released = false;
  #admission: Admission;
  /** A half-open probe whose client is still sending the body: it gave its probe slot back meanwhile. */
  #yieldedProbeSlot = false;
  /**
   * The circuit has this exchange's verdict already: a half-open probe by a failed head or a switch of
   * protocols, or by its good answer having streamed for the trial watch.
   */
  #judged = false;
  /** A half-open probe's good answer is streaming: judged a success when this fires, unless it ended first. */
  #trialWatch: NodeJS.Timeout | undefined;

  constructor(
    readonly target: UpstreamTarget,
    private readonly member: Member,
    admission: Admission,
    private readonly now: () => number,
  ) {
    this.#admission = admission;
  }

  clientBodyPending(): void {
    if (this.#released || this.#yieldedProbeSlot) return;
    const admission = this.member.circuit.yieldProbeSlot(this.#admission);
    this.#yieldedProbeSlot = admission !== this.#admission;
    this.#admission = admission;
  }

  clientBodySent(): void {
    if (this.#released || !this.#yieldedProbeSlot) return;
    this.#yieldedProbeSlot = false;
    this.#admission = this.member.circuit.readmit();
  }

  responseStarted(status: number): void {
    // Answered before the client's body was all sent: this exchange is no probe of the round.
    this.#yieldedProbeSlot = false;
    const circuit = this.member.circuit;
    if (this.#released || !circuit.isProbe(this.#admission)) return;
    const success = isTargetSuccess({ kind: 'response', status });
    if (!success || status === SWITCHING_PROTOCOLS) {
      this.#judged = true;
      circuit.record(success, this.#admission);
      return;
    }
    // A good head: the probe is judged when its body ends (the origin may yet cut it), a long one (a
    // stream, a slow reader's download) once it has streamed for the watch without a fault.
    this.#trialWatch = setTimeout(trialLasted, circuit.trialWatchMs, this);
    this.#trialWatch.unref();
  }

  judgeTrial(): void {
    this.#trialWatch = undefined;
    if (this.#released || this.#judged) return;
    this.#judged = true;
    this.member.circuit.record(true, this.#admission);
  }

  claimRetry(percent: number, minRetries: number): boolean {
    return this.member.retryBudget.claim(this.now(), percent, minRetries);
  }

  release(outcome: UpstreamOutcome): void {
    if (this.#released) return;
    this.#released = true;
    const member = this.member;
    member.load.inFlight--;
    if (this.#trialWatch !== undefined) {
      clearTimeout(this.#trialWatch);
      this.#trialWatch = undefined;
    }
    if (outcome.kind === 'cancelled') {
      if (!this.#judged) member.circuit.cancel(this.#admission);
      return;
    }
    const success = isTargetSuccess(outcome);
    member.health.recordTraffic(success);
    if (!this.#judged) member.circuit.record(success, this.#admission);
  }
}

/**
 * Where the picks asked of a set go (see UpstreamSet.close): the set itself while open; once closed,
 * where those of the set that replaced it go. Closed sets hold these small records, never each other,
 * so a request holding a set many versions of its tenant old holds none of the sets in between.
 */
interface Forwarding {
  open: UpstreamSet | undefined;
  next: Forwarding | undefined;
}
const forwardings = new WeakMap<UpstreamSet, Forwarding>();

const forwardingOf = (set: UpstreamSet): Forwarding => forwardings.get(set) ?? { open: set, next: undefined };

/** Each open set's targets, by id, for the set that replaces it to take their state over. */
const membersBySet = new WeakMap<UpstreamSet, ReadonlyMap<string, Member>>();

/**
 * The targets `previous` has down, or behind an open circuit, stay so in `successor` (the same origin,
 * edited) until they recover: a new set starting every target healthy and closed sent a dead one
 * traffic again on every edit of its origin.
 */
function handOverTargetState(previous: ReadonlyMap<string, Member>, successor: UpstreamSet): void {
  for (const [id, member] of membersBySet.get(successor) ?? []) {
    const before = previous.get(id);
    if (before === undefined) continue;
    if (member.health.inheritEjection(before.health)) member.metrics.ejectionInherited();
    if (member.circuit.inheritOpen(before.circuit)) member.metrics.openCircuitInherited();
  }
}

/** The open set `from` forwards to, if any; `from` then forwards straight to it. */
function openSetAfter(from: Forwarding): UpstreamSet | undefined {
  const passed = new Set<Forwarding>();
  let at = from;
  while (at.open === undefined && at.next !== undefined && !passed.has(at)) {
    passed.add(at);
    at = at.next;
  }
  if (at.open !== undefined && at !== from) from.next = at;
  return at.open;
}

/**
 * The targets of one origin with their pools, balancer, health and circuits. Built when a snapshot
 * arrives; `acquire` is the only per-request call.
 */
export function createUpstreamSet(origin: OriginConfig, deps: UpstreamSetDeps): InspectableUpstreamSet {
  const now = deps.now ?? (() => performance.now());
  const registry = deps.registry ?? new Registry();
  const logger = deps.logger;
  const timeoutMs = origin.timeout_seconds * 1000;
  const logFields = { tenant_id: deps.tenantId, origin_id: origin.id, origin: origin.name };
  const addressPolicy = deps.addressPolicy ?? DEFAULT_ADDRESS_POLICY;
  // Its lookups still waiting when it has closed leave the tenant's line (TenantDnsLookups.scoped), its
  // pools' and probes' and its targets' WebSocket upgrades'.
  const lookups = lookupsOfSet((deps.dnsLookups ?? tenantDnsLookups).scoped(deps.tenantId));
  const resolveHost = lookups.resolve;

  const connections = deps.connectionsPerTarget ?? DEFAULT_CONNECTIONS_PER_TARGET;
  const perClient = requestsPerClient(connections, deps.clientShare ?? 0);

  const stateChangeLog = createStateChangeLog(
    logger,
    now,
    deps.stateChangeLines && { tenantId: deps.tenantId, budget: deps.stateChangeLines },
  );
  const tls = compileOriginTls(origin.tls, deps.clientCertificate);
  /** A connection to a target failed its TLS handshake: logged with the reason (rate-bound as state changes). */
  const reportTlsFailure =
    (target: string, during: 'request' | 'health_check') => (reason: string, error: Error) =>
      stateChangeLog('warn', 'origin TLS handshake failed', {
        ...logFields,
        target,
        reason,
        // The reason is the code; the message (the certificate's names, bounded) says what did not match.
        error: error.message.slice(0, 300),
        during,
      });
  const ids = new Set<string>();
  const members = origin.targets.map((config, index) => {
    const url = new URL(config.url);
    const basePath = url.pathname === '/' ? '' : withoutTrailingSlashes(url.pathname);
    const id = uniqueId(ids, url.origin, basePath, index);
    const label = targetLabel(id);
    const load: TargetLoad = { picks: 0, inFlight: 0 };
    const metrics = new TargetMetrics(
      registry,
      { tenant: deps.tenantId, origin: origin.id, id, label },
      load,
      deps.targetLabels,
    );
    const health = new TargetHealth(
      origin.health_check,
      origin.circuit_breaker.open_seconds * 1000,
      now,
      (healthy, source) => {
        metrics.healthChanged(healthy, source);
        stateChangeLog(
          healthy ? 'info' : 'warn',
          healthy ? 'upstream target healthy' : 'upstream target ejected',
          {
            ...logFields,
            target: label,
            source,
          },
        );
      },
    );
    const circuit = new CircuitBreaker(origin.circuit_breaker, now, (from, to, reason) => {
      metrics.circuitChanged(to, reason);
      stateChangeLog(to === 'open' ? 'warn' : 'info', `upstream circuit ${to.replace('_', '-')}`, {
        ...logFields,
        target: label,
        from,
        to,
        reason,
      });
    });
    const target = new Target(id, label, url, basePath, tls, lookups, {
      connections,
      maxQueued: deps.maxQueuedPerTarget ?? DEFAULT_MAX_QUEUED_PER_TARGET,
      perClient,
      trustedProxies: deps.trustedProxies ?? [],
      clientIpv6Prefix: deps.clientIpv6Prefix,
      timeoutMs,
      connector: (connectMs) => {
        const guarded = reportingTlsFailures(
          createGuardedConnector(
            addressPolicy,
            { timeout: connectMs },
            resolveHost,
            tls,
            budgetedHandshakes(deps, 'request'),
          ),
          reportTlsFailure(label, 'request'),
        );
        return closableOnClosingTrailers(
          withoutUnaskedContinue(deps.upstreamSockets?.connector(deps.tenantId, guarded) ?? guarded),
        );
      },
    });
    return new Member(target, config.weight, load, health, circuit, metrics);
  });

  const balancer = createBalancer(origin, members, logger, logFields);
  const originMetrics = new OriginMetrics(registry, { tenant: deps.tenantId, origin: origin.id });

  let checks: ActiveHealthChecks | undefined;
  if (origin.health_check.active.enabled) {
    checks = startActiveHealthChecks(
      members.map((member) => ({
        probeUrl: `${member.target.url.origin}${member.target.basePath}${origin.health_check_path}`,
        onTlsFailure: reportTlsFailure(member.target.label, 'health_check'),
        onProbe(success: boolean) {
          member.metrics.probed(success);
          member.health.recordProbe(success);
        },
      })),
      origin.health_check.active,
      addressPolicy,
      deps.probeBudget?.forTenant(deps.tenantId),
      resolveHost,
      tls,
      budgetedHandshakes(deps, 'health_check'),
    );
  }

  let closing: Promise<void> | undefined;
  const forwarding: Forwarding = { open: undefined, next: undefined };
  let countForRetries = false;

  /** A pick passing over the targets in `avoid`, or -1 when no other target is available. */
  const pickAvoiding = (context: PickContext, avoid: readonly string[]): number => {
    for (const member of members) member.avoided = avoid.includes(member.id);
    try {
      return balancer.pick(context);
    } finally {
      for (const member of members) member.avoided = false;
    }
  };

  const set: InspectableUpstreamSet = {
    originId: origin.id,
    tls,

    acquire(context: PickContext, options?: AcquireOptions): UpstreamLease | undefined {
      if (closing !== undefined) return openSetAfter(forwarding)?.acquire(context, options);
      const avoid = options?.avoid;
      let index = avoid === undefined || avoid.length === 0 ? -1 : pickAvoiding(context, avoid);
      if (index < 0) index = balancer.pick(context);
      const member = members[index];
      if (member === undefined) {
        originMetrics.refused++;
        return undefined;
      }
      member.load.picks++;
      member.load.inFlight++;
      if (countForRetries) member.retryBudget.recordRequest(now());
      return new Lease(member.target, member, member.circuit.admit(), now);
    },

    trackRetryBudget() {
      countForRetries = true;
    },

    useConnectTimeouts(values: ReadonlySet<number>) {
      for (const member of members) member.target.useConnectTimeouts(values);
    },

    status() {
      return members.map((member) => ({
        id: member.target.id,
        url: member.target.url.href,
        weight: member.weight,
        healthy: member.health.healthy,
        circuit: member.circuit.state,
        in_flight: member.inFlight,
      }));
    },

    close(replacement?: UpstreamSet) {
      if (closing === undefined) {
        if (replacement !== undefined) handOverTargetState(membersById, replacement);
        forwarding.open = undefined;
        forwarding.next = replacement === undefined ? undefined : forwardingOf(replacement);
      }
      closing ??= (async () => {
        await checks?.stop();
        await Promise.all(
          members.flatMap((member) => member.target.closingPools().map((pool) => drainPool(pool, timeoutMs))),
        );
        await lookups.connected();
        for (const member of members) member.metrics.close();
        originMetrics.close();
        lookups.release();
      })();
      return closing;
    },
  };
  forwarding.open = set;
  forwardings.set(set, forwarding);
  const membersById = new Map(members.map((member) => [member.id, member]));
  membersBySet.set(set, membersById);
  return set;
}

function createBalancer(
  origin: OriginConfig,
  members: readonly BalancerMember[],
  logger: Logger | undefined,
  logFields: Record<string, string>,
): Balancer {
  switch (origin.load_balancing.algorithm) {
    case 'round_robin':
      return createRoundRobinBalancer(members);
    case 'least_connections':
      return createLeastConnectionsBalancer(members);
    case 'consistent_hash': {
      const keyOf = compileHashKey(origin.load_balancing);
      if (keyOf !== undefined) return createConsistentHashBalancer(members, keyOf);
      const { hash_key } = origin.load_balancing;
      logger?.warn(
        hash_key === undefined
          ? 'consistent_hash on a header or cookie needs hash_key; hashing on client IP'
          : `consistent_hash hash_key ${hash_key} is written by the gateway for the origin (a client's copy is never read); hashing on client IP`,
        logFields,
      );
      return createConsistentHashBalancer(members, (context) => context.clientIp);
    }
  }
}

/** A client's share of a target's connections, in requests (at least one); 0 when there is no limit. */
function requestsPerClient(connections: number, share: number): number {
  return share > 0 ? Math.max(1, Math.floor(connections * share)) : 0;
}

/** Target ids are the URL origin; two targets on one origin are told apart by base path, then position. */
function uniqueId(seen: Set<string>, origin: string, basePath: string, index: number): string {
  let id = origin;
  if (seen.has(id)) id = origin + basePath;
  if (seen.has(id)) id = `${origin}${basePath}#${index}`;
  seen.add(id);
  return id;
}

/**
 * The set's scope of its tenant's lookups, for its targets' connections made outside the pools too
 * (WebSocket upgrades): `connected` settles once none of those is being made, so an upgrade connecting
 * when its origin changed keeps its lookup until its connect ends (at most its connect timeout), as a
 * request in a draining pool does.
 */
function lookupsOfSet(scope: { resolve: Resolve; release: () => void }): TargetLookups & {
  connected(): Promise<void>;
  release(): void;
} {
  let connecting = 0;
  let noneLeft: (() => void) | undefined;
  return {
    resolve: scope.resolve,
    release: scope.release,
    connecting() {
      connecting++;
      let ended = false;
      return () => {
        if (ended) return;
        ended = true;
        if (--connecting === 0) noneLeft?.();
      };
    },
    connected() {
      if (connecting === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        noneLeft = resolve;
      });
    },
  };
}

/** Lets in-flight requests finish (bounded by the origin timeout), then drops what is left. */
async function drainPool(pool: Pool, graceMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), graceMs);
    timer.unref();
  });
  const result = await Promise.race([pool.close().then(() => 'closed' as const), timedOut]);
  clearTimeout(timer);
  if (result === 'timeout') await pool.destroy();
}

/** The set's connections admitted and charged by its tenant's handshake budget, when the replica has one. */
function budgetedHandshakes(
  deps: Pick<UpstreamSetDeps, 'originTlsBudget' | 'tenantId'>,
  source: HandshakeSource,
): ((connector: buildConnector.connector, tls: OriginTlsSettings) => buildConnector.connector) | undefined {
  const budget = deps.originTlsBudget;
  if (budget === undefined) return undefined;
  return (connector, tls) => budget.connector(deps.tenantId, source, connector, tls);
}
