import type {
  CachePurgeMessage,
  PurgeGenerations,
  PurgeTarget,
  TagPurgeTarget,
} from '@vantageedge/shared/cache-purge/purge-protocol';
import { DEFAULT_TENANT_CACHE_MAX_BYTES } from '@vantageedge/shared/domain/gateway-config';
import type { TenantNodeOf } from '@vantageedge/shared/redis/tenant-node';
import { type CacheEntry, type CacheRecord, recordSize } from './cache-entry.js';

/**
 * The port behind the response cache's shared tier: RedisCacheStore shares entries and purges between
 * replicas, MemoryCacheStore keeps them in this process (single-process mode). Both pass one contract
 * suite (cache-store.contract.ts). Keys are built by the response cache (all of a tenant's under
 * `c:{<tenant_id>}:`, see @vantageedge/shared/cache-purge); an adapter may prepend its own prefix.
 *
 * Every method may reject when the store is unreachable; the response cache puts them behind a
 * circuit (store-circuit.ts) and answers BYPASS instead.
 */
export interface CacheStore {
  /** The node holding a tenant's entries (a Redis Cluster's master), for a circuit per node. */
  readonly nodeOf?: TenantNodeOf | undefined;

  /** The record under `key` (a response, or the Vary marker of a URL whose responses vary), or null. */
  get(key: string): Promise<CacheRecord | null>;

  /**
   * Stores the response of a URL that does not vary, for `ttlMs`, listed under `pathIndexKey`.
   * Within its tenant's byte bound (see TenantBound): refused when the entry alone is larger.
   * `too_large_to_share`: larger than one store command may move (RedisCacheStore), kept in L1 only.
   * `changed`: the write was `replacing` a response the key no longer holds; nothing was written.
   */
  putResponse(write: ResponseWrite): Promise<PutOutcome>;

  /**
   * Stores one variant of a URL whose responses vary on request headers: a VaryMarker at the URL key
   * (kept at least as long as its longest-lived variant) and the response at the variant key, both
   * listed under the path index. When the URL already has `maxVariants` other live variants, its least
   * recently used ones (stored, refreshed or read from the store longest ago) make room: they leave the
   * store, the path index, their tag sets and the tenant's share (reported as `vary_cap` evictions).
   * A write `replacing` a response also needs the URL's marker to be the one it writes (the URL still
   * varies on the same headers): `changed` otherwise, nothing written.
   */
  putVariant(write: VariantWrite): Promise<PutOutcome>;

  /** Drops every key listed under the path index, then tells every replica (a `path` purge message). */
  invalidatePath(pathIndexKey: string): Promise<void>;

  /**
   * Tells every replica to drop its memory copies of the keys listed under the path index (a `path`
   * purge message), keeping the store's own: one of them was stored again (marked stale), and the
   * replicas read it anew.
   */
  dropCopies(pathIndexKey: string): Promise<void>;

  /**
   * The right to fetch `key` from the origin, across every replica, for at most `ttlMs`: a token when
   * it was free (give it back with releaseLease), null while another holder has it.
   */
  acquireLease(key: string, ttlMs: number): Promise<string | null>;

  /** Gives a lease back early (only if `token` still holds it). */
  releaseLease(key: string, token: string): Promise<void>;

  /** A tenant's purge generations (all 0 for a tenant never purged). */
  generations(tenantId: string): Promise<PurgeGenerations>;

  /** Bumps the target's generation and tells every replica; resolves with the message sent. */
  purge(target: PurgeTarget): Promise<CachePurgeMessage>;

  /**
   * Deletes the tenant's entries, what lists them and its byte-bound accounting (keys without an
   * expiry) once this replica no longer serves the tenant: an origin may have said to keep its
   * responses for decades. (Its purge generations are the control plane's to forget: only purges write
   * them.) Absent where the store does not outlive the process.
   */
  forgetTenantEntries?(tenantId: string): Promise<void>;

  /**
   * Evicts the tenant's least recently used entries until its bytes are within `maxBytes` (undefined:
   * the store's default bound), as its writes would one by one: run when a config lowers the bound, so
   * the tenant's share shrinks then, not only once it stores again. `configVersion` is the tenant config
   * version that bound is from: a store shared by replicas does not trim with a bound older than one a
   * replica already trimmed for (a replica applying configs later than another).
   */
  trimTenant(tenantId: string, maxBytes: number | undefined, configVersion: bigint): Promise<void>;

  /** Drops every entry tagged with one of the tags and tells every replica; resolves with the message. */
  purgeTagged(target: TagPurgeTarget): Promise<CachePurgeMessage>;

  /**
   * Purge messages from every replica, this one's included (at least once; applying one twice is
   * harmless). `onResync` runs once the subscription holds again after a gap in which messages may
   * have been missed (the first subscription, a reconnect, a Cluster subscriber moved to another node):
   * drop what a lost message would have dropped, reload state.
   */
  subscribe(listener: PurgeListener): void;

  close(): Promise<void>;
}

export interface PurgeListener {
  onPurge(message: CachePurgeMessage): void;
  onResync(): void;
}

/**
 * `purged`: a purge of one of the write's listings (its path index, a tag set) came after its origin was
 * asked (askedMsAgo): the answer may be what the purge removed, and nothing was written.
 */
