import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { pathTags } from '@vantageedge/shared/cache-purge/path-prefix';
import {
  CACHE_TAG_MAX_LENGTH,
  CACHE_TAGS_MAX,
  type CachePurgeMessage,
  type PurgeGenerations,
  type PurgeTarget,
  tagIndexKey,
  tenantKeyspace,
} from '@vantageedge/shared/cache-purge/purge-protocol';
import {
  type CacheIdentity,
  type CacheRequest,
  pathDigest,
  variantDigest,
  varySelector,
} from '@vantageedge/shared/gateway-policies/cache-key';
import type { CompiledCachePolicy } from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import { requestBypassReason } from '@vantageedge/shared/gateway-policies/request-bypass';
import {
  type RequestFreshness,
  requestFreshness,
} from '@vantageedge/shared/gateway-policies/request-freshness';
import { cookieHeader, headerList, sentHeader } from '@vantageedge/shared/http/header-values';
import type { Logger } from '@vantageedge/shared/observability/logger';
import { Counter, Gauge, type Registry } from 'prom-client';
import { hasNoContent } from '../http/no-content.js';
import { BoundCounter, CounterSeries } from '../observability/bound-metrics.js';
import {
  isCommandTimeout,
  type StoreCircuit,
  storeFailureReason,
  UncountedStoreFailure,
} from '../store-circuit/store-circuit.js';
import { createStoreCircuits, nodeField } from '../store-circuit/store-circuits.js';
import {
  type CacheEntry,
  type CacheRecord,
  entryHeader,
  hasValidator,
  recordSize,
  retentionMs,
} from './cache-entry.js';
import type { CacheStore } from './cache-store.js';
import {
  declaredLength,
  freshnessFor,
  responseVary,
  revalidatedStorageDecision,
  storageDecision,
  storedHeaders,
  type UpstreamResponse,
} from './cacheability.js';
import { clientHasCurrentCopy, NOT_MODIFIED_HEADERS } from './client-conditional.js';
import { CollectedBody } from './collected-body.js';
import { FILL_DEADLINE_MS, FillBudget } from './fill-budget.js';
import { L1Cache } from './l1-cache.js';
import { reusable } from './request-directives.js';
import type { Freshness } from './standard-freshness.js';
import { TenantStoreSlots, type TenantStoreSlotsOptions } from './tenant-store-slots.js';

export type CacheOutcome = 'HIT' | 'STALE' | 'MISS' | 'BYPASS';
/** What X-Cache says: a lookup's outcome, or REVALIDATED when the origin confirmed a stale entry (304). */
export type ServedOutcome = 'HIT' | 'STALE' | 'REVALIDATED';

/** The right to fill one key: given to exactly one request (the leader) per key and replica at a time. */
export interface CacheFill {
  /** What concurrent lookups coalesce on: the URL key, or a variant key once the URL is known to vary. */
  readonly key: string;
  /** The URL's own key (path, query, configured headers, caller); variants hang below it. */
  readonly urlKey: string;
  readonly policy: CompiledCachePolicy;
  readonly pathIndexKey: string;
  /** The normalised request path: its ancestor segments tag the stored response (purge by prefix). */
  readonly path: string;
  /** The filling request's headers as the origin received them: a varying response is keyed on them. */
  readonly headers: IncomingHttpHeaders;
  /** The filling request carried Authorization (storage needs the origin's consent on public routes). */
  readonly authorized: boolean;
  /** The filling request carried a Cookie (storage needs the origin's consent on public routes). */
  readonly withCookie: boolean;
  /**
   * A stale stored entry with a validator: the origin is asked conditionally (revalidationHeaders) and a
   * 304 is answered from it (revalidated()).
   */
  revalidating: CacheEntry | null;
  /** This fill's lease on the key across replicas (RedisCacheStore), given back once it is stored or dropped. */
  lease: { readonly key: string; readonly token: string } | null;
}

export type CacheLookup =
  | { readonly outcome: 'HIT'; readonly entry: CacheEntry; readonly key: string }
  /** Served stale (stale-while-revalidate). When `revalidation` is set this request should refresh the
   *  entry in the background: fetch the origin and call store(revalidation, response). */
  | {
      readonly outcome: 'STALE';
      readonly entry: CacheEntry;
      readonly key: string;
      readonly revalidation: CacheFill | null;
    }
  /** Go to the origin. With `fill`, this request is the leader: store(fill, …) or abandon(fill) afterwards;
   *  concurrent requests for the key wait for it. `staleIfError`: serve it if the origin fails. */
  | {
      readonly outcome: 'MISS';
      readonly key: string;
      readonly fill: CacheFill | null;
      readonly staleIfError: CacheEntry | null;
    }
  | { readonly outcome: 'BYPASS'; readonly reason: string };

/**
 * How a leader's origin response is taken once its status and headers are known (beginFill):
 * - `collect`: stream the body to the client and push every chunk into `body`; end() stores it.
 * - `not_storable`: the rules refuse it (status, Cache-Control, Vary: *, …); stream it through, X-Cache
 *   stays MISS.
 * - `over_budget`: the tenant's share of the replica's fill budget (or the budget itself) is used up, or
 *   the origin's Content-Length does not fit what is free of it; stream it through with X-Cache: BYPASS.
 * Either way the coalesced followers are released (or, for `collect`, woken by end()/abort()).
 */
export type FillStart =
  | { readonly outcome: 'collect'; readonly body: FillBody }
  | { readonly outcome: 'not_storable'; readonly reason: string }
  | { readonly outcome: 'over_budget' };

/** The body of a response being collected for the cache, chunk by chunk as it streams to the client. */
export interface FillBody {
  /**
   * One chunk as it is written to the client. The fill reserves its bytes as they arrive. Collecting
   * stops for good (and what was buffered is released) past the policy's max_body_bytes, when the
   * tenant's share of the fill budget (or the budget) has no room for it, or once the fill ran past its
   * deadline (fill-budget.ts). The response itself goes on; it is just not stored.
   */
  push(chunk: Buffer): void;
  /** Still collecting: false once collecting stopped or the fill ended (a reader with no client may stop). */
  readonly collecting: boolean;
  /** The body is complete: stores the response if it was collected whole; wakes the followers. */
  end(): Promise<boolean>;
  /** The exchange failed before the body ended: releases the buffer and the followers. */
  abort(): void;
}

export interface ResponseCacheOptions {
  /**
   * The shared tier: a RedisCacheStore shares entries and purges with every replica; a
   * MemoryCacheStore keeps them in this process (single-process mode).
   */
  store: CacheStore;
  /** L1 (per process, in front of the store) size bound in bytes. */
  l1MaxBytes: number;
  /** The part of the L1 one tenant's entries may hold; default TENANT_MEMORY_SHARE (a quarter). */
  l1TenantShare?: number | undefined;
  registry: Registry;
  logger: Logger;
  /** Variants kept per URL when the origin's responses vary (Vary); more are served but not stored. */
  maxVariantsPerUrl?: number | undefined;
  /** Bytes all in-flight fills of this replica may buffer together (fill-budget.ts); default 64 MiB. */
  fillBudgetBytes?: number | undefined;
  /** The part of that budget one tenant's fills may hold together; default TENANT_FILL_SHARE (a quarter). */
  fillTenantShare?: number | undefined;
  /** How long a fill may collect its body before it stops collecting; default FILL_DEADLINE_MS (30 s). */
  fillDeadlineMs?: number | undefined;
  /** How long followers wait for a leader's origin response before going to the origin themselves. */
  coalesceTimeoutMs?: number | undefined;
  /**
   * Misses across replicas: the first replica takes a lease on the key (for at most fillLeaseMs) and
   * fetches; the others serve stale when they can, else poll the store every fillPollMs for its fill,
   * for at most fillWaitMs, then go to the origin themselves.
   */
  fillLeaseMs?: number | undefined;
  fillWaitMs?: number | undefined;
  fillPollMs?: number | undefined;
  /** Consecutive store failures that open the circuit (store-circuit.ts), and how long it stays open. */
  circuitFailures?: number | undefined;
  halfOpenAfterMs?: number | undefined;
  /** Each tenant's share of this replica's calls to the store (tenant-store-slots.ts). */
  tenantStoreSlots?: TenantStoreSlotsOptions | undefined;
  /**
   * First pause before a failed purge-generation load is tried again (doubling, PREPARE_ATTEMPTS in
   * all): a replica compiling many tenants at once keeps Redis's short command timeout busy.
   */
  retryDelayMs?: number | undefined;
  /**
   * How often every known tenant's purge generations are read again (default 15 s; 0: never). Purge
   * messages are fire-and-forget: one lost while the subscriber moves to another node (a Redis Cluster
   * failover) or reconnects would otherwise leave a route or tenant purge unseen on this replica.
   */
  generationRefreshMs?: number | undefined;
  /** How long a route's generation the store dropped is still held (default 60 s). */
  forgottenRouteGraceMs?: number | undefined;
  now?: () => number;
}

