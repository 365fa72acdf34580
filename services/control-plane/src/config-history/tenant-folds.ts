import { foldSnapshotEvent, type SnapshotState } from '@vantageedge/projections/snapshots/fold';
import type { ControlPlaneEvent } from '@vantageedge/shared/domain/events';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import { configReadBudgetOf } from './config-read-budget.js';
import { type TenantEventSource, tenantEventPages } from './tenant-events.js';

/**
 * A tenant's config folded up to a position, kept between calls so the current config is not re-read
 * and re-folded from the tenant's first event on every explain or GET …/config: a call folds only the
 * events after the position it starts from.
 *
 * - Keyed by tenant id; an entry holds the fold of *every* event of that tenant up to its position,
 *   read only up to a position no later than the newest committed event (so no event can later appear
 *   below it: positions are given in commit order). A call at position p starts from the entry when
 *   its position is ≤ p, and reads the tenant's events in (entry, p]; an entry never moves back.
 * - A change appends events, so the next call at the new head folds just those: read-your-writes
 *   (X-Min-Position, X-Event-Position) holds as without the cache.
 * - Past positions: besides its newest fold, a tenant keeps checkpoints, the fold after every 250th
 *   of its events (`checkpointEvents`), taken by any fold that passes them. A call at an older
 *   position starts from the nearest fold at or before it, so it reads at most that many events (or,
 *   when the checkpoint was evicted, every event up to the position, never one after it).
 * - Events are read and folded a page at a time (tenant-events.ts), so a fold holds one page besides
 *   the config. A source with `maxEventsRead` (admin reads) stops before reading more than that, one
 *   `chargedToReadBudget` before a page once the tenant's config read budget is in debt; a fold that
 *   stops part-way keeps what it folded as a checkpoint, so the same call made again goes on from there.
 * - Concurrent calls for one tenant and position share one read and fold.
 * - Bounded in bytes (CONTROL_PLANE_CONFIG_CACHE_BYTES, their JSON size, roughly, each fold counted
 *   whole though folds share structure), least recently used out; a fold larger than the whole budget
 *   is not kept. One tenant's folds hold at most half of it: past that, its own least recently used
 *   checkpoints go first, then its newest fold (its fold just kept stays, however large). Cached states
 *   are frozen: callers share them.
 * - A fold holds the config only, whose API keys are the live ones (TENANT_MAX_API_KEYS): not the keys the
 *   tenant revoked or issued already expired, of which it may have any number (explain finds those in
 *   the read models: explain/former-keys.ts).
 */

export interface TenantFold {
  /** Every event of the tenant at or before this position is folded in. */
  readonly position: bigint;
  /** How many of the tenant's events that is. */
  readonly events: number;
  readonly state: SnapshotState | undefined;
}

export const EMPTY_FOLD: TenantFold = { position: 0n, events: 0, state: undefined };

/** By default, a checkpoint every so many events of a tenant. */
export const DEFAULT_CHECKPOINT_EVENTS = 250;

/**
 * `fold` moved to `position` by the tenant's events after `fold.position`, with the snapshot
 * projector's own fold. An event the fold refuses is skipped: the config as recorded goes on (the
 * snapshot projector parks such an event and quarantines the tenant's snapshot, which the rollout
 * status shows). Pure: `fold` is not changed; the
 * folds after every `checkpoints.every`-th event of the tenant are added to `checkpoints.folds`.
 */
export function foldTenantEvents(
  fold: TenantFold,
  events: readonly ControlPlaneEvent[],
  position: bigint,
  checkpoints?: { every: number; folds: TenantFold[] },
): TenantFold {
  let state = fold.state;
  let count = fold.events;
  for (const event of events) {
    try {
      state = foldSnapshotEvent(state, event);
    } catch {
      // Skipped: see above.
    }
    count += 1;
    if (checkpoints !== undefined && count % checkpoints.every === 0) {
      checkpoints.folds.push({ position: event.position, events: count, state });
    }
  }
  return { position, events: count, state };
}

export interface TenantFoldCache {
  /** A checkpoint after every so many events of a tenant. */
  readonly checkpointEvents: number;
  /**
   * The tenant's cached fold with the greatest position at or before `position` (its newest fold or a
   * checkpoint), most recently used from now on.
   */
  nearest(tenantId: string, position: bigint): TenantFold | undefined;
  /** Keeps `fold` as the tenant's newest fold, unless it already has a later one. */
  set(tenantId: string, fold: TenantFold): void;
  /** Keeps `fold` as a checkpoint of the tenant. */
  checkpoint(tenantId: string, fold: TenantFold): void;
  /** The (approximate) bytes held, and the number of folds. */
  stats(): { bytes: number; folds: number };
}

