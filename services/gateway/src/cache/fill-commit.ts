import type { IncomingHttpHeaders } from 'node:http';
import { pathTags } from '@vantageedge/shared/cache-purge/path-prefix';
import type { Counter } from 'prom-client';
import { type CacheEntry, type CacheRecord, retentionMs } from './cache-entry.js';
import type { CacheFill } from './cache-fill.js';
import { tagIndexKeys, variantCap, variantKey } from './cache-keys.js';
import type { CacheStore, PutOutcome } from './cache-store.js';
import { responseVary, storedHeaders } from './cacheability.js';
import type { CrossReplicaFill } from './cross-replica-fill.js';
import type { FillFlights } from './fill-flights.js';
import type { L1Cache } from './l1-cache.js';
import { responseTags } from './response-tags.js';
import type { SharedStoreCalls } from './shared-store-calls.js';
import type { Freshness } from './standard-freshness.js';

export interface FillCommitOptions {
  shared: CacheStore;
  l1: L1Cache;
  storeCalls: SharedStoreCalls;
  fillFlights: FillFlights;
  crossReplicaFill: CrossReplicaFill;
  notStored: Counter<'reason'>;
  serves: (tenantId: string) => boolean;
  maxVariants: number;
  now: () => number;
  /** A purge message of one of the tenant's listings reached this replica at or after `since`. */
  purgedHereSince: (tenantId: string, listings: readonly string[], since: number) => boolean;
}

/** Storing what a fill produced, in the L1 and the shared store, and waking its followers with it. */
export interface FillCommit {
  /** Stores a response the rules allow (freshness decided) and wakes the followers. */
  commit(
    fill: CacheFill,
    status: number,
    headers: IncomingHttpHeaders,
    body: Buffer,
    freshness: Freshness,
  ): Promise<boolean>;
  /** The entry a response of the fill is stored as. */
  entryOf(
    fill: CacheFill,
    status: number,
    headers: IncomingHttpHeaders,
    body: Buffer,
    freshness: Freshness,
  ): CacheEntry;
  /** Stores `entry` for the fill (unless the tenant left or it expired already); the lease goes back. */
  commitEntry(fill: CacheFill, entry: CacheEntry): Promise<boolean>;
  /**
   * Stores `entry` again (for the fill's key, after the fill ended) as stale from now on: kept as long
   * as it would have been, for its stale windows and a revalidation (RFC 9111 §4.3.5).
   */
  markStale(fill: CacheFill, entry: CacheEntry): void;
}

