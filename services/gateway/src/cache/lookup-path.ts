import {
  type CacheIdentity,
  type CacheRequest,
  variantDigest,
} from '@vantageedge/shared/gateway-policies/cache-key';
import type { CompiledCachePolicy } from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import { requestBypassReason } from '@vantageedge/shared/gateway-policies/request-bypass';
import {
  type RequestFreshness,
  requestFreshness,
} from '@vantageedge/shared/gateway-policies/request-freshness';
import { cookieHeader } from '@vantageedge/shared/http/header-values';
import type { Counter } from 'prom-client';
import { type CacheEntry, hasValidator } from './cache-entry.js';
import type { CacheFill } from './cache-fill.js';
import { pathBase, variantKey } from './cache-keys.js';
import type { CacheLookup } from './cache-lookup.js';
import { clientCredentialHeaders } from './client-credentials.js';
import type { CrossReplicaFill } from './cross-replica-fill.js';
import { type FillFlights, type Flight, LOOK_AGAIN } from './fill-flights.js';
import type { InvalidationsUnderWay } from './invalidations-under-way.js';
import type { L1Cache } from './l1-cache.js';
import type { LookupCounts, PolicyState } from './lookup-counts.js';
import type { ReplicaPurgeGenerations } from './purge-generations.js';
import { reusable } from './request-directives.js';
import { isRecord, type SharedStoreCalls } from './shared-store-calls.js';

export interface LookupPathOptions {
  l1: L1Cache;
  lookupCounts: LookupCounts;
  purgeGenerations: ReplicaPurgeGenerations;
  fillFlights: FillFlights;
  storeCalls: SharedStoreCalls;
  crossReplicaFill: CrossReplicaFill;
  coalesced: Counter;
  invalidationsUnderWay: InvalidationsUnderWay;
  now: () => number;
  /** `now`, never the same value twice (ordered-clock.ts): when fills and store reads begin. */
  orderedNow: () => number;
}

/** ResponseCache.lookup: what answers a request (HIT, STALE, MISS with or without the fill, BYPASS). */
export type Lookup = (
  policy: CompiledCachePolicy,
  request: CacheRequest,
  identity: CacheIdentity,
) => CacheLookup | Promise<CacheLookup>;

/**
 * The lookup of a request: bypass rules, then the L1 (answered at once when fresh), then, for one
 * request per key (the leader), the shared store and the key's lease across replicas, while the others
 * coalesce behind it. Stale entries answer within stale-while-revalidate and the client's max-stale.
 */
export function createLookupPath(options: LookupPathOptions): Lookup {
  const { l1, now, orderedNow, coalesced, invalidationsUnderWay } = options;
  const { stateOf, count } = options.lookupCounts;
  const { generations, prepareTenant, softened, entryPurgedHereSince, pathOrTagsPurgedHereSince } =
    options.purgeGenerations;
  const { flights, startFlight, finishFlight, waitFor } = options.fillFlights;
  const { readShared } = options.storeCalls;
  const { claim, dropFill } = options.crossReplicaFill;

  /**
   * Finds the entry for a request below its URL key. A fresh entry in the L1 is answered at once,
   * without a promise (the hot path). Otherwise one request per key (the leader) reads the store or
   * goes to the origin and the others coalesce behind it. A URL known to vary is looked up at the
   * request's variant key. `mayRetry`: a follower whose leader filled another variant, or handed the
   * key over (LOOK_AGAIN), looks once more.
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
    let replacesPurged = false;
    if (flight) {
      // Another request is already fetching this key from the origin (or revalidating it).
      if (entry && wanted === null && at - entry.storedAt < entry.freshMs + entry.staleWhileRevalidateMs) {
        count(state, 'STALE');
        return { outcome: 'STALE', entry, key, revalidation: null };
      }
      // A purge this replica heard since that fill began may have removed its answer: this request came
      // after the purge, and fills the key anew (the requests already following it keep following it).
      replacesPurged = pathOrTagsPurgedHereSince(policy.tenantId, pathIndexKey, flight.startedAt);
      if (!replacesPurged) {
        const stale = entry && wanted === null ? staleIfErrorEntry(entry, at) : null;
        return follow(policy, state, request, urlKey, pathIndexKey, key, flight, stale, wanted, mayRetry);
      }
    }
    // Claim the key before any await so concurrent misses coalesce behind this request.
    const startedAt = orderedNow();
    const fill: CacheFill = {
      key,
      urlKey,
      policy,
      pathIndexKey,
      flight: startFlight(key, startedAt),
      replacesPurged,
      startedAt,
      askedAt: at,
      path: request.path,
      headers: request.headers,
      authorized: request.headers.authorization !== undefined,
      withCookie: cookieHeader(request.headers.cookie) !== undefined,
      credentialHeaders: clientCredentialHeaders(request.headers, request.routeHeaders),
      credentialQuery: request.credentialQuery === true,
      revalidating: null,
      found: null,
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
    flight.followers++;
    const filled = await waitFor(flight);
    if (filled === LOOK_AGAIN) {
      if (mayRetry) return find(policy, state, request, urlKey, pathIndexKey, wanted, false);
    } else if (filled) {
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
    const readAt = orderedNow();
    let stored = invalidationsUnderWay.read(pathIndexKey, await readShared(tenantId, entryKey));
    if (isRecord(stored) && stored?.kind === 'response') stored = softened(tenantId, stored);
    if (known !== null) {
      // This replica's copy is stale: another replica may have refreshed the shared one meanwhile.
      const newer = isRecord(stored) && stored?.kind === 'response' && stored.storedAt > known.storedAt;
      if (!newer) return lead(state, request, fill, known, entryKey, wanted);
    }
    if (isRecord(stored) && stored?.kind === 'vary') {
      l1.set(urlKey, stored, pathIndexKey);
      entryKey = variantKey(urlKey, stored.varyOn, request.headers);
      stored = invalidationsUnderWay.read(pathIndexKey, await readShared(tenantId, entryKey));
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
    // Read before a purge this replica heard meanwhile: it answers this request (and those following
    // it, which came before the purge too), but no request after the purge from the L1.
    if (!entryPurgedHereSince(fill.policy, pathIndexKey, stored, readAt))
      l1.set(entryKey, stored, pathIndexKey, entryKey === urlKey ? undefined : urlKey);
    return lead(state, request, fill, stored, entryKey, wanted);
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
      if (age < entry.freshMs) finishFlight(fill.flight, { entry, key: entryKey });
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
    fill.found = entry;
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

  return lookup;
}