export const DEFAULT_CONFIG_CACHE_BYTES = 64 * 1024 * 1024;

interface Entry {
  key: string;
  tenantId: string;
  fold: TenantFold;
  bytes: number;
}

export function createTenantFoldCache({
  maxBytes = DEFAULT_CONFIG_CACHE_BYTES,
  maxTenantBytes = Math.floor(maxBytes / 2),
  checkpointEvents = DEFAULT_CHECKPOINT_EVENTS,
}: {
  maxBytes?: number;
  /** What one tenant's folds may hold before its own least recently used go (default: half). */
  maxTenantBytes?: number;
  checkpointEvents?: number;
} = {}): TenantFoldCache {
  // A Map iterates in insertion order: re-inserting on use keeps the least recently used first.
  const entries = new Map<string, Entry>();
  // Per tenant, the keys of its folds (its newest, its checkpoints), least recently used first.
  const byTenant = new Map<string, Map<string, Entry>>();
  const bytesOfTenant = new Map<string, number>();
  let total = 0;

  const newestKey = (tenantId: string) => `${tenantId} newest`;
  const remove = (entry: Entry) => {
    if (!entries.delete(entry.key)) return;
    total -= entry.bytes;
    const folds = byTenant.get(entry.tenantId);
    folds?.delete(entry.key);
    bytesOfTenant.set(entry.tenantId, (bytesOfTenant.get(entry.tenantId) ?? 0) - entry.bytes);
    if (folds?.size === 0) {
      byTenant.delete(entry.tenantId);
      bytesOfTenant.delete(entry.tenantId);
    }
  };
  const add = (key: string, tenantId: string, fold: TenantFold) => {
    const bytes = sizeOfFold(tenantId, fold);
    if (bytes > maxBytes) return;
    const entry: Entry = { key, tenantId, fold, bytes };
    entries.set(key, entry);
    total += bytes;
    let folds = byTenant.get(tenantId);
    if (folds === undefined) {
      folds = new Map();
      byTenant.set(tenantId, folds);
    }
    folds.set(key, entry);
    bytesOfTenant.set(tenantId, (bytesOfTenant.get(tenantId) ?? 0) + bytes);
    // Past its share, the tenant's own folds make room: its folds at many positions (a checkpoint every
    // few hundred of its events) would otherwise push out every other tenant's, each of which would then
    // read its whole history again on its next config read, explain or command. Its checkpoints go
    // before its newest fold, which its commands and current reads fold on from: a read far back in its
    // history would otherwise leave them to fold on from there, past the config read bounds.
    const overShare = () => (bytesOfTenant.get(tenantId) ?? 0) > maxTenantBytes;
    const newest = newestKey(tenantId);
    for (const own of folds.values()) {
      if (!overShare()) break;
      if (own !== entry && own.key !== newest) remove(own);
    }
    for (const own of folds.values()) {
      if (!overShare()) break;
      if (own !== entry) remove(own);
    }
    for (const oldest of entries.values()) {
      if (total <= maxBytes) break;
      remove(oldest);
    }
  };

  return {
    checkpointEvents,
    nearest(tenantId, position) {
      let best: Entry | undefined;
      for (const entry of byTenant.get(tenantId)?.values() ?? []) {
        if (
          entry.fold.position <= position &&
          (best === undefined || entry.fold.position > best.fold.position)
        ) {
          best = entry;
        }
      }
      if (best === undefined) return undefined;
      entries.delete(best.key);
      entries.set(best.key, best);
      const folds = byTenant.get(tenantId);
      folds?.delete(best.key);
      folds?.set(best.key, best);
      return best.fold;
    },
    set(tenantId, fold) {
      const current = entries.get(newestKey(tenantId));
      if (current !== undefined) {
        if (current.fold.position >= fold.position) return;
        remove(current);
      }
      add(newestKey(tenantId), tenantId, fold);
    },
    checkpoint(tenantId, fold) {
      const key = `${tenantId} ${fold.position}`;
      if (!entries.has(key)) add(key, tenantId, fold);
    },
    stats: () => ({ bytes: total, folds: entries.size }),
  };
}

