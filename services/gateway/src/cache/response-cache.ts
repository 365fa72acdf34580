import type { IncomingHttpHeaders } from 'node:http';
import type { PurgeTarget } from '@vantageedge/shared/cache-purge/purge-protocol';
import type { CacheIdentity, CacheRequest } from '@vantageedge/shared/gateway-policies/cache-key';
import type { CompiledCachePolicy } from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import type { Logger } from '@vantageedge/shared/observability/logger';
import type { Registry } from 'prom-client';
import { storeFailureReason } from '../store-circuit/store-circuit.js';
import { createStoreCircuits, nodeField } from '../store-circuit/store-circuits.js';
import type { CacheEntry } from './cache-entry.js';
import type { CacheFill, FillStart } from './cache-fill.js';
import { pathBase } from './cache-keys.js';
import type { CacheLookup } from './cache-lookup.js';
import { createCacheMetrics } from './cache-metrics.js';
import type { CacheStore } from './cache-store.js';
import type { UpstreamResponse } from './cacheability.js';
import { createCrossReplicaFill } from './cross-replica-fill.js';
import { FILL_DEADLINE_MS, FillBudget } from './fill-budget.js';
import { createFillCommit } from './fill-commit.js';
import { createFillFlights } from './fill-flights.js';
import { createFillResponse } from './fill-response.js';
import { InvalidationsUnderWay } from './invalidations-under-way.js';
import { L1Cache } from './l1-cache.js';
import { createLookupCounts, type RouteTotalsByTenant } from './lookup-counts.js';
import { createLookupPath } from './lookup-path.js';
import { orderedClock } from './ordered-clock.js';
import { createPurgeGenerations } from './purge-generations.js';
import { createRevalidated } from './revalidation.js';
import { createSharedStoreCalls } from './shared-store-calls.js';
import { TenantStoreSlots, type TenantStoreSlotsOptions } from './tenant-store-slots.js';
import { createEntryWriter, type WriteEntry } from './write-entry.js';

export type { CacheFill, FillBody, FillStart } from './cache-fill.js';
export type { CacheLookup, CacheOutcome, ServedOutcome } from './cache-lookup.js';