export function createFillCommit(options: FillCommitOptions): FillCommit {
  const { shared, l1, notStored, serves, maxVariants, now, purgedHereSince } = options;
  const { writeShared, putShared } = options.storeCalls;
  const { finishFlight } = options.fillFlights;
  const { releaseLease, dropFill } = options.crossReplicaFill;

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
      varyOn: vary === '*' ? [] : fill.varyOriginByGateway ? vary.filter((name) => name !== 'origin') : vary,
    };
  };

  const commitEntry = async (fill: CacheFill, entry: CacheEntry): Promise<boolean> => {
    try {
      return await commitShared(fill, entry);
    } finally {
      // After the shared write: a replica waiting for this fill finds it instead of taking the lease.
      releaseLease(fill);
    }
  };

  const markStale = (fill: CacheFill, entry: CacheEntry): void => {
    const age = now() - entry.storedAt;
    if (age >= entry.freshMs) return;
    const ttlMs = retentionMs(entry, fill.policy.keepStaleMs) - age;
    const { tenantId } = fill.policy;
    const { urlKey, pathIndexKey } = fill;
    const key = entry.varyOn.length === 0 ? urlKey : variantKey(urlKey, entry.varyOn, fill.headers);
    const marked = { ...entry, freshMs: Math.max(0, age) };
    // This replica answers no more with its copy as fresh, from now on (a copy dropped meanwhile, by a
    // purge, stays dropped).
    const copy = l1.get(key);
    if (copy?.kind === 'response' && copy.storedAt === entry.storedAt)
      l1.set(key, marked, pathIndexKey, key === urlKey ? undefined : urlKey);
    void (async () => {
      const put = await markShared(fill, key, entry, marked, ttlMs);
      if (put === undefined || put === 'tenant_removed') return;
      // The other replicas' copies were fresh: they read the store's instead (the newer one stored
      // meanwhile, when the mark found one).
      await putShared(tenantId, () => shared.dropCopies(pathIndexKey));
    })().catch(() => {});
  };

  /**
   * Writes `marked` for `key`, kept `ttlMs`, only over `entry`: the store checks that the key still holds
   * the response the HEAD was compared with and writes in one step, so one another replica stored while
   * the HEAD was out or while this write was on its way (or none: purged, evicted) is never replaced by
   * the former one (`changed`). Its fill's flight and lease ended with the HEAD's answer: another
   * request's flight of the key may be under way, and is not ended with it.
   */
  const markShared = async (
    fill: CacheFill,
    key: string,
    entry: CacheEntry,
    marked: CacheEntry,
    ttlMs: number,
  ): Promise<PutOutcome | 'tenant_busy' | 'tenant_removed' | undefined> => {
    const { policy, urlKey, pathIndexKey } = fill;
    let put: PutOutcome | 'tenant_busy' | 'tenant_removed' | undefined = 'tenant_removed';
    if (serves(policy.tenantId)) {
      const write = {
        key,
        entry: marked,
        replacing: entry,
        ttlMs,
        pathIndexKey,
        tagIndexKeys: tagIndexKeys(policy, marked),
        tenantMaxBytes: policy.tenantMaxBytes,
      };
      put = await writeShared(policy.tenantId, marked, () =>
        key === urlKey
          ? shared.putResponse(write)
          : shared.putVariant({ ...write, urlKey, maxVariants: variantCap(marked.varyOn, maxVariants) }),
      );
    }
    if (put !== undefined && put !== 'stored' && put !== 'changed') notStored.labels({ reason: put }).inc();
    return put;
  };

  /**
   * Not stored, or stored nowhere but in this replica's L1 (the store's fence never saw it): a purge of
   * its path or a tag this replica heard of since its lookup began keeps it from the L1 too.
   */
  const notKept = (
    fill: CacheFill,
    listings: readonly string[],
    put: PutOutcome | 'tenant_busy' | 'tenant_removed' | undefined,
  ) => {
    if (put === 'over_tenant_bound' || put === 'purged') return put;
    if (put === 'stored' || put === 'changed') return null;
    return purgedHereSince(fill.policy.tenantId, listings, fill.startedAt) ? 'purged' : null;
  };

  /** Puts a fill's entry in the L1: the copy kept there, which a refused write drops (dropOwnCopy). */
  const keepInL1 = (key: string, entry: CacheEntry, pathIndexKey: string, urlKey?: string) => {
    return l1.set(key, entry, pathIndexKey, urlKey) ? l1.get(key) : undefined;
  };

  /**
   * Drops a fill's L1 copy, not what took its place meanwhile: the answer of a fill that began after a
   * purge, which the store kept while it refused this one.
   */
  const dropOwnCopy = (key: string, copy: CacheRecord | undefined): void => {
    if (copy !== undefined && l1.get(key) === copy) l1.delete(key);
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
    const tagKeys = tagIndexKeys(policy, entry);
    const listings = [pathIndexKey, ...tagKeys];
    // The answer of an origin asked before a purge this replica already heard: it is given to the
    // requests that waited for it (they came before the purge), never kept in the L1 for those after
    // it while the store's fence decides (from the purge's own record, it refuses it).
    const purgedHere = purgedHereSince(policy.tenantId, listings, fill.startedAt);
    if (entry.varyOn.length === 0) {
      const copy = purgedHere ? undefined : keepInL1(urlKey, entry, pathIndexKey);
      finishFlight(fill.flight, { entry, key: urlKey });
      const put = await writeShared(policy.tenantId, entry, () =>
        shared.putResponse({
          key: urlKey,
          entry,
          ttlMs,
          pathIndexKey,
          tagIndexKeys: tagKeys,
          tenantMaxBytes: policy.tenantMaxBytes,
          // Taken when the write goes out, after any wait for the tenant's store slots.
          askedMsAgo: now() - fill.askedAt,
          askedAt: fill.askedAt,
        }),
      );
      const dropped = notKept(fill, listings, put);
      if (dropped !== null) {
        // Larger than the tenant's whole share of the store, or perhaps what a purge since its origin
        // was asked meant to remove: this replica does not keep it either.
        dropOwnCopy(urlKey, copy);
        notStored.labels({ reason: dropped }).inc();
        return false;
      }
      if (put === 'too_large_to_share' || put === 'tenant_busy' || put === 'tenant_removed')
        notStored.labels({ reason: put }).inc();
      return true;
    }
    const key = variantKey(urlKey, entry.varyOn, fill.headers);
    // The followers asked for this variant at the same time: they get the response either way.
    finishFlight(fill.flight, { entry, key });
    // At the Vary cap the least recently used variant makes room, in the L1 (L1Cache.set) and the store:
    // junk values nobody asks for again cannot keep out the variants clients keep requesting.
    l1.set(urlKey, { kind: 'vary', varyOn: entry.varyOn }, pathIndexKey);
    const copy = purgedHere ? undefined : keepInL1(key, entry, pathIndexKey, urlKey);
    const put = await writeShared(policy.tenantId, entry, () =>
      shared.putVariant({
        key,
        urlKey,
        entry,
        ttlMs,
        pathIndexKey,
        maxVariants: variantCap(entry.varyOn, maxVariants),
        tagIndexKeys: tagKeys,
        tenantMaxBytes: policy.tenantMaxBytes,
        askedMsAgo: now() - fill.askedAt,
        askedAt: fill.askedAt,
      }),
    );
    const dropped = notKept(fill, listings, put);
    if (dropped !== null) {
      dropOwnCopy(key, copy);
      notStored.labels({ reason: dropped }).inc();
      return false;
    }
    // Kept in this replica's L1 only: larger than one command to the shared store may move, or the
    // tenant has too many store calls waiting on this replica (a removed tenant's L1 entries went with it).
    if (put === 'too_large_to_share' || put === 'tenant_busy' || put === 'tenant_removed')
      notStored.labels({ reason: put }).inc();
    return true;
  };

  return { commit, entryOf, commitEntry, markStale };
}
