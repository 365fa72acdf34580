import type { CacheRequest } from '@vantageedge/shared/gateway-policies/cache-key';
import type { RequestFreshness } from '@vantageedge/shared/gateway-policies/request-freshness';
import type { Counter } from 'prom-client';
import { storeFailureReason } from '../store-circuit/store-circuit.js';
import type { StoreCircuits } from '../store-circuit/store-circuits.js';
import type { CacheEntry } from './cache-entry.js';
import type { CacheFill } from './cache-fill.js';
import { variantKey } from './cache-keys.js';
import type { CacheLookup } from './cache-lookup.js';
import type { CacheStore } from './cache-store.js';
import { type Filled, type FillFlights, LOOK_AGAIN } from './fill-flights.js';
import type { InvalidationsUnderWay } from './invalidations-under-way.js';
import type { L1Cache } from './l1-cache.js';
import type { LookupCounts, PolicyState } from './lookup-counts.js';
import type { ReplicaPurgeGenerations } from './purge-generations.js';
import { reusable } from './request-directives.js';
import { isRecord, type SharedStoreCalls } from './shared-store-calls.js';
import type { TenantStoreSlots } from './tenant-store-slots.js';

export interface CrossReplicaFillOptions {
  shared: CacheStore;
  circuits: StoreCircuits;
  storeSlots: TenantStoreSlots;
  storeErrors: Counter<'reason'>;
  storeCalls: SharedStoreCalls;
  l1: L1Cache;
  fillFlights: FillFlights;
  count: LookupCounts['count'];
  softened: (tenantId: string, entry: CacheEntry) => CacheEntry;
  entryPurgedHereSince: ReplicaPurgeGenerations['entryPurgedHereSince'];
  invalidationsUnderWay: InvalidationsUnderWay;
  now: () => number;
  /** `now`, never the same value twice (ordered-clock.ts): when store reads begin. */
  orderedNow: () => number;
  fillLeaseMs: number;
  fillWaitMs: number;
  fillPollMs: number;
}

/** One fill of a key across the replicas sharing a store: the holder of the key's lease fetches it. */
export interface CrossReplicaFill {
  /**
   * This request is about to go to the origin for `fill.key` (`proceed`): it does once it holds the
   * key's lease, or is answered with another replica's fill (see below).
   */
  claim(
    state: PolicyState,
    request: CacheRequest,
    fill: CacheFill,
    swrStale: Filled | null,
    wanted: RequestFreshness | null,
    proceed: () => CacheLookup,
  ): Promise<CacheLookup>;
  releaseLease(fill: CacheFill): void;
  /** The fill ends without a stored response: followers go on, the lease is given back. */
  dropFill(fill: CacheFill): void;
  /** The fill will give the requests behind it nothing: they look again (one fills the key), the lease goes back. */
  handOver(fill: CacheFill): void;
}

export function createCrossReplicaFill(options: CrossReplicaFillOptions): CrossReplicaFill {
  const { shared, circuits, storeSlots, storeErrors, l1, count, softened, entryPurgedHereSince } = options;
  const { now, orderedNow, invalidationsUnderWay } = options;
  const { callShared, readShared, putShared } = options.storeCalls;
  const { finishFlight } = options.fillFlights;
  const { fillLeaseMs, fillWaitMs, fillPollMs } = options;

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
    finishFlight(fill.flight, null);
    releaseLease(fill);
  };

  const handOver = (fill: CacheFill): void => {
    finishFlight(fill.flight, LOOK_AGAIN);
    releaseLease(fill);
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
      // A leader that has not filled the key when its followers stop waiting (a client that reads
      // slowly holds the origin's body back) gives its lease to the one of them that fills it anew.
      fill.flight.onGiveUp = () => releaseLease(fill);
      return true;
    } catch (error) {
      storeErrors.labels({ reason: storeFailureReason(error) }).inc();
      return true;
    }
  };

  /** What another replica's fill of `fill.key` stored: a fresh response for this request, or null. */
  const readFilled = async (fill: CacheFill, request: CacheRequest): Promise<Filled | null> => {
    let key = fill.key;
    const readAt = orderedNow();
    const { pathIndexKey } = fill;
    let stored = invalidationsUnderWay.read(pathIndexKey, await readShared(fill.policy.tenantId, key));
    if (isRecord(stored) && stored?.kind === 'vary') {
      l1.set(fill.urlKey, stored, pathIndexKey);
      key = variantKey(fill.urlKey, stored.varyOn, request.headers);
      stored = invalidationsUnderWay.read(pathIndexKey, await readShared(fill.policy.tenantId, key));
    }
    if (!isRecord(stored) || stored?.kind !== 'response') return null;
    stored = softened(fill.policy.tenantId, stored);
    if (reusable(stored, now(), null) !== 'HIT') return null;
    // Read before a purge this replica heard meanwhile: it answers the requests waiting for this fill,
    // which came before the purge, but no request after it from the L1.
    if (!entryPurgedHereSince(fill.policy, fill.pathIndexKey, stored, readAt))
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
    if (request.method === 'HEAD' && swrStale === null) {
      // Only a GET's response is stored: the requests behind a HEAD going to the origin look again
      // (one GET fills the key), and it takes no lease other replicas' GETs would wait on.
      handOver(fill);
      return proceed();
    }
    if (wanted !== null || fill.replacesPurged || (await takeLease(fill))) return proceed();
    if (swrStale !== null) {
      finishFlight(fill.flight, { ...swrStale, stale: true });
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
        finishFlight(fill.flight, filled);
        count(state, 'HIT');
        return { outcome: 'HIT', entry: filled.entry, key: filled.key };
      }
      if (leased) return proceed();
    }
    return proceed();
  };

  return { claim, releaseLease, dropFill, handOver };
}