export type PutOutcome = 'stored' | 'over_tenant_bound' | 'too_large_to_share' | 'changed' | 'purged';

export interface ResponseWrite {
  readonly key: string;
  readonly entry: CacheEntry;
  /**
   * Written only while the key still holds this response (the same record but for its body, recordHead),
   * checked and written in one step: a response stored again (marked stale) never replaces one another
   * replica stored meanwhile, nor brings back one a purge or eviction dropped.
   */
  readonly replacing?: CacheEntry | undefined;
  readonly ttlMs: number;
  readonly pathIndexKey: string;
  /** The tag sets (tagIndexKey of each of the entry's tags) the key is listed in. */
  readonly tagIndexKeys?: readonly string[] | undefined;
  /** This tenant's byte bound, when it differs from the store's default (tenantMaxBytes). */
  readonly tenantMaxBytes?: number | undefined;
  /**
   * How long ago (ms) the response's origin was asked for it: a purge of its path index or of one of
   * its tag sets since then (purgeFenceKey) leaves it unwritten (`purged`). Unset: not checked.
   */
  readonly askedMsAgo?: number | undefined;
  /**
   * When the origin was asked, by the writer's clock (epoch ms). The writer and the store read their
   * clocks at different moments, each to the millisecond: a store sharing the writer's clock checks the
   * fence against this reading too, so a purge in the millisecond the origin was asked never reads as
   * older than the ask because a millisecond ended between the two readings.
   */
  readonly askedAt?: number | undefined;
}

export interface VariantWrite extends ResponseWrite {
  /** The URL's own key, where the VaryMarker goes; `key` is the variant's. */
  readonly urlKey: string;
  readonly maxVariants: number;
}

/**
 * A tenant's share of the store: the bytes of its stored entries are bounded (per tenant, so one
 * tenant cannot evict everyone else's entries). Storing past the bound evicts the tenant's least
 * recently used entries (a read from the store counts as a use; the L1 does not touch the store), at
 * most MAX_EVICTIONS_PER_STORE per write so no write does unbounded work. A tenant within its bound
 * without the entry takes it even if those evictions leave it over by up to the entry; one still over
 * its bound without it does not store it (`over_tenant_bound`) until later writes have evicted enough.
 * So a tenant holds at most twice its bound, and a large entry is never starved by many small ones.
 */
export const MAX_EVICTIONS_PER_STORE = 32;

/**
 * What one listing of a key costs the store beyond the key's characters: a Redis set member, hash field
 * or sorted-set member (allocator rounding, dict entry, skiplist node), or the key itself with its TTL.
 */
const LISTING_OVERHEAD_BYTES = 96;

/**
 * What an entry counts against its tenant's bound: its record, and what keeping track of it costs
 * the store. In Redis that is its key, its members in the tenant's LRU, sizes and listings
 * (`bound:lists`), in its path index and tag sets, and for a variant its member in the URL's variant
 * set and the URL's Vary marker. Counting them keeps a tenant's whole footprint in Redis within
 * a small multiple of its bound however small its entries are (REDIS_FOOTPRINT_FACTOR); the in-memory
 * store counts the same, so both evict alike. `keyPrefix` is the adapter's own prefix (Redis).
 */
export function chargedBytes(
  write: ResponseWrite | VariantWrite,
  recordBytes: number,
  keyPrefix = '',
): number {
  const listing = (key: string) => keyPrefix.length + key.length + LISTING_OVERHEAD_BYTES;
  const sets = [write.pathIndexKey, ...(write.tagIndexKeys ?? [])];
  let bytes = recordBytes + listing(write.key) * (4 + sets.length);
  for (const set of sets) bytes += keyPrefix.length + set.length + 2;
  if ('urlKey' in write) {
    const marker = recordSize({ kind: 'vary', varyOn: write.entry.varyOn });
    bytes += listing(write.key) + 3 * listing(write.urlKey) + marker;
  }
  return bytes;
}

/**
 * Why an entry left a tenant's share: pushed out by newer ones, found already expired/deleted, or a
 * URL's least recently used variant replaced by a new one at the Vary cap.
 */
export type EvictionReason = 'lru' | 'expired' | 'vary_cap';

export interface TenantBoundOptions {
  /** The default byte bound of every tenant's entries (GATEWAY_CACHE_TENANT_MAX_BYTES). */
  tenantMaxBytes?: number | undefined;
  /** Told how many entries a write evicted, per reason (metrics). */
  onEvicted?: ((reason: EvictionReason, count: number) => void) | undefined;
}

export const DEFAULT_TENANT_MAX_BYTES = DEFAULT_TENANT_CACHE_MAX_BYTES;

const TENANT_OF_KEY = /^c:\{([^}]*)\}:/;

/** The tenant whose keyspace (`c:{<tenant_id>}:`) holds `key`, or undefined for any other key. */
export function tenantOfKey(key: string): string | undefined {
  return TENANT_OF_KEY.exec(key)?.[1];
}

/** `c:{<tenant>}:<tenant generation>:<route>:`: how the response cache's keys begin. */
const ROUTE_OF_KEY = /^c:\{[^}]*\}:[^:]*:([^:]+):/;

/** The route whose entries `key` is one of, for a response cache key; undefined for any other key. */
export function routeOfKey(key: string): string | undefined {
  return ROUTE_OF_KEY.exec(key)?.[1];
}
