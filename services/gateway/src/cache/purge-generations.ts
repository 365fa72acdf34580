import {
  type CachePurgeMessage,
  type PurgeGenerations,
  tagIndexKey,
} from '@vantageedge/shared/cache-purge/purge-protocol';
import type { CompiledCachePolicy } from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import type { Counter } from 'prom-client';
import type { CacheEntry } from './cache-entry.js';
import { tagIndexKeys } from './cache-keys.js';
import { type CacheStore, tenantOfKey } from './cache-store.js';
import type { L1Cache } from './l1-cache.js';
import { PurgeFence } from './purge-fence.js';

/** How long a replica holds a route's generation the store dropped (its config without the route arrives meanwhile). */
const FORGOTTEN_ROUTE_GRACE_MS = 60_000;
const DEFAULT_GENERATION_REFRESH_MS = 15_000;

/** Attempts to load a tenant's purge generations before prepareTenant gives up (and rejects). */
const PREPARE_ATTEMPTS = 5;

export interface PurgeGenerationsOptions {
  shared: CacheStore;
  l1: L1Cache;
  purges: Counter<'kind'>;
  purgeVisits: Counter;
  now: () => number;
  /** `now`, never the same value twice (ordered-clock.ts): when each purge message was heard. */
  orderedNow: () => number;
  /** First pause before a failed load is tried again (doubling, PREPARE_ATTEMPTS in all). */
  retryDelayMs: number | undefined;
  /** How often every known tenant's purge generations are read again (0: never). */
  generationRefreshMs: number | undefined;
  /** How long a route's generation the store dropped is still held. */
  forgottenRouteGraceMs: number | undefined;
}

/** The listings purged lately of one tenant a replica remembers (purgedHereSince), ≈ 200 bytes each. */
export const HEARD_PURGES_PER_TENANT = 64;

/**
 * The listing a purge of any of a tenant's tags is also heard as: the tags of a response still on its
 * way from the origin are not known yet.
 */
const SOME_TAG = 'tags';

/** The purge generations this replica holds, and what it does with them. */
export interface ReplicaPurgeGenerations {
  /** Per tenant served here: the generations its keys are built with (loaded by prepareTenant). */
  readonly generations: Map<string, PurgeGenerations>;
  /**
   * Whether the tenant is served here: a fill begins only once its generations are loaded, and they
   * leave when the tenant does (ResponseCache.tenantRemoved).
   */
  serves(tenantId: string): boolean;
  /** Loads the tenant's generations, retried with backoff; one load per tenant at a time. */
  prepareTenant(tenantId: string): Promise<void>;
  /** A purge (this replica's, or another's message): generations raised, the L1 copies it reaches freed. */
  applyPurge(message: CachePurgeMessage): void;
  /**
   * Whether a purge message of one of the tenant's `listings` (a path index, a tag set) reached this
   * replica at or after `since`: a fill it keeps in its L1 only (the store's fence never saw it) may
   * hold the answer that purge removed.
   */
  purgedHereSince(tenantId: string, listings: readonly string[], since: number): boolean;
  /**
   * Whether a purge heard at or after `since` may have removed `entry`, a response of the path of
   * `pathIndexKey` read from the store: a purge of the path or of one of its tags.
   */
  entryPurgedHereSince(
    policy: CompiledCachePolicy,
    pathIndexKey: string,
    entry: CacheEntry,
    since: number,
  ): boolean;
  /**
   * Whether a purge heard at or after `since` may concern a response of the path of `pathIndexKey`
   * whose tags are not known yet (a fill under way): a purge of the path or of any of the tenant's tags.
   */
  pathOrTagsPurgedHereSince(tenantId: string, pathIndexKey: string, since: number): boolean;
  /** The entry as the tenant's soft purges left it (see below). */
  softened(tenantId: string, entry: CacheEntry): CacheEntry;
  /** The tenant left the config: its generations are no longer held or read again, its L1 copies freed. */
  forgetTenant(tenantId: string): void;
  /** Stops reading the generations again (close). */
  stopRefreshing(): void;
}

/**
 * Keeps this replica's copy of each tenant's purge generations (the shared purge protocol): loaded when
 * the tenant's snapshot is applied, raised by every purge message, read again from the store every
 * generationRefreshMs and on a resync (messages are fire-and-forget; a resync also frees the L1
 * copies), and never moved backwards.
 * Subscribes to the store's purge messages.
 */
export function createPurgeGenerations(options: PurgeGenerationsOptions): ReplicaPurgeGenerations {
  const { shared, l1, purges, purgeVisits, now } = options;
  const generations = new Map<string, PurgeGenerations>();
  const serves = (tenantId: string): boolean => generations.has(tenantId);
  const loading = new Map<string, Promise<void>>();
  // Every tenant's purges reach every replica: a few listings each (past them the horizon fences all
  // of the tenant's L1-only fills under way), not the store's thousands.
  const heardPurges = new PurgeFence(options.orderedNow, HEARD_PURGES_PER_TENANT);

  /** Runs a purge of the L1, counting what it looked at: the time it held the event loop for. */
  const purgeL1 = (purge: () => void): void => {
    const before = l1.purgeVisits;
    purge();
    purgeVisits.inc(l1.purgeVisits - before);
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
      const tenantId = tenantOfKey(message.pathIndexKey);
      // Only the tenants served here fill here.
      if (tenantId !== undefined && serves(tenantId)) heardPurges.purged(tenantId, message.pathIndexKey);
      l1.deletePath(message.pathIndexKey);
      return;
    }
    // The tenant's generations as this replica knows them, and those of every load running.
    const holders = [...(purgedDuringLoads.get(message.tenantId) ?? [])];
    const known = generations.get(message.tenantId);
    if (known !== undefined) holders.push(known);
    if (message.kind === 'tags') {
      if (serves(message.tenantId)) {
        for (const tag of message.tags)
          heardPurges.purged(message.tenantId, tagIndexKey('', message.tenantId, tag));
        heardPurges.purged(message.tenantId, SOME_TAG);
      }
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
    // Purge messages may have been missed. Path and hard tag purges leave no trace but their message (the
    // entries are gone from the store, the generations unchanged): free every tenant's L1 copies, which
    // are read again from the store. Then reload the generations, which the route and tenant purges raised.
    onResync() {
      for (const tenantId of generations.keys()) dropFromL1(tenantId);
      void refreshGenerations();
    },
  });

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

  const forgetTenant = (tenantId: string): void => {
    generations.delete(tenantId);
    forgottenSince.delete(tenantId);
    loading.delete(tenantId);
    dropFromL1(tenantId);
  };

  return {
    generations,
    serves,
    prepareTenant,
    applyPurge,
    purgedHereSince: (tenantId, listings, since) => heardPurges.purgedSince(tenantId, listings, since),
    entryPurgedHereSince(policy, pathIndexKey, entry, since) {
      // Most reads come with no purge of the tenant since: no tag digests for them.
      if (!heardPurges.anyPurgedSince(policy.tenantId, since)) return false;
      return heardPurges.purgedSince(policy.tenantId, [pathIndexKey, ...tagIndexKeys(policy, entry)], since);
    },
    pathOrTagsPurgedHereSince: (tenantId, pathIndexKey, since) =>
      heardPurges.anyPurgedSince(tenantId, since) &&
      heardPurges.purgedSince(tenantId, [pathIndexKey, SOME_TAG], since),
    softened,
    forgetTenant,
    stopRefreshing() {
      if (refreshTimer) clearInterval(refreshTimer);
    },
  };
}