/** Attempts at an unsafe method's invalidation in the shared store, the pause growing by this much each. */
const INVALIDATION_ATTEMPTS = 3;
const INVALIDATION_RETRY_MS = 50;

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
  writeEntry: WriteEntry;
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
  /**
   * The tenant's config (version `configVersion`) was applied with this bound (`settings.cache.max_bytes`;
   * undefined: the store's default), changed or not: its least recently used entries in the shared store
   * go until it is within it, off the request path, unless another replica already trimmed for a newer
   * version (which this version, once trimmed for, keeps an older one from doing).
   * Resolves when done; a store failure is counted and logged, never thrown (its writes evict anyway).
   */
  tenantBoundChanged(tenantId: string, maxBytes: number | undefined, configVersion: bigint): Promise<void>;
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
  const orderedNow = orderedClock(now);
  const maxVariants = options.maxVariantsPerUrl ?? 16;
  const budget = new FillBudget(options.fillBudgetBytes ?? 64 * 1024 * 1024, options.fillTenantShare);
  const fillFlights = createFillFlights(options.coalesceTimeoutMs ?? 10_000);
  const l1 = new L1Cache(options.l1MaxBytes, options.l1TenantShare, maxVariants);
  const storeSlots = new TenantStoreSlots(options.tenantStoreSlots);

  const circuits = createStoreCircuits({
    nodeOf: shared.nodeOf,
    failures: options.circuitFailures,
    halfOpenAfterMs: options.halfOpenAfterMs,
    onOpen: (node) =>
      logger.warn('cache store circuit opened; cache bypassed while the store is down', nodeField(node)),
    onClose: (node) => logger.info('cache store circuit closed', nodeField(node)),
  });

  const totals: RouteTotalsByTenant = new Map();
  const metrics = createCacheMetrics(options.registry, budget, totals);
  const { storeErrors, notStored, revalidations, purges } = metrics;
  const lookupCounts = createLookupCounts(metrics.lookups, totals);

  const purgeGenerations = createPurgeGenerations({
    shared,
    l1,
    purges,
    purgeVisits: metrics.purgeVisits,
    now,
    orderedNow,
    retryDelayMs: options.retryDelayMs,
    generationRefreshMs: options.generationRefreshMs,
    forgottenRouteGraceMs: options.forgottenRouteGraceMs,
  });
  const { generations, serves, prepareTenant, applyPurge } = purgeGenerations;

  const storeCalls = createSharedStoreCalls({ shared, circuits, storeSlots, storeErrors, serves });
  const invalidationsUnderWay = new InvalidationsUnderWay();
  const crossReplicaFill = createCrossReplicaFill({
    shared,
    circuits,
    storeSlots,
    storeErrors,
    storeCalls,
    l1,
    fillFlights,
    count: lookupCounts.count,
    softened: purgeGenerations.softened,
    entryPurgedHereSince: purgeGenerations.entryPurgedHereSince,
    invalidationsUnderWay,
    now,
    orderedNow,
    fillLeaseMs: options.fillLeaseMs ?? 10_000,
    fillWaitMs: options.fillWaitMs ?? 5_000,
    fillPollMs: options.fillPollMs ?? 20,
  });
  const { dropFill } = crossReplicaFill;
  const lookup = createLookupPath({
    l1,
    lookupCounts,
    purgeGenerations,
    fillFlights,
    storeCalls,
    crossReplicaFill,
    coalesced: metrics.coalesced,
    invalidationsUnderWay,
    now,
    orderedNow,
  });
  const fillCommit = createFillCommit({
    shared,
    l1,
    storeCalls,
    fillFlights,
    crossReplicaFill,
    notStored,
    serves,
    maxVariants,
    now,
    purgedHereSince: purgeGenerations.purgedHereSince,
  });
  const fillResponse = createFillResponse({
    budget,
    fillDeadlineMs: options.fillDeadlineMs ?? FILL_DEADLINE_MS,
    notStored,
    overBudget: metrics.overBudget,
    revalidations,
    crossReplicaFill,
    fillCommit,
  });
  const { putShared } = storeCalls;

  /**
   * Drops the path's entries from the store and tells the other replicas, tried again when a command
   * fails (a timeout on a busy Redis): given up, the entries the POST replaced were served by every
   * replica until they expire. A purge that failed part-way deletes the rest when tried again.
   */
  const invalidateShared = async (tenantId: string, pathIndexKey: string): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      const done = await putShared(tenantId, () => shared.invalidatePath(pathIndexKey).then(() => true));
      if (done === true || attempt === INVALIDATION_ATTEMPTS) return;
      await new Promise((resolve) => setTimeout(resolve, INVALIDATION_RETRY_MS * attempt).unref());
    }
  };

  const purge = async (target: PurgeTarget): Promise<void> => {
    await prepareTenant(target.tenantId);
    applyPurge(await shared.purge(target));
  };

  /**
   * The control plane forgets a deleted tenant's keys once the delete is recorded, but each replica
   * serves the tenant until its tombstone arrives, and a fill it stores meanwhile writes an entry and the
   * accounting back, which nothing would then ever remove. So each replica forgets the tenant's entries
   * and accounting again once it no longer serves the tenant, after its own last write of it (one
   * connection keeps their order; writes not sent yet are not sent: see `serves`). Best effort, as the
   * control plane's.
   */
  const tenantRemoved = (tenantId: string): void => {
    totals.delete(tenantId);
    purgeGenerations.forgetTenant(tenantId);
    storeSlots.forget(tenantId);
    shared.forgetTenantEntries?.(tenantId).catch((error: unknown) => {
      storeErrors.labels({ reason: storeFailureReason(error) }).inc();
      logger.warn('cache keys of a removed tenant not forgotten', {
        tenant_id: tenantId,
        error: (error as Error).message,
      });
    });
  };

  const tenantBoundChanged = (
    tenantId: string,
    maxBytes: number | undefined,
    configVersion: bigint,
  ): Promise<void> =>
    shared.trimTenant(tenantId, maxBytes, configVersion).catch((error: unknown) => {
      storeErrors.labels({ reason: storeFailureReason(error) }).inc();
      logger.warn('cache of a tenant whose bound changed not trimmed', {
        tenant_id: tenantId,
        error: (error as Error).message,
      });
    });

  return {
    prepareTenant,
    routeRetired: lookupCounts.routeRetired,
    tenantRemoved,
    tenantBoundChanged,
    lookup,
    beginFill: fillResponse.beginFill,
    store: fillResponse.store,
    abandon(fill) {
      dropFill(fill);
    },
    revalidated: createRevalidated({ revalidations, fillCommit, fillResponse, now }),
    writeEntry: createEntryWriter(now),
    async invalidatePath(policy, path) {
      const state = lookupCounts.stateOf(policy);
      // A replica still loading the tenant's generations (just started, or the load failed) invalidates
      // once it has them: skipped, the replaced entries were served by every replica until they expired.
      // Not for a retired route: it may be one of a tenant removed meanwhile, kept for good once loaded.
      if (!serves(policy.tenantId) && !state.retired) await prepareTenant(policy.tenantId);
      const known = generations.get(policy.tenantId);
      if (!known) return;
      const pathIndexKey = `${pathBase(policy, state, path, known)}:idx`;
      // This replica's L1 at once; the store drops the shared copies and tells the other replicas.
      // Until it has, what this replica reads of the path there is what the POST replaced.
      applyPurge({ kind: 'path', pathIndexKey });
      invalidationsUnderWay.begin(pathIndexKey);
      try {
        await invalidateShared(policy.tenantId, pathIndexKey);
      } finally {
        invalidationsUnderWay.end(pathIndexKey);
      }
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
      purgeGenerations.stopRefreshing();
      fillFlights.finishAll();
      await shared.close();
    },
  };
}
