import { randomUUID } from 'node:crypto';
import {
  CACHE_SOFT_PURGED_TAGS_MAX,
  type CachePurgeMessage,
  generationField,
  type PurgeGenerations,
  type PurgeTarget,
  purgeMessageFor,
  SoftPurgedTagsFull,
  type TagPurgeTarget,
  TENANT_GENERATION_FIELD,
  tagIndexKey,
  tagPurgeMessages,
  tenantKeyspace,
} from '@vantageedge/shared/cache-purge/purge-protocol';
import { LRUCache } from 'lru-cache';
import {
  type CacheEntry,
  type CacheRecord,
  encodedRecordBytes,
  l1EntryBytes,
  recordHead,
} from './cache-entry.js';
import {
  type CacheStore,
  chargedBytes,
  DEFAULT_TENANT_MAX_BYTES,
  type PurgeListener,
  type PutOutcome,
  type ResponseWrite,
  type TenantBoundOptions,
  tenantOfKey,
  type VariantWrite,
} from './cache-store.js';
import { PurgeFence } from './purge-fence.js';
import { TenantByteBound } from './tenant-byte-bound.js';
import { TENANT_MEMORY_SHARE, tenantShareOf } from './tenant-memory-share.js';

interface Slot {
  record: CacheRecord;
  pathIndexKey: string;
  /** For a variant: its URL's key. */
  urlKey: string | undefined;
}

export interface MemoryCacheStoreOptions extends TenantBoundOptions {
  /** Size bound of the whole store in bytes (least recently used records go first). */
  maxBytes: number;
  /**
   * The part of `maxBytes` one tenant's entries may hold, whatever its own bound (default
   * TENANT_MEMORY_SHARE, a quarter): the whole store would otherwise be one LRU every tenant's fills
   * push the others' entries out of.
   */
  tenantShare?: number | undefined;
  now?: () => number;
}

/**
 * The cache store in process memory: single-process mode (no Redis), where this process is the only
 * replica. Same semantics as RedisCacheStore (cache-store.contract.ts); purge messages go to this
 * process's own listeners.
 */
export class MemoryCacheStore implements CacheStore {
  readonly #slots: LRUCache<string, Slot>;
  readonly #pathIndexes = new Map<string, Set<string>>();
  readonly #variants = new Map<string, Set<string>>();
  readonly #generations = new Map<string, PurgeGenerations>();
  readonly #listeners: PurgeListener[] = [];
  readonly #leases = new Map<string, { token: string; until: number }>();
  readonly #now: () => number;
  readonly #tenantBound = new TenantByteBound();
  readonly #tenantMaxBytes: number;
  readonly #tenantShareBytes: number;
  readonly #onEvicted: TenantBoundOptions['onEvicted'];
  readonly #fence: PurgeFence;