/** Each store's cache: every router and command of one control plane over that store shares it. */
const cachesByStore = new WeakMap<EventStore, TenantFoldCache>();

/** The cache folds over `store` use when their source names none (set once, at start-up). */
export function useTenantFoldCache(store: EventStore, cache: TenantFoldCache): void {
  cachesByStore.set(store, cache);
}

function cacheOf(source: TenantEventSource): TenantFoldCache {
  if (source.folds) return source.folds;
  let cache = cachesByStore.get(source.store);
  if (cache === undefined) {
    cache = createTenantFoldCache();
    cachesByStore.set(source.store, cache);
  }
  return cache;
}

/** Folds being computed, per cache: concurrent calls for one tenant and position share one. */
const foldsInFlight = new WeakMap<TenantFoldCache, Map<string, Promise<TenantFold>>>();

/**
 * The tenant's fold after every event up to and including `position`. Starts from the nearest cached
 * fold at or before `position` (else from the start), reads only the events in between, and keeps
 * the result when it is later than the tenant's newest fold, and the checkpoints it passed.
 */
export function tenantFoldAt(
  source: TenantEventSource,
  tenantId: string,
  position: bigint,
): Promise<TenantFold> {
  const cache = cacheOf(source);
  const start = cache.nearest(tenantId, position) ?? EMPTY_FOLD;
  if (start.position === position) return Promise.resolve(start);
  let flights = foldsInFlight.get(cache);
  if (flights === undefined) {
    flights = new Map();
    foldsInFlight.set(cache, flights);
  }
  // A fold under a read limit or budget may stop where one without it goes on, or one charged to another
  // bucket of the budget: they do not share.
  const charged = source.chargedToReadBudget === true && (source.chargedToReaders ? 'readers' : 'writers');
  const key = `${tenantId} ${position} ${source.maxEventsRead ?? 'unlimited'} ${charged}`;
  const running = flights.get(key);
  if (running !== undefined) return running;
  const fold = foldOn(source, cache, tenantId, start, position).finally(() => flights.delete(key));
  flights.set(key, fold);
  return fold;
}

async function foldOn(
  source: TenantEventSource,
  cache: TenantFoldCache,
  tenantId: string,
  start: TenantFold,
  position: bigint,
): Promise<TenantFold> {
  // Only a position whose every event is committed may be cached: later appends land above it.
  const cacheable = position <= (await source.store.headPosition());
  const budget = source.chargedToReadBudget
    ? configReadBudgetOf(source.store, source.chargedToReaders ? 'read' : 'write')
    : undefined;
  let fold = start;
  try {
    for await (const page of tenantEventPages(source, tenantId, position, start.position)) {
      const checkpoints = { every: cache.checkpointEvents, folds: [] as TenantFold[] };
      fold = foldTenantEvents(fold, page.events, page.through, checkpoints);
      if (cacheable) for (const checkpoint of checkpoints.folds) cache.checkpoint(tenantId, checkpoint);
      budget?.spendFoldedEvents(tenantId, page.events);
      // Before the next page is read: the read was admitted, its next pages only while the budget lasts.
      if (page.through < position) budget?.admit(tenantId);
    }
  } catch (error) {
    // Stopped part-way (over the read limit, a read cut off): what was folded is kept, so asking again
    // folds on from there.
    if (cacheable && fold.position > start.position) cache.checkpoint(tenantId, fold);
    throw error;
  }
  fold = foldTenantEvents(fold, [], position);
  if (cacheable) cache.set(tenantId, fold);
  return fold;
}

/** Sizes of frozen values, computed once: successive folds share most of their structure. */
const sizes = new WeakMap<object, number>();

/** Approximately the fold's JSON size; freezes what it measures (cached states are shared). */
function sizeOfFold(tenantId: string, fold: TenantFold): number {
  return tenantId.length + 64 + frozenSize(fold.state);
}

function frozenSize(value: unknown): number {
  if (typeof value === 'string') return value.length + 2;
  if (typeof value !== 'object' || value === null) return 8;
  const known = sizes.get(value);
  if (known !== undefined) return known;
  let bytes = 2;
  for (const [key, item] of Object.entries(value)) bytes += key.length + 4 + frozenSize(item);
  Object.freeze(value);
  sizes.set(value, bytes);
  return bytes;
}