/** How long a replica holds a route's generation the store dropped (its config without the route arrives meanwhile). */
const FORGOTTEN_ROUTE_GRACE_MS = 60_000;
const DEFAULT_GENERATION_REFRESH_MS = 15_000;

/**
 * Store commands timing out one after another, none answered between them, that may be the load of
 * large replies on the connection rather than a store gone: past them, timeouts open the circuit.
 */
const UNCOUNTED_TIMEOUTS_MAX = 32;

/** Attempts to load a tenant's purge generations before prepareTenant gives up (and rejects). */
const PREPARE_ATTEMPTS = 5;

export interface ResponseCache {
  /**
   * Load a tenant's purge generations (call when its snapshot is applied); lookups bypass until then.
   * A failed load is tried again with backoff; rejects only when the store kept failing.
   */
  prepareTenant(tenantId: string): Promise<void>;
  /**
   * Answers synchronously when it can (a fresh L1 entry, a bypass); a promise when it must wait for the
   * store or for the leader of a concurrent miss.
   */
  lookup(
    policy: CompiledCachePolicy,
    request: CacheRequest,
    identity: CacheIdentity,
  ): CacheLookup | Promise<CacheLookup>;
  /**
   * The leader's origin response has arrived (status and headers; body to come): collect it for the
   * cache, or stream it through (see FillStart). The way for a response the proxy streams.
   */
  beginFill(fill: CacheFill, method: string, status: number, headers: IncomingHttpHeaders): FillStart;
  /**
   * Stores the leader's complete origin response (body already in memory, null when it was too large)
   * if the rules allow; wakes followers either way. For callers that buffer the body themselves.
   */
  store(fill: CacheFill, method: string, response: UpstreamResponse): Promise<boolean>;
  /** The leader got no usable response (origin error): followers go to the origin themselves. */
  abandon(fill: CacheFill): void;
  /**
   * The origin answered a revalidation (fill.revalidating set) with 304: the stored entry with its
   * headers updated from the 304 (RFC 9111 §4.3.4) and its freshness recomputed, stored again (unless
   * the new headers forbid it) and handed to the followers. Answer the request with it (REVALIDATED).
   */
  revalidated(fill: CacheFill, headers: IncomingHttpHeaders): CacheEntry;
  /**
   * Writes a cached response: status, stored headers (never per-request ones: the current request's
   * X-Request-Id, RateLimit etc. already set on `res` stay), Age, X-Cache, body (none for HEAD).
   * `beforeHead` writes what belongs to this request's answer alone (the route's per-request response
   * headers) over the stored headers; Age, X-Cache and the framing are the gateway's.
   */
  writeEntry(
    res: ServerResponse,
    entry: CacheEntry,
    outcome: ServedOutcome,
    method: string,
    requestHeaders?: IncomingHttpHeaders,
    beforeHead?: (res: ServerResponse) => void,
  ): void;
  /** Unsafe method on a path: drop every cached variant of that path (all replicas). */
  invalidatePath(policy: CompiledCachePolicy, path: string): Promise<void>;
  purgeRoute(tenantId: string, routeId: string): Promise<void>;
  /**
   * The policy's route left the config (its tenant's replacement has no such route, or the tenant was
   * removed): its hit-ratio totals leave /metrics, and lookups still in flight on it count nowhere.
   */
  routeRetired(policy: CompiledCachePolicy): void;
  /**
   * The tenant left the config: its purge generations are forgotten (no longer read again at each
   * refresh) and its L1 copies freed. Applied again, it is prepared like a new tenant.
   */
  tenantRemoved(tenantId: string): void;
  purgeTenant(tenantId: string): Promise<void>;
  /** Drops the tenant's entries whose origin tagged them with one of `tags` (all replicas). */
  purgeTags(
    tenantId: string,
    tags: readonly string[],
    options?: { soft?: boolean | undefined },
  ): Promise<void>;
  /**
   * The purge generations this replica holds for the tenant: as many as the shared store does (a hard
   * purge of a tag or of the tenant forgets soft-purged tags, a route's delete its generation), never more.
   */
  heldGenerations(tenantId: string): { routes: number; softTags: number };
  close(): Promise<void>;
}

/** What a leader's fill produced: the response and the key it belongs to (a variant key if it varies). */
interface Filled {
  readonly entry: CacheEntry;
  readonly key: string;
  /** A stale entry served while another replica refreshes it (stale-while-revalidate). */
  readonly stale?: boolean;
}

interface Flight {
  promise: Promise<Filled | null>;
  resolve: (filled: Filled | null) => void;
  /** Ends the flight of a leader that never calls store/abandon; cleared when the flight ends. */
  giveUp: NodeJS.Timeout;
}

interface RouteTotals {
  tenant: string;
  route: string;
  hits: number;
  all: number;
}

/** What the cache keeps per compiled policy (so per route and snapshot). */
interface PolicyState {
  /** Lookup counter series per outcome, bound on the outcome's first lookup. */
  readonly counters: Partial<Record<CacheOutcome, CounterSeries>>;
  readonly total: RouteTotals;
  /** The route left the config: its lookups bind no new series (they would come back into /metrics). */
  retired: boolean;
  /** `c:{<tenant>}:<tenant gen>:<route>:<route gen>:` for the generations it was built with. */
  keyPrefix: string;
  tenantGeneration: number;
  routeGeneration: number;
}

/** The key of one variant of a URL whose responses vary on `varyOn`. */
function variantKey(urlKey: string, varyOn: readonly string[], headers: IncomingHttpHeaders): string {
  return `${urlKey}:${varySelector(varyOn, headers)}`;
}

/**
 * Response cache: a per-process L1 (LRU bounded by bytes) in front of a CacheStore (Redis shared by
 * replicas, or process memory).
 *
 * Keys: `c:{<tenant>}:<tenant generation>:<route>:<route generation>:<path digest>:<variant digest>`
 * (the URL key). A URL whose responses vary (the origin's Vary) holds a VaryMarker naming the request
 * headers; each variant lives at `<URL key>:<digest of those headers' values>`, at most
 * `maxVariantsPerUrl` of them. Purges bump a generation (the shared purge protocol: mirrored in every
 * replica and pushed to all of them), so old entries become unreachable at once and expire by TTL.
 * Unsafe methods drop a path's variants through a per-path index. Stored entries expire after
 * fresh + max(stale) time.
 */