  constructor(options: MemoryCacheStoreOptions) {
    this.#now = options.now ?? Date.now;
    this.#fence = new PurgeFence(this.#now);
    this.#tenantMaxBytes = options.tenantMaxBytes ?? DEFAULT_TENANT_MAX_BYTES;
    this.#tenantShareBytes = tenantShareOf(options.maxBytes, options.tenantShare ?? TENANT_MEMORY_SHARE);
    this.#onEvicted = options.onEvicted;
    this.#slots = new LRUCache<string, Slot>({
      maxSize: options.maxBytes,
      // What the entry holds in the heap (its key, indexes and fixed costs too), as the L1 counts it: a
      // record's own bytes alone let many small entries take several times the bound.
      sizeCalculation: (slot, key) => l1EntryBytes(slot.record, key, slot.pathIndexKey, slot.urlKey),
      ...(options.now ? { perf: { now: options.now } } : {}),
      dispose: (slot, key, reason) => {
        if (reason !== 'set') this.#forget(key, slot);
      },
      // After the operation, when the cache may be changed again: a URL's Vary marker leaves with its
      // last variant, as in the Redis store. Only the variants are charged to the tenant's bound (the
      // marker within each): markers left behind would fill the store past every tenant's share.
      disposeAfter: (slot, _key, reason) => {
        if (reason !== 'set' && slot.urlKey !== undefined) this.#dropOrphanedMarker(slot.urlKey);
      },
    });
  }

  acquireLease(key: string, ttlMs: number): Promise<string | null> {
    const held = this.#leases.get(key);
    if (held && held.until > this.#now()) return Promise.resolve(null);
    const token = randomUUID();
    this.#leases.set(key, { token, until: this.#now() + ttlMs });
    return Promise.resolve(token);
  }

  releaseLease(key: string, token: string): Promise<void> {
    if (this.#leases.get(key)?.token === token) this.#leases.delete(key);
    return Promise.resolve();
  }

  get(key: string): Promise<CacheRecord | null> {
    const slot = this.#slots.get(key);
    const record = slot?.record ?? null;
    const tenantId = tenantOfKey(key);
    if (record && tenantId !== undefined) this.#tenantBound.touch(tenantId, key);
    if (slot?.urlKey !== undefined) {
      // A URL's variants are kept least recently used first: the Vary cap replaces the first.
      const variants = this.#variants.get(slot.urlKey);
      if (variants?.delete(key)) variants.add(key);
    }
    return Promise.resolve(record);
  }

  putResponse(write: ResponseWrite): Promise<PutOutcome> {
    const { key, entry, ttlMs, pathIndexKey } = write;
    if (write.replacing !== undefined && !this.#holds(key, write.replacing))
      return Promise.resolve('changed');
    if (this.#purgedSinceAsked(write)) return Promise.resolve('purged');
    if (!this.#admit(write, chargedBytes(write, encodedRecordBytes(entry)))) {
      return Promise.resolve('over_tenant_bound');
    }
    this.#set(key, { record: entry, pathIndexKey, urlKey: undefined }, ttlMs);
    return Promise.resolve('stored');
  }

  putVariant(write: VariantWrite): Promise<PutOutcome> {
    const { key, urlKey, entry, ttlMs, pathIndexKey, maxVariants } = write;
    if (write.replacing !== undefined) {
      const marker = this.#slots.peek(urlKey)?.record;
      const sameMarker =
        marker?.kind === 'vary' &&
        recordHead(marker).equals(recordHead({ kind: 'vary', varyOn: entry.varyOn }));
      if (!sameMarker || !this.#holds(key, write.replacing)) return Promise.resolve('changed');
    }
    if (this.#purgedSinceAsked(write)) return Promise.resolve('purged');
    const size = chargedBytes(write, encodedRecordBytes(entry));
    if (size > this.#maxBytesOf(write)) return Promise.resolve('over_tenant_bound');
    let variants = this.#variants.get(urlKey);
    if (variants && !variants.has(key)) this.#makeRoomForVariant(variants, maxVariants);
    // The URL held a response (it did not vary before): the marker replaces it in the tenant's share,
    // and it goes if the variant is refused, as in the Redis store.
    const urlTenant = tenantOfKey(urlKey);
    const urlHeldResponse = this.#slots.peek(urlKey)?.record.kind === 'response';
    if (urlHeldResponse && urlTenant !== undefined) this.#tenantBound.forget(urlTenant, urlKey);
    if (!this.#admit(write, size)) {
      if (urlHeldResponse) this.#slots.delete(urlKey);
      return Promise.resolve('over_tenant_bound');
    }
    this.#set(key, { record: entry, pathIndexKey, urlKey }, ttlMs);
    if (!this.#slots.has(key)) return Promise.resolve('stored'); // larger than the whole store
    variants = this.#variants.get(urlKey) ?? new Set();
    this.#variants.set(urlKey, variants);
    // Stored again (refreshed) is a use: to the back, as a read moves it.
    variants.delete(key);
    variants.add(key);
    const markerTtl = Math.max(ttlMs, this.#slots.getRemainingTTL(urlKey));
    this.#set(
      urlKey,
      { record: { kind: 'vary', varyOn: entry.varyOn }, pathIndexKey, urlKey: undefined },
      markerTtl,
    );
    return Promise.resolve('stored');
  }

  purgeTagged({ tenantId, tags, soft }: TagPurgeTarget): Promise<CachePurgeMessage> {
    if (soft) {
      let known = this.#generations.get(tenantId);
      if (!known) {
        known = { tenant: 0, routes: new Map(), softTags: new Map() };
        this.#generations.set(tenantId, known);
      }
      // As the Redis store: all of the tags, or none when they would take the tenant past the bound.
      const added = new Set(tags.filter((tag) => !known.softTags.has(tag))).size;
      if (added > 0 && known.softTags.size + added > CACHE_SOFT_PURGED_TAGS_MAX)
        return Promise.reject(new SoftPurgedTagsFull(known.softTags.size));
      const softAt = this.#now();
      for (const tag of tags) {
        known.softTags.set(tag, softAt);
        this.#fence.purged(tenantId, tagIndexKey('', tenantId, tag));
      }
      const message: CachePurgeMessage = { kind: 'tags', tenantId, tags: [...tags], softAt };
      this.#announce(message);
      return Promise.resolve(message);
    }
    // As the Redis store: the tagged entries are gone, and so are their soft purges.
    for (const tag of tags) this.#fence.purged(tenantId, tagIndexKey('', tenantId, tag));
    const softTags = this.#generations.get(tenantId)?.softTags;
    for (const tag of tags) softTags?.delete(tag);
    const keyspace = tenantKeyspace('', tenantId);
    const wanted = new Set(tags);
    for (const [key, slot] of [...this.#slots.entries()]) {
      if (!key.startsWith(keyspace) || slot.record.kind !== 'response') continue;
      if (slot.record.tags.some((tag) => wanted.has(tag))) this.#slots.delete(key);
    }
    const message: CachePurgeMessage = { kind: 'tags', tenantId, tags: [...tags] };
    this.#announce(message);
    return Promise.resolve(message);
  }

  invalidatePath(pathIndexKey: string): Promise<void> {
    const tenantId = tenantOfKey(pathIndexKey);
    if (tenantId !== undefined) this.#fence.purged(tenantId, pathIndexKey);
    for (const key of [...(this.#pathIndexes.get(pathIndexKey) ?? [])]) this.#slots.delete(key);
    this.#pathIndexes.delete(pathIndexKey);
    return this.dropCopies(pathIndexKey);
  }

  dropCopies(pathIndexKey: string): Promise<void> {
    this.#announce({ kind: 'path', pathIndexKey });
    return Promise.resolve();
  }

  generations(tenantId: string): Promise<PurgeGenerations> {
    const known = this.#generations.get(tenantId);
    return Promise.resolve({
      tenant: known?.tenant ?? 0,
      routes: new Map(known?.routes ?? []),
      softTags: new Map(known?.softTags ?? []),
    });
  }

  purge(target: PurgeTarget): Promise<CachePurgeMessage> {
    let known = this.#generations.get(target.tenantId);
    if (!known) {
      known = { tenant: 0, routes: new Map(), softTags: new Map() };
      this.#generations.set(target.tenantId, known);
    }
    const field = generationField(target);
    let bumped: number;
    if (field === TENANT_GENERATION_FIELD) {
      bumped = ++known.tenant;
      known.softTags.clear();
    } else {
      bumped = (known.routes.get(field) ?? 0) + 1;
      known.routes.set(field, bumped);
    }
    const message = purgeMessageFor(target, bumped);
    this.#announce(message);
    return Promise.resolve(message);
  }

  subscribe(listener: PurgeListener): void {
    this.#listeners.push(listener);
  }

  close(): Promise<void> {
    this.#listeners.length = 0;
    return Promise.resolve();
  }

  /** A purge of the write's path index or one of its tag sets came since its origin was asked. */
  #purgedSinceAsked(write: ResponseWrite): boolean {
    const tenantId = tenantOfKey(write.key);
    if (write.askedMsAgo === undefined || tenantId === undefined) return false;
    const listings = [write.pathIndexKey, ...(write.tagIndexKeys ?? [])];
    const askedAt = Math.min(this.#now() - write.askedMsAgo, write.askedAt ?? Number.POSITIVE_INFINITY);
    return this.#fence.purgedSince(tenantId, listings, askedAt);
  }

  /** Whether `key` holds `entry` as stored (the same record but for its body), as the Redis store checks. */
  #holds(key: string, entry: CacheEntry): boolean {
    const record = this.#slots.peek(key)?.record;
    return record?.kind === 'response' && recordHead(record).equals(recordHead(entry));
  }

  /** Not shared: this replica applies its tenant's configs in order, so every bound asked is the newest. */
  trimTenant(tenantId: string, maxBytes: number | undefined, _configVersion: bigint): Promise<void> {
    const bound = Math.min(maxBytes ?? this.#tenantMaxBytes, this.#tenantShareBytes);
    this.#evict(tenantId, this.#tenantBound.overBound(tenantId, bound));
    return Promise.resolve();
  }

  /** Drops the tenant's victims of its bound, counted as evicted or (already gone) expired. */
  #evict(tenantId: string, victims: readonly string[]): void {
    let evicted = 0;
    let expired = 0;
    for (const victim of victims) {
      if (this.#slots.has(victim)) evicted++;
      else expired++;
      this.#slots.delete(victim);
      this.#tenantBound.forget(tenantId, victim);
    }
    if (evicted > 0) this.#onEvicted?.('lru', evicted);
    if (expired > 0) this.#onEvicted?.('expired', expired);
  }

  /** The tenant's bound: its own (or the default), within its share of this store. */
  #maxBytesOf(write: ResponseWrite): number {
    const bound = write.tenantMaxBytes ?? this.#tenantMaxBytes;
    return tenantOfKey(write.key) === undefined ? bound : Math.min(bound, this.#tenantShareBytes);
  }

  /**
   * Accounts the write of `size` bytes (chargedBytes, as the Redis store does) against its tenant's
   * bound and evicts the tenant's least recently used entries while over it; false (nothing changed)
   * when the entry alone is larger than the bound.
   */
  #admit(write: ResponseWrite | VariantWrite, size: number): boolean {
    const maxBytes = this.#maxBytesOf(write);
    if (size > maxBytes) return false;
    const tenantId = tenantOfKey(write.key);
    if (tenantId === undefined) return true;
    const { victims, admitted } = this.#tenantBound.admit(tenantId, write.key, size, maxBytes);
    this.#evict(tenantId, victims);
    if (!admitted) {
      this.#tenantBound.forget(tenantId, write.key);
      this.#slots.delete(write.key);
    }
    return admitted;
  }

  #set(key: string, slot: Slot, ttlMs: number): void {
    // A Vary marker replacing a response takes no share of the tenant's bound.
    const tenantId = tenantOfKey(key);
    if (slot.record.kind === 'vary' && tenantId !== undefined) this.#tenantBound.forget(tenantId, key);
    this.#slots.set(key, slot, { ttl: ttlMs });
    if (!this.#slots.has(key)) {
      // Too large: lru-cache dropped any previous record of the key without a dispose we act on.
      this.#forget(key, slot);
      return;
    }
    let keys = this.#pathIndexes.get(slot.pathIndexKey);
    if (!keys) {
      keys = new Set();
      this.#pathIndexes.set(slot.pathIndexKey, keys);
    }
    keys.add(key);
  }

  #forget(key: string, slot: Slot): void {
    const tenantId = tenantOfKey(key);
    if (tenantId !== undefined && slot.record.kind === 'response') this.#tenantBound.forget(tenantId, key);
    const keys = this.#pathIndexes.get(slot.pathIndexKey);
    keys?.delete(key);
    if (keys?.size === 0) this.#pathIndexes.delete(slot.pathIndexKey);
    if (slot.urlKey === undefined) return;
    const variants = this.#variants.get(slot.urlKey);
    variants?.delete(key);
    if (variants?.size === 0) this.#variants.delete(slot.urlKey);
  }

  /**
   * At the Vary cap, as the Redis store: variants gone already are forgotten, then the least recently
   * used (stored or read longest ago) make room for a new one, which puts the URL's marker back if
   * it left with the last of them.
   */
  #makeRoomForVariant(variants: Set<string>, maxVariants: number): void {
    for (const variant of variants) if (!this.#slots.has(variant)) variants.delete(variant);
    let replaced = 0;
    for (const oldest of [...variants]) {
      if (variants.size < maxVariants) break;
      variants.delete(oldest);
      this.#slots.delete(oldest);
      replaced++;
    }
    if (replaced > 0) this.#onEvicted?.('vary_cap', replaced);
  }

  /** The URL's Vary marker, once no variant of it is kept. */
  #dropOrphanedMarker(urlKey: string): void {
    if ((this.#variants.get(urlKey)?.size ?? 0) > 0) return;
    if (this.#slots.peek(urlKey)?.record.kind === 'vary') this.#slots.delete(urlKey);
  }

  /**
   * Like Redis pub/sub: delivered after the publishing call returns; a tag purge in messages of at most
   * CACHE_TAGS_MAX tags, as the Redis store publishes them.
   */
  #announce(message: CachePurgeMessage): void {
    const messages = message.kind === 'tags' ? tagPurgeMessages(message) : [message];
    for (const listener of this.#listeners)
      for (const each of messages) queueMicrotask(() => listener.onPurge(each));
  }
}
