import { Counter, Registry } from 'prom-client';
import type { CacheStore } from '../cache-store.js';
import type { L1Cache } from '../l1-cache.js';
import { orderedClock } from '../ordered-clock.js';
import { createPurgeGenerations, type ReplicaPurgeGenerations } from '../purge-generations.js';

/**
 * A replica's purge generations over `shared` and `l1`, with their own metrics: for tests of the purge
 * subscription's own handling, so the generations are never read again on a timer.
 */
export function subscriptionOnlyGenerations(shared: CacheStore, l1: L1Cache): ReplicaPurgeGenerations {
  const registry = new Registry();
  return createPurgeGenerations({
    shared,
    l1,
    purges: new Counter({ name: 'purges', help: 'p', labelNames: ['kind'], registers: [registry] }),
    purgeVisits: new Counter({ name: 'purge_visits', help: 'v', registers: [registry] }),
    now: Date.now,
    orderedNow: orderedClock(Date.now),
    retryDelayMs: 100,
    generationRefreshMs: 0,
    forgottenRouteGraceMs: undefined,
  });
}