export function createResponseCache(options: ResponseCacheOptions): ResponseCache {
  const { store: shared, logger } = options;
  const now = options.now ?? Date.now;
  const coalesceTimeoutMs = options.coalesceTimeoutMs ?? 10_000;
  const fillLeaseMs = options.fillLeaseMs ?? 10_000;
  const fillWaitMs = options.fillWaitMs ?? 5_000;
  const fillPollMs = options.fillPollMs ?? 20;
  const maxVariants = options.maxVariantsPerUrl ?? 16;
  const budget = new FillBudget(options.fillBudgetBytes ?? 64 * 1024 * 1024, options.fillTenantShare);
  const fillDeadlineMs = options.fillDeadlineMs ?? FILL_DEADLINE_MS;
  const generations = new Map<string, PurgeGenerations>();
  /**
   * Whether the tenant is served here: a fill begins only once its generations are loaded, and they
   * leave when the tenant does (tenantRemoved).
   */
  const serves = (tenantId: string): boolean => generations.has(tenantId);
  const loading = new Map<string, Promise<void>>();
  const flights = new Map<string, Flight>();
  const l1 = new L1Cache(options.l1MaxBytes, options.l1TenantShare);
  const storeSlots = new TenantStoreSlots(options.tenantStoreSlots);
  // Per circuit, so per node: each node's connection carries its own large replies.
  const timeoutsSinceAnswer = new WeakMap<StoreCircuit, number>();

  const circuits = createStoreCircuits({
    nodeOf: shared.nodeOf,
    failures: options.circuitFailures,
    halfOpenAfterMs: options.halfOpenAfterMs,
    onOpen: (node) =>
      logger.warn('cache store circuit opened; cache bypassed while the store is down', nodeField(node)),
    onClose: (node) => logger.info('cache store circuit closed', nodeField(node)),
  });

  const lookups = new BoundCounter({
    name: 'vantageedge_gateway_cache_lookups_total',
    help: 'Cache lookups by outcome (HIT, STALE, MISS, BYPASS)',
    labelNames: ['tenant', 'route', 'outcome'],
    registry: options.registry,
  });
  const storeErrors = new Counter({
    name: 'vantageedge_gateway_cache_store_errors_total',
    help: 'Cache store (Redis) calls that failed or were skipped (circuit open)',
    labelNames: ['reason'],
    registers: [options.registry],
  });
  const notStored = new Counter({
    name: 'vantageedge_gateway_cache_not_stored_total',
    help: 'Origin responses to a fill that were not stored, by reason (status, origin_cache_control, authorization, cookie, vary_star, too_many_variants, …)',
    labelNames: ['reason'],
    registers: [options.registry],
  });
  const overBudget = new Counter({
    name: 'vantageedge_gateway_cache_fill_budget_bypass_total',
    help: 'Fills not collected because the tenant’s share of the replica’s fill budget (GATEWAY_CACHE_FILL_BYTES) or the budget was used up: the response streamed through uncached',
    registers: [options.registry],
  });
  new Gauge({
    name: 'vantageedge_gateway_cache_fill_bytes',
    help: 'Bytes of origin responses buffered by cache fills in flight on this replica',
    registers: [options.registry],
    collect() {
      this.set(budget.used);
    },
  });
  const revalidations = new Counter({
    name: 'vantageedge_gateway_cache_revalidations_total',
    help: 'Conditional requests the cache sent to the origin for stale entries, by result (not_modified, modified)',
    labelNames: ['result'],
    registers: [options.registry],
  });
  const coalesced = new Counter({
    name: 'vantageedge_gateway_cache_coalesced_total',
    help: 'Requests that waited for another request to fetch the same key from the origin',
    registers: [options.registry],
  });
  const purges = new Counter({
    name: 'vantageedge_gateway_cache_purges_total',
    help: 'Purges applied by this replica (route, tenant, path)',
    labelNames: ['kind'],
    registers: [options.registry],
  });
  const purgeVisits = new Counter({
    name: 'vantageedge_gateway_cache_l1_purge_visits_total',
    help: "Memory-cache entries tenant, route and tag purges looked at (the purging tenant's, each one dropped)",
    registers: [options.registry],
  });
  /** Runs a purge of the L1, counting what it looked at: the time it held the event loop for. */
  const purgeL1 = (purge: () => void): void => {
    const before = l1.purgeVisits;
    purge();
    purgeVisits.inc(l1.purgeVisits - before);
  };
  /** Per tenant and route id, while the route is in the config (routeRetired drops it). */
  const totals = new Map<string, Map<string, RouteTotals>>();
  new Gauge({
    name: 'vantageedge_gateway_cache_hit_ratio',
    help: 'HIT+STALE / (HIT+STALE+MISS) since start, per tenant and route',
    labelNames: ['tenant', 'route'],
    registers: [options.registry],
    collect() {
      // Rebuilt from the totals: a retired route's series goes with its totals.
      this.reset();
      for (const byRoute of totals.values()) {
        for (const { tenant, route, hits, all } of byRoute.values()) {
          if (all > 0) this.set({ tenant, route }, hits / all);
        }
      }
    },
  });
  /** Per compiled policy, made on its first lookup: no label lookups or key prefix building per request. */
  const policyState = new WeakMap<CompiledCachePolicy, PolicyState>();
  const stateOf = (policy: CompiledCachePolicy): PolicyState => {
    let state = policyState.get(policy);
    if (state) return state;
    let byRoute = totals.get(policy.tenantId);
    if (!byRoute) {
      byRoute = new Map();
      totals.set(policy.tenantId, byRoute);
    }
    // Routes folded into `other` share its totals.
    let total = byRoute.get(policy.metricsRoute);
    if (!total) {
      total = { tenant: policy.tenantId, route: policy.metricsRoute, hits: 0, all: 0 };
      byRoute.set(policy.metricsRoute, total);
    }
    state = {
      counters: {},
      total,
      retired: false,
      keyPrefix: '',
      tenantGeneration: -1,
      routeGeneration: -1,
    };
    policyState.set(policy, state);
    return state;
  };
  const count = (state: PolicyState, outcome: CacheOutcome) => {
    let series = state.counters[outcome];
    if (series === undefined) {
      const { tenant, route } = state.total;
      // Once per policy and outcome, not per request.
      series = state.retired
        ? new CounterSeries({ tenant, route, outcome })
        : lookups.series([tenant, route, outcome]);
      state.counters[outcome] = series;
    }
    series.inc();
    if (outcome === 'BYPASS') return;
    state.total.all++;
    if (outcome !== 'MISS') state.total.hits++;
  };

  /** Frees the L1 copies a purge made unreachable: the tenant's, or one route's of it. */
  const dropFromL1 = (tenantId: string, routeId?: string): void => {
    purgeL1(() => (routeId === undefined ? l1.deleteTenant(tenantId) : l1.deleteRoute(tenantId, routeId)));
  };

  /**
   * Purges that arrived while a load of the tenant's generations ran (one record per load): merged into
   * what it loaded, which may have been read before them. Nothing else the replica knew before the load
   * is: the store's generations are the ones in force (its hard purges forget soft-purged tags, a route's
   * delete forgets the route), and a replica keeping every tag and route it ever saw grew without bound
   * under a tenant's purge-and-delete churn.
   */
  const purgedDuringLoads = new Map<string, Set<PurgeGenerations>>();

  const loadGenerations = async (tenantId: string): Promise<void> => {
    const arrived: PurgeGenerations = { tenant: 0, routes: new Map(), softTags: new Map() };
    let watching = purgedDuringLoads.get(tenantId);
    if (watching === undefined) {
      watching = new Set();
      purgedDuringLoads.set(tenantId, watching);
    }
    watching.add(arrived);
    let loaded: PurgeGenerations;
    try {
      loaded = await shared.generations(tenantId);
    } finally {
      watching.delete(arrived);
      if (watching.size === 0) purgedDuringLoads.delete(tenantId);
    }
    // The tenant left the config while they were read: keeping them would hold them for good.
    if (!generations.has(tenantId) && !loading.has(tenantId)) return;
    loaded.tenant = Math.max(loaded.tenant, arrived.tenant);
    for (const [route, generation] of arrived.routes)
      loaded.routes.set(route, Math.max(generation, loaded.routes.get(route) ?? 0));
    for (const [tag, at] of arrived.softTags)
      loaded.softTags.set(tag, Math.max(at, loaded.softTags.get(tag) ?? 0));
    const known = generations.get(tenantId);
    if (known) {
      // A purge whose message this replica missed: its L1 copies can no longer be reached, free them.
      if (loaded.tenant > known.tenant) dropFromL1(tenantId);
      for (const [route, generation] of loaded.routes)
        if (generation > (known.routes.get(route) ?? 0)) dropFromL1(tenantId, route);
      // Never go back: the tenant generation only grows.
      loaded.tenant = Math.max(loaded.tenant, known.tenant);
      keepForgottenRoutesAwhile(tenantId, known, loaded);
    }
    generations.set(tenantId, loaded);
  };

  /**
   * Since the store dropped them, per tenant, the routes whose generation this replica still holds. The
   * control plane drops a route's generation as it deletes the route, and this replica may still serve
   * the route until its config without it arrives: read as generation 0 meanwhile, the route would reach
   * what it stored before its purges again. So a replica holds on to it a while (a minute).
   */
  const forgottenSince = new Map<string, Map<string, number>>();
  const forgottenRouteGraceMs = options.forgottenRouteGraceMs ?? FORGOTTEN_ROUTE_GRACE_MS;
  const keepForgottenRoutesAwhile = (
    tenantId: string,
    known: PurgeGenerations,
    loaded: PurgeGenerations,
  ): void => {
    let since = forgottenSince.get(tenantId);
    const at = now();
    for (const [route, generation] of known.routes) {
      if (loaded.routes.has(route)) {
        since?.delete(route);
        continue;
      }
      if (since === undefined) {
        since = new Map();
        forgottenSince.set(tenantId, since);
      }
      const first = since.get(route) ?? at;
      if (at - first >= forgottenRouteGraceMs) {
        since.delete(route);
        continue;
      }
      since.set(route, first);
      loaded.routes.set(route, generation);
    }
    if (since?.size === 0) forgottenSince.delete(tenantId);
  };

  const retryDelayMs = options.retryDelayMs ?? 100;
  /** A load that failed (e.g. a command timeout while startup keeps the event loop busy) is retried. */
  const loadWithRetries = async (tenantId: string): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        await loadGenerations(tenantId);
        return;
      } catch (error) {
        if (attempt === PREPARE_ATTEMPTS) throw error;
        await new Promise((resolve) => setTimeout(resolve, retryDelayMs * 2 ** (attempt - 1)).unref());
      }
    }
  };

  const prepareTenant = (tenantId: string): Promise<void> => {
    const pending = loading.get(tenantId);
    if (pending) return pending;
    const load = loadWithRetries(tenantId).finally(() => {
      // A removal meanwhile may have been followed by another prepare: that one's load stays.
      if (loading.get(tenantId) === load) loading.delete(tenantId);
    });
    loading.set(tenantId, load);
    return load;
  };

  const applyPurge = (message: CachePurgeMessage) => {
    purges.labels({ kind: message.kind }).inc();
    if (message.kind === 'path') {
      l1.deletePath(message.pathIndexKey);
      return;
    }
    // The tenant's generations as this replica knows them, and those of every load running.
    const holders = [...(purgedDuringLoads.get(message.tenantId) ?? [])];
    const known = generations.get(message.tenantId);
    if (known !== undefined) holders.push(known);
    if (message.kind === 'tags') {
      const softAt = message.softAt;
      if (softAt === undefined) {
        purgeL1(() => l1.deleteTagged(message.tenantId, message.tags));
        // Its entries are gone: the store forgot its soft purge too.
        for (const holder of holders) for (const tag of message.tags) holder.softTags.delete(tag);
        return;
      }
      for (const { softTags } of holders)
        for (const tag of message.tags) softTags.set(tag, Math.max(softAt, softTags.get(tag) ?? 0));
      return;
    }
    if (message.kind === 'tenant') {
      for (const holder of holders) {
        holder.tenant = Math.max(holder.tenant, message.generation);
        // Every entry stored before it is unreachable: the store forgot the soft purges too.
        holder.softTags.clear();
      }
      dropFromL1(message.tenantId);
    } else {
      for (const { routes } of holders)
        routes.set(message.routeId, Math.max(routes.get(message.routeId) ?? 0, message.generation));
      dropFromL1(message.tenantId, message.routeId);
    }
  };

  /**
   * One tenant after another: a replica with many tenants does not burst its Redis command timeout.
   * Asked for during a sweep, another sweep follows (the running one may have read too early).
   */
  let refreshing = false;
  let refreshAgain = false;
  const refreshGenerations = async () => {
    if (refreshing) {
      refreshAgain = true;
      return;
    }
    refreshing = true;
    try {
      do {
        refreshAgain = false;
        for (const tenantId of [...generations.keys()]) {
          if (generations.has(tenantId)) await loadGenerations(tenantId).catch(() => {});
        }
      } while (refreshAgain);
    } finally {
      refreshing = false;
    }
  };
  const generationRefreshMs = options.generationRefreshMs ?? DEFAULT_GENERATION_REFRESH_MS;
  const refreshTimer =
    generationRefreshMs > 0 ? setInterval(() => void refreshGenerations(), generationRefreshMs) : null;
  refreshTimer?.unref();

  shared.subscribe({
    onPurge: applyPurge,
    // Purge messages may have been missed: reload every known tenant's generations.
    onResync() {
      void refreshGenerations();
    },
  });

  /** `c:{<tenant>}:<tenant gen>:<route>:<route gen>:<path digest>`: the URL keys and path index below it. */
  const pathBase = (
    policy: CompiledCachePolicy,
    state: PolicyState,
    path: string,
    known: PurgeGenerations,
  ) => {
    const routeGeneration = known.routes.get(policy.routeId) ?? 0;
    if (state.tenantGeneration !== known.tenant || state.routeGeneration !== routeGeneration) {
      state.keyPrefix = `${tenantKeyspace('', policy.tenantId)}${known.tenant}:${policy.routeId}:${routeGeneration}:`;
      state.tenantGeneration = known.tenant;
      state.routeGeneration = routeGeneration;
    }
    return state.keyPrefix + pathDigest(path);
  };

  /**
   * The entry as a soft purge of one of its tags left it: stale from the purge on (if it was stored
   * before it), still there for revalidation and stale-if-error.
   */
  const softened = (tenantId: string, entry: CacheEntry): CacheEntry => {
    if (entry.tags.length === 0) return entry;
    const softTags = generations.get(tenantId)?.softTags;
    if (softTags === undefined || softTags.size === 0) return entry;
    let purgedAt = 0;
    for (const tag of entry.tags) purgedAt = Math.max(purgedAt, softTags.get(tag) ?? 0);
    if (purgedAt <= entry.storedAt) return entry;
    const freshMs = Math.min(entry.freshMs, purgedAt - entry.storedAt);
    return freshMs === entry.freshMs ? entry : { ...entry, freshMs };
  };

  const startFlight = (key: string): void => {
    let resolve: (filled: Filled | null) => void = () => {};
    const promise = new Promise<Filled | null>((r) => {
      resolve = r;
    });
    // A leader that never calls store/abandon must not block the key forever.
    const giveUp = setTimeout(() => {
      if (flights.get(key) === flight) finishFlight(key, null);
    }, coalesceTimeoutMs).unref();
    const flight: Flight = { promise, resolve, giveUp };
    flights.set(key, flight);
  };

  const releaseLease = (fill: CacheFill): void => {
    const lease = fill.lease;
    if (lease === null) return;
    fill.lease = null;
    const withLargeCalls = storeSlots.largeCallsInFlight;
    const tenantId = fill.policy.tenantId;
    void putShared(tenantId, () =>
      callShared(tenantId, withLargeCalls, () => shared.releaseLease(lease.key, lease.token)),
    );
  };

  /** The fill ends without a stored response: followers go on, the lease is given back. */
  const dropFill = (fill: CacheFill): void => {
    finishFlight(fill.key, null);
    releaseLease(fill);
  };

  const finishFlight = (key: string, filled: Filled | null) => {
    const flight = flights.get(key);
    if (!flight) return;
    flights.delete(key);
    // Its timer would otherwise hold the flight, and through its promise the response, till it fires.
    clearTimeout(flight.giveUp);
    flight.resolve(filled);
  };

  const waitFor = (flight: Flight): Promise<Filled | null> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => resolve(null), coalesceTimeoutMs);
      void flight.promise.then((filled) => {
        clearTimeout(timer);
        resolve(filled);
      });
    });

  /**
   * A store call through the circuit (`withLargeCalls`: a large call was in flight when it was sent, or
   * it is one, see StoreSlot). A command that timed out while large replies held
   * up the connection fails alone: it does not count towards opening the circuit the lookups of every
   * tenant on that node go through (unless the circuit is already on trial). A node that stopped
   * answering altogether still opens it: past UNCOUNTED_TIMEOUTS_MAX timeouts with no answer between them.
   */
  const callShared = <T>(tenantId: string, withLargeCalls: boolean, call: () => Promise<T>): Promise<T> => {
    const circuit = circuits.of(tenantId);
    return circuit.run(async () => {
      try {
        const answer = await call();
        timeoutsSinceAnswer.set(circuit, 0);
        return answer;
      } catch (error) {
        if (!isCommandTimeout(error)) throw error;
        const timeouts = (timeoutsSinceAnswer.get(circuit) ?? 0) + 1;
        timeoutsSinceAnswer.set(circuit, timeouts);
        const loadNotOutage = timeouts <= UNCOUNTED_TIMEOUTS_MAX && !circuit.degraded;
        if (withLargeCalls && loadNotOutage) throw new UncountedStoreFailure(error);
        throw error;
      }
    });
  };

  /**
   * The tenant's record under `key` from the store, within the tenant's share of the replica's store
   * calls: `busy` when the tenant has too many waiting already (only its own lookups bypass).
   */
  const readShared = async (
    tenantId: string,
    key: string,
  ): Promise<CacheRecord | null | 'unavailable' | 'busy'> => {
    if (circuits.of(tenantId).skipping) {
      storeErrors.labels({ reason: 'circuit_open' }).inc();
      return 'unavailable';
    }
    const slot = await storeSlots.acquire(tenantId);
    if (slot === null) {
      storeErrors.labels({ reason: 'tenant_busy' }).inc();
      return 'busy';
    }
    // Unknown for a failed read: what the tenant's reads were expected to move stays as it was.
    let moved: number | undefined;
    try {
      const record = await callShared(tenantId, slot.withLargeCalls, () => shared.get(key));
      moved = record === null ? 0 : recordSize(record);
      return record;
    } catch (error) {
      storeErrors.labels({ reason: storeFailureReason(error) }).inc();
      return 'unavailable';
    } finally {
      slot.release(moved);
    }
  };

  const isRecord = (stored: CacheRecord | null | 'unavailable' | 'busy'): stored is CacheRecord | null =>
    stored !== 'unavailable' && stored !== 'busy';

  /**
   * Finds the entry for a request below its URL key. A fresh entry in the L1 is answered at once,
   * without a promise (the hot path). Otherwise one request per key (the leader) reads the store or
   * goes to the origin and the others coalesce behind it. A URL known to vary is looked up at the
   * request's variant key. `mayRetry`: a follower whose leader filled another variant looks once more.
   */
  const find = (
    policy: CompiledCachePolicy,
    state: PolicyState,
    request: CacheRequest,
    urlKey: string,
    pathIndexKey: string,
    wanted: RequestFreshness | null,
    mayRetry: boolean,
  ): CacheLookup | Promise<CacheLookup> => {
    let key = urlKey;
    let record = l1.get(urlKey);
    if (record?.kind === 'vary') {
      key = variantKey(urlKey, record.varyOn, request.headers);
      record = l1.get(key);
    }
    let entry = record?.kind === 'response' ? record : null;
    if (entry !== null && entry.tags.length > 0) entry = softened(policy.tenantId, entry);
    const at = now();
    if (entry !== null && wanted === null && at - entry.storedAt < entry.freshMs) {
      count(state, 'HIT');
      return { outcome: 'HIT', entry, key };
    }
    if (entry !== null && wanted !== null) {
      const reuse = reusable(entry, at, wanted);
      if (reuse !== null) {
        count(state, reuse);
        return reuse === 'HIT'
          ? { outcome: 'HIT', entry, key }
          : { outcome: 'STALE', entry, key, revalidation: null };
      }
    }
    if (wanted?.onlyIfCached) return onlyIfCachedMiss(state);
    const flight = flights.get(key);
    if (flight) {
      // Another request is already fetching this key from the origin (or revalidating it).
      if (entry && wanted === null && at - entry.storedAt < entry.freshMs + entry.staleWhileRevalidateMs) {
        count(state, 'STALE');
        return { outcome: 'STALE', entry, key, revalidation: null };
      }
      const stale = entry && wanted === null ? staleIfErrorEntry(entry, at) : null;
      return follow(policy, state, request, urlKey, pathIndexKey, key, flight, stale, wanted, mayRetry);
    }
    // Claim the key before any await so concurrent misses coalesce behind this request.
    startFlight(key);
    const fill: CacheFill = {
      key,
      urlKey,
      policy,
      pathIndexKey,
      path: request.path,
      headers: request.headers,
      authorized: request.headers.authorization !== undefined,
      withCookie: cookieHeader(request.headers.cookie) !== undefined,
      revalidating: null,
      lease: null,
    };
    return readThrough(state, request, fill, wanted, entry);
  };

  /** only-if-cached and nothing the client accepts is stored: the stage answers 504 (RFC 9111 §5.2.1.7). */
  const onlyIfCachedMiss = (state: PolicyState): CacheLookup => {
    count(state, 'BYPASS');
    return { outcome: 'BYPASS', reason: 'only_if_cached' };
  };

  const staleIfErrorEntry = (entry: CacheEntry, at: number): CacheEntry | null =>
    at - entry.storedAt < entry.freshMs + entry.staleIfErrorMs ? entry : null;

  /** This request waits for the leader of `key`. */
  const follow = async (
    policy: CompiledCachePolicy,
    state: PolicyState,
    request: CacheRequest,
    urlKey: string,
    pathIndexKey: string,
    key: string,
    flight: Flight,
    staleIfError: CacheEntry | null,
    wanted: RequestFreshness | null,
    mayRetry: boolean,
  ): Promise<CacheLookup> => {
    coalesced.inc();
    const filled = await waitFor(flight);
    if (filled) {
      const mine =
        filled.entry.varyOn.length === 0 ? urlKey : variantKey(urlKey, filled.entry.varyOn, request.headers);
      if (mine === filled.key) {
        if (filled.stale) {
          count(state, 'STALE');
          return { outcome: 'STALE', entry: filled.entry, key: filled.key, revalidation: null };
        }
        count(state, 'HIT');
        return { outcome: 'HIT', entry: filled.entry, key: filled.key };
      }
      // The leader's response varies and this request is another variant: the marker is known now.
      if (mayRetry) return find(policy, state, request, urlKey, pathIndexKey, wanted, false);
    }
    count(state, 'MISS');
    return { outcome: 'MISS', key, fill: null, staleIfError };
  };

  /** The leader found nothing in the L1: the store, then (on a miss) the origin. */
  const readThrough = async (
    state: PolicyState,
    request: CacheRequest,
    fill: CacheFill,
    wanted: RequestFreshness | null,
    known: CacheEntry | null = null,
  ): Promise<CacheLookup> => {
    const { urlKey, pathIndexKey } = fill;
    let entryKey = fill.key;
    const { tenantId } = fill.policy;
    let stored = await readShared(tenantId, entryKey);
    if (isRecord(stored) && stored?.kind === 'response') stored = softened(tenantId, stored);
    if (known !== null) {
      // This replica's copy is stale: another replica may have refreshed the shared one meanwhile.
      const newer = isRecord(stored) && stored?.kind === 'response' && stored.storedAt > known.storedAt;
      if (!newer) return lead(state, request, fill, known, entryKey, wanted);
    }
    if (isRecord(stored) && stored?.kind === 'vary') {
      l1.set(urlKey, stored, pathIndexKey);
      entryKey = variantKey(urlKey, stored.varyOn, request.headers);
      stored = await readShared(tenantId, entryKey);
      if (isRecord(stored) && stored?.kind === 'response') stored = softened(tenantId, stored);
    }
    if (!isRecord(stored)) {
      dropFill(fill);
      count(state, 'BYPASS');
      return { outcome: 'BYPASS', reason: stored === 'busy' ? 'store_busy' : 'store_unavailable' };
    }
    if (stored?.kind !== 'response') {
      if (wanted?.onlyIfCached) {
        dropFill(fill);
        return onlyIfCachedMiss(state);
      }
      return claim(state, request, fill, null, wanted, () => {
        count(state, 'MISS');
        return { outcome: 'MISS', key: fill.key, fill, staleIfError: null };
      });
    }
    l1.set(entryKey, stored, pathIndexKey, entryKey === urlKey ? undefined : urlKey);
    return lead(state, request, fill, stored, entryKey, wanted);
  };

  /**
   * Takes the key's lease across replicas for this fill. True when taken, or when the store cannot be
   * asked (then every replica goes on alone, as without Redis).
   */
  const takeLease = async (fill: CacheFill): Promise<boolean> => {
    const tenantId = fill.policy.tenantId;
    if (circuits.of(tenantId).skipping) return true;
    const key = `${fill.key}:lease`;
    try {
      const token = await callShared(tenantId, storeSlots.largeCallsInFlight, () =>
        shared.acquireLease(key, fillLeaseMs),
      );
      if (token === null) return false;
      fill.lease = { key, token };
      return true;
    } catch (error) {
      storeErrors.labels({ reason: storeFailureReason(error) }).inc();
      return true;
    }
  };

  /** What another replica's fill of `fill.key` stored: a fresh response for this request, or null. */
  const readFilled = async (fill: CacheFill, request: CacheRequest): Promise<Filled | null> => {
    let key = fill.key;
    let stored = await readShared(fill.policy.tenantId, key);
    if (isRecord(stored) && stored?.kind === 'vary') {
      l1.set(fill.urlKey, stored, fill.pathIndexKey);
      key = variantKey(fill.urlKey, stored.varyOn, request.headers);
      stored = await readShared(fill.policy.tenantId, key);
    }
    if (!isRecord(stored) || stored?.kind !== 'response') return null;
    stored = softened(fill.policy.tenantId, stored);
    if (reusable(stored, now(), null) !== 'HIT') return null;
    l1.set(key, stored, fill.pathIndexKey, key === fill.urlKey ? undefined : fill.urlKey);
    return { entry: stored, key };
  };

  /**
   * This request is about to go to the origin for `fill.key` (`proceed`). One replica at a time does:
   * the one holding the key's lease. The others serve `swrStale` at once when they have it, else wait
   * for the holder's fill (polling the store), take the lease over when it is given back without one,
   * and after fillWaitMs go to the origin anyway. A client that asked for revalidation goes at once.
   */
  const claim = async (
    state: PolicyState,
    request: CacheRequest,
    fill: CacheFill,
    swrStale: Filled | null,
    wanted: RequestFreshness | null,
    proceed: () => CacheLookup,
  ): Promise<CacheLookup> => {
    if (wanted !== null || (await takeLease(fill))) return proceed();
    if (swrStale !== null) {
      finishFlight(fill.key, { ...swrStale, stale: true });
      count(state, 'STALE');
      return { outcome: 'STALE', entry: swrStale.entry, key: swrStale.key, revalidation: null };
    }
    const deadline = now() + fillWaitMs;
    while (now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, fillPollMs));
      // The lease first, then the look: a holder stores its fill before it gives the lease back, so a
      // lease found free here comes with the fill in the store when there is one.
      const leased = await takeLease(fill);
      const filled = await readFilled(fill, request);
      if (filled !== null) {
        releaseLease(fill);
        finishFlight(fill.key, filled);
        count(state, 'HIT');
        return { outcome: 'HIT', entry: filled.entry, key: filled.key };
      }
      if (leased) return proceed();
    }
    return proceed();
  };

  /** The leader holds `entry` (found at `entryKey`): fresh, stale (revalidate it) or expired. */
  const lead = (
    state: PolicyState,
    request: CacheRequest,
    fill: CacheFill,
    entry: CacheEntry,
    entryKey: string,
    wanted: RequestFreshness | null,
  ): CacheLookup | Promise<CacheLookup> => {
    const at = now();
    const age = at - entry.storedAt;
    const reuse = reusable(entry, at, wanted);
    if (reuse !== null) {
      if (age < entry.freshMs) finishFlight(fill.key, { entry, key: entryKey });
      else dropFill(fill);
      count(state, reuse);
      return reuse === 'HIT'
        ? { outcome: 'HIT', entry, key: entryKey }
        : { outcome: 'STALE', entry, key: entryKey, revalidation: null };
    }
    if (wanted?.onlyIfCached) {
      dropFill(fill);
      return onlyIfCachedMiss(state);
    }
    if (hasValidator(entry)) fill.revalidating = entry;
    if (wanted === null && age >= entry.freshMs && age < entry.freshMs + entry.staleWhileRevalidateMs) {
      // The lease holder refreshes in the background while everyone gets STALE.
      return claim(state, request, fill, { entry, key: entryKey }, wanted, () => {
        count(state, 'STALE');
        return { outcome: 'STALE', entry, key: entryKey, revalidation: fill };
      });
    }
    return claim(state, request, fill, null, wanted, () => {
      count(state, 'MISS');
      return {
        outcome: 'MISS',
        key: fill.key,
        fill,
        staleIfError: wanted === null ? staleIfErrorEntry(entry, now()) : null,
      };
    });
  };

  const lookup = (
    policy: CompiledCachePolicy,
    request: CacheRequest,
    identity: CacheIdentity,
  ): CacheLookup | Promise<CacheLookup> => {
    const state = stateOf(policy);
    const bypass = requestBypassReason(policy, request);
    if (bypass) {
      count(state, 'BYPASS');
      return { outcome: 'BYPASS', reason: bypass };
    }
    const known = generations.get(policy.tenantId);
    if (!known) {
      // A retired route's request may be one of a tenant removed meanwhile: loading would keep it for good.
      if (!state.retired) void prepareTenant(policy.tenantId).catch(() => {});
      count(state, 'BYPASS');
      return { outcome: 'BYPASS', reason: 'warming' };
    }
    const variant = variantDigest(policy, request, identity);
    if (variant === null) {
      count(state, 'BYPASS');
      return { outcome: 'BYPASS', reason: 'anonymous_on_per_caller_route' };
    }
    const base = pathBase(policy, state, request.path, known);
    const wanted = requestFreshness(policy, request.headers);
    return find(policy, state, request, `${base}:${variant}`, `${base}:idx`, wanted, true);
  };

  const putShared = async (tenantId: string, write: () => Promise<unknown>): Promise<unknown> => {
    try {
      return await circuits.of(tenantId).run(write);
    } catch (error) {
      storeErrors.labels({ reason: storeFailureReason(error) }).inc();
      return undefined;
    }
  };

  /**
   * A write of the tenant's `entry` within the tenant's share of the replica's store calls (its size is
   * known): `tenant_busy`, not written, when the tenant has too many calls waiting already;
   * `tenant_removed`, not written, when the tenant left this replica's config while the write waited.
   */
  const writeShared = async <T>(
    tenantId: string,
    entry: CacheEntry,
    write: () => Promise<T>,
  ): Promise<T | 'tenant_busy' | 'tenant_removed' | undefined> => {
    const slot = await storeSlots.acquire(tenantId, recordSize(entry));
    if (slot === null) return 'tenant_busy';
    try {
      // Checked as the write is sent: one behind the replica's forget of a removed tenant would write
      // its accounting back (tenantRemoved).
      return await callShared<T | 'tenant_removed'>(tenantId, slot.withLargeCalls, () =>
        serves(tenantId) ? write() : Promise.resolve('tenant_removed'),
      );
    } catch (error) {
      storeErrors.labels({ reason: storeFailureReason(error) }).inc();
      return undefined;
    } finally {
      slot.release();
    }
  };

  /** Stores a response the rules allow (freshness decided) and wakes the followers. */
  const commit = async (
    fill: CacheFill,
    status: number,
    headers: IncomingHttpHeaders,
    body: Buffer,
    freshness: Freshness,
  ): Promise<boolean> => {
    const entry = entryOf(fill, status, headers, body, freshness);
    return commitEntry(fill, entry);
  };

  const entryOf = (
    fill: CacheFill,
    status: number,
    headers: IncomingHttpHeaders,
    body: Buffer,
    freshness: Freshness,
  ): CacheEntry => {
    const vary = responseVary(headers);
    return {
      kind: 'response',
      status,
      headers: storedHeaders(headers, fill.policy.cacheSetCookie),
      body,
      // Its birth: an Age the origin (or a cache before it) reported counts (RFC 9111 §4.2.3).
      storedAt: now() - freshness.ageMs,
      freshMs: freshness.freshMs,
      staleWhileRevalidateMs: freshness.staleWhileRevalidateMs,
      staleIfErrorMs: freshness.staleIfErrorMs,
      mustRevalidate: freshness.mustRevalidate,
      immutable: freshness.immutable,
      tags: [...responseTags(headers, fill.policy.tagHeaders), ...pathTags(fill.path)],
      varyOn: vary === '*' ? [] : vary,
    };
  };

  const tagIndexKeys = (policy: CompiledCachePolicy, entry: CacheEntry): string[] =>
    entry.tags.map((tag) => tagIndexKey('', policy.tenantId, tag));

  const commitEntry = async (fill: CacheFill, entry: CacheEntry): Promise<boolean> => {
    try {
      return await commitShared(fill, entry);
    } finally {
      // After the shared write: a replica waiting for this fill finds it instead of taking the lease.
      releaseLease(fill);
    }
  };

  const commitShared = async (fill: CacheFill, entry: CacheEntry): Promise<boolean> => {
    const { policy, urlKey, pathIndexKey } = fill;
    if (!serves(policy.tenantId)) {
      // Its tombstone arrived while the fill ran: nothing of a tenant this replica dropped is kept.
      notStored.labels({ reason: 'tenant_removed' }).inc();
      dropFill(fill);
      return false;
    }
    const ttlMs = retentionMs(entry, policy.keepStaleMs) - (now() - entry.storedAt);
    if (ttlMs <= 0) {
      notStored.labels({ reason: 'already_expired' }).inc();
      dropFill(fill);
      return false;
    }
    if (entry.varyOn.length === 0) {
      l1.set(urlKey, entry, pathIndexKey);
      finishFlight(fill.key, { entry, key: urlKey });
      const put = await writeShared(policy.tenantId, entry, () =>
        shared.putResponse({
          key: urlKey,
          entry,
          ttlMs,
          pathIndexKey,
          tagIndexKeys: tagIndexKeys(policy, entry),
          tenantMaxBytes: policy.tenantMaxBytes,
        }),
      );
      if (put === 'over_tenant_bound') {
        // Larger than the tenant's whole share of the store: this replica does not keep it either.
        l1.delete(urlKey);
        notStored.labels({ reason: 'over_tenant_bound' }).inc();
        return false;
      }
      if (put === 'too_large_to_share' || put === 'tenant_busy' || put === 'tenant_removed')
        notStored.labels({ reason: put }).inc();
      return true;
    }
    const key = variantKey(urlKey, entry.varyOn, fill.headers);
    // The followers asked for this variant at the same time: they get the response either way.
    finishFlight(fill.key, { entry, key });
    if (l1.otherVariants(urlKey, key) >= maxVariants) {
      notStored.labels({ reason: 'too_many_variants' }).inc();
      return false;
    }
    l1.set(urlKey, { kind: 'vary', varyOn: entry.varyOn }, pathIndexKey);
    l1.set(key, entry, pathIndexKey, urlKey);
    const put = await writeShared(policy.tenantId, entry, () =>
      shared.putVariant({
        key,
        urlKey,
        entry,
        ttlMs,
        pathIndexKey,
        maxVariants,
        tagIndexKeys: tagIndexKeys(policy, entry),
        tenantMaxBytes: policy.tenantMaxBytes,
      }),
    );
    if (put === 'over_tenant_bound') {
      l1.delete(key);
      notStored.labels({ reason: 'over_tenant_bound' }).inc();
      return false;
    }
    if (put === 'too_many_variants') {
      // Other replicas filled the URL's variants first.
      l1.delete(key);
      notStored.labels({ reason: 'too_many_variants' }).inc();
      return false;
    }
    // Kept in this replica's L1 only: larger than one command to the shared store may move, or the
    // tenant has too many store calls waiting on this replica (a removed tenant's L1 entries went with it).
    if (put === 'too_large_to_share' || put === 'tenant_busy' || put === 'tenant_removed')
      notStored.labels({ reason: put }).inc();
    return true;
  };

  const refuse = (fill: CacheFill, reason: string): void => {
    notStored.labels({ reason }).inc();
    dropFill(fill);
  };

  /** A revalidation the origin answered with a full response: the stored entry changed. */
  const replaced = (fill: CacheFill): void => {
    if (fill.revalidating === null) return;
    fill.revalidating = null;
    revalidations.labels({ result: 'modified' }).inc();
  };

  const store = async (fill: CacheFill, method: string, response: UpstreamResponse): Promise<boolean> => {
    replaced(fill);
    const freshness = freshnessFor(fill.policy, method, response, fill);
    if ('notStored' in freshness) {
      refuse(fill, freshness.notStored);
      return false;
    }
    return commit(fill, response.status, response.headers, response.body!, freshness);
  };

  const beginFill = (
    fill: CacheFill,
    method: string,
    status: number,
    headers: IncomingHttpHeaders,
  ): FillStart => {
    replaced(fill);
    const decision = storageDecision(fill.policy, method, status, headers, fill);
    if ('notStored' in decision) {
      refuse(fill, decision.notStored);
      return { outcome: 'not_storable', reason: decision.notStored };
    }
    const tenantId = fill.policy.tenantId;
    // An announced length is only checked, never reserved: bytes are reserved as they arrive, so an
    // origin that announces much and sends little holds only what it sent.
    const declared = declaredLength(headers);
    if (budget.exhaustedFor(tenantId) || (declared !== undefined && declared > budget.available(tenantId))) {
      overBudget.inc();
      dropFill(fill);
      return { outcome: 'over_budget' };
    }
    const maxBytes = fill.policy.maxBodyBytes;
    let reserved = 0;
    let collected: CollectedBody | null = new CollectedBody();
    let settled = false;
    const giveBack = () => {
      clearTimeout(deadline);
      collected = null;
      budget.release(tenantId, reserved);
      reserved = 0;
    };
    const stopCollecting = (reason: 'body_too_large' | 'fill_budget' | 'fill_deadline') => {
      if (collected === null) return;
      giveBack();
      if (reason === 'fill_budget') overBudget.inc();
      else notStored.labels({ reason }).inc();
      dropFill(fill);
    };
    // A fill that takes too long stops collecting even when no further chunk comes (a trickling origin).
    const deadline = setTimeout(() => stopCollecting('fill_deadline'), fillDeadlineMs);
    deadline.unref();
    return {
      outcome: 'collect',
      body: {
        get collecting() {
          return collected !== null && !settled;
        },
        push(chunk) {
          if (collected === null) return;
          if (reserved + chunk.length > maxBytes) return stopCollecting('body_too_large');
          if (!budget.tryReserve(tenantId, chunk.length)) return stopCollecting('fill_budget');
          reserved += chunk.length;
          collected.append(chunk);
        },
        async end() {
          if (settled) return false;
          settled = true;
          if (collected === null) return false;
          const body = collected.concat();
          giveBack();
          return commit(fill, status, headers, body, decision);
        },
        abort() {
          if (settled) return;
          settled = true;
          if (collected !== null) giveBack();
          dropFill(fill);
        },
      },
    };
  };

  const purge = async (target: PurgeTarget): Promise<void> => {
    await prepareTenant(target.tenantId);
    applyPurge(await shared.purge(target));
  };

  const routeRetired = (policy: CompiledCachePolicy): void => {
    const byRoute = totals.get(policy.tenantId);
    // `other` stays while the tenant does: routes still folded into it count on.
    if (policy.metricsRoute === policy.routeId) byRoute?.delete(policy.routeId);
    if (byRoute?.size === 0) totals.delete(policy.tenantId);
    const state = policyState.get(policy);
    if (state !== undefined) {
      state.retired = true;
      return;
    }
    // Never looked up yet: a lookup still on its way gets totals of its own, not exported.
    policyState.set(policy, {
      counters: {},
      total: { tenant: policy.tenantId, route: policy.metricsRoute, hits: 0, all: 0 },
      retired: true,
      keyPrefix: '',
      tenantGeneration: -1,
      routeGeneration: -1,
    });
  };

  /**
   * The control plane forgets a deleted tenant's keys without an expiry once the delete is recorded, but
   * each replica serves the tenant until its tombstone arrives, and a fill it stores meanwhile writes
   * the accounting back, which nothing would then ever remove. So each replica forgets the accounting
   * again once it no longer serves the tenant, after its own last write of it (one connection keeps
   * their order; writes not sent yet are not sent: see `serves`). Best effort, as the control plane's.
   */
  const tenantRemoved = (tenantId: string): void => {
    totals.delete(tenantId);
    generations.delete(tenantId);
    forgottenSince.delete(tenantId);
    loading.delete(tenantId);
    dropFromL1(tenantId);
    storeSlots.forget(tenantId);
    shared.forgetTenantBound?.(tenantId).catch((error: unknown) => {
      storeErrors.labels({ reason: storeFailureReason(error) }).inc();
      logger.warn('cache keys of a removed tenant not forgotten', {
        tenant_id: tenantId,
        error: (error as Error).message,
      });
    });
  };

  return {
    prepareTenant,
    routeRetired,
    tenantRemoved,
    lookup,
    beginFill,
    store,
    abandon(fill) {
      dropFill(fill);
    },
    revalidated(fill, headers) {
      const stale = fill.revalidating!;
      fill.revalidating = null;
      const merged = mergeNotModified(stale, headers);
      const decision = revalidatedStorageDecision(fill.policy, stale.status, merged, headers, fill);
      revalidations.labels({ result: 'not_modified' }).inc();
      if ('notStored' in decision) {
        // The updated response may not be kept, or not shared from this caller's 304: it answers this
        // request once, and the stored entry is left as it was.
        refuse(fill, decision.notStored);
        return { ...stale, headers: storedHeaders(merged, fill.policy.cacheSetCookie), storedAt: now() };
      }
      const entry = entryOf(fill, stale.status, merged, stale.body, decision);
      void commitEntry(fill, entry).catch(() => {});
      return entry;
    },
    writeEntry(res, entry, outcome, method, requestHeaders, beforeHead) {
      // Only replayable origin headers were stored (storedHeaders); the request's own X-Request-Id,
      // RateLimit etc. already set on `res` stay. Entries of older key formats are unreachable.
      const { headers } = entry;
      const notModified =
        requestHeaders !== undefined &&
        entry.status === 200 &&
        clientHasCurrentCopy((name) => entryHeader(entry, name), requestHeaders);
      res.statusCode = notModified ? 304 : entry.status;
      for (let i = 0; i < headers.length; i++) {
        const header = headers[i]!;
        if (notModified && !NOT_MODIFIED_HEADERS.has(header[0])) continue;
        res.setHeader(header[0], header[1]);
      }
      beforeHead?.(res);
      res.setHeader('Age', Math.max(0, Math.floor((now() - entry.storedAt) / 1000)));
      res.setHeader('X-Cache', outcome);
      // An entry stored with a body its status cannot carry (a 205's, before the proxy dropped it) is
      // served without it.
      const noContent = notModified || hasNoContent(entry.status);
      if (entry.status === 205) res.setHeader('Content-Length', 0);
      else if (!noContent) res.setHeader('Content-Length', entry.body.length);
      // The head written here, not implied by end(): the gateway's response holds it with the body
      // until the end of this turn (see GatewayServerResponse).
      res.writeHead(res.statusCode);
      if (noContent || method === 'HEAD') res.end();
      else res.end(entry.body);
    },
    async invalidatePath(policy, path) {
      const known = generations.get(policy.tenantId);
      if (!known) return;
      const pathIndexKey = `${pathBase(policy, stateOf(policy), path, known)}:idx`;
      // This replica's L1 at once; the store drops the shared copies and tells the other replicas.
      applyPurge({ kind: 'path', pathIndexKey });
      await putShared(policy.tenantId, () => shared.invalidatePath(pathIndexKey));
    },
    purgeRoute: (tenantId, routeId) => purge({ kind: 'route', tenantId, routeId }),
    purgeTenant: (tenantId) => purge({ kind: 'tenant', tenantId }),
    async purgeTags(tenantId, tags, options) {
      await prepareTenant(tenantId);
      applyPurge(await shared.purgeTagged({ kind: 'tags', tenantId, tags, soft: options?.soft }));
    },
    heldGenerations(tenantId) {
      const known = generations.get(tenantId);
      return { routes: known?.routes.size ?? 0, softTags: known?.softTags.size ?? 0 };
    },
    async close() {
      if (refreshTimer) clearInterval(refreshTimer);
      for (const key of [...flights.keys()]) finishFlight(key, null);
      await shared.close();
    },
  };
}

/**
 * A stored entry's headers updated from the origin's 304 (RFC 9111 §3.2): every field of the 304
 * replaces the stored one, except Content-Length (the stored body is still the body).
 */
function mergeNotModified(entry: CacheEntry, notModified: IncomingHttpHeaders): IncomingHttpHeaders {
  const merged: Record<string, string | string[]> = {};
  for (const [name, value] of entry.headers)
    merged[name] = Array.isArray(value) ? [...value] : (value as string);
  for (const [name, value] of Object.entries(notModified)) {
    if (value === undefined || name === 'content-length') continue;
    merged[name] = value;
  }
  return merged as IncomingHttpHeaders;
}

/**
 * The request headers of a conditional request that revalidates `entry` (RFC 9111 §4.3.1): its ETag as
 * If-None-Match, else its Last-Modified as If-Modified-Since.
 */
export function revalidationHeaders(entry: CacheEntry): Record<string, string> {
  const etag = entryHeader(entry, 'etag');
  if (etag !== undefined) return { 'if-none-match': etag };
  const lastModified = entryHeader(entry, 'last-modified');
  return lastModified === undefined ? {} : { 'if-modified-since': lastModified };
}

/**
 * The tags an origin gave a response in the policy's tag headers (Surrogate-Key is space-separated,
 * Cache-Tag comma-separated: both separators are read in either), at most CACHE_TAGS_MAX of them.
 */
export function responseTags(headers: IncomingHttpHeaders, tagHeaders: readonly string[]): string[] {
  const tags = new Set<string>();
  for (const name of tagHeaders) {
    const value = headerList(sentHeader(headers, name));
    if (value === undefined) continue;
    for (const tag of value.split(/[\s,]+/)) {
      if (tag === '' || tag.length > CACHE_TAG_MAX_LENGTH) continue;
      tags.add(tag);
      if (tags.size === CACHE_TAGS_MAX) return [...tags];
    }
  }
  return [...tags];
}
