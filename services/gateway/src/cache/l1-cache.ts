import { LRUCache } from 'lru-cache';
import { type CacheRecord, compactBody, l1EntryBytes } from './cache-entry.js';
import { variantCap } from './cache-keys.js';
import { routeOfKey, tenantOfKey } from './cache-store.js';
import { KeysByName } from './keys-by-name.js';
import { TENANT_MEMORY_SHARE, tenantShareOf } from './tenant-memory-share.js';

/**
 * One tenant's entries in the L1: their sizes, least recently used first (Map order), and their sum;
 * their keys per route and per tag, which route and tag purges drop.
 */
interface TenantEntries {
  readonly sizes: Map<string, number>;
  bytes: number;
  readonly byRoute: KeysByName;
  readonly byTag: KeysByName;
}

interface Slot {
  readonly record: CacheRecord;
  readonly pathIndexKey: string;
  /** For a variant of a URL whose responses vary: the URL's key. */
  readonly urlKey: string | undefined;
  readonly routeId: string | undefined;
  /** Its tenant's entries (keys outside any tenant's keyspace count towards no share). */
  readonly tenant: TenantEntries | undefined;
}

/**
 * The response cache's per-process tier: an LRU bounded by the bytes its entries hold in the heap
 * (l1EntryBytes: fixed costs per entry and per header included), in front of the CacheStore, read
 * synchronously. It keeps the same keys as the store, plus the indexes purges need without scanning:
 * keys per path index (unsafe methods, `path` purges), variants per URL (the Vary cap), and per tenant
 * its keys, per route and per tag: a tenant's purges look at its own entries only, never at others'.
 *
 * Each tenant's entries hold at most `tenantShare` of the bytes (tenant-memory-share.ts): past it the
 * tenant's own least recently used entries go.
 */
export class L1Cache {
  readonly #slots: LRUCache<string, Slot>;
  readonly #byPath = new Map<string, Set<string>>();
  readonly #variants = new Map<string, Set<string>>();
  readonly #tenants = new Map<string, TenantEntries>();
  readonly #tenantMaxBytes: number;
  readonly #maxVariantsPerUrl: number;
  #purgeVisits = 0;

  /** `maxVariantsPerUrl`: the Vary cap (GATEWAY_CACHE_MAX_VARIANTS), whichever tier a variant came from. */
  constructor(
    maxBytes: number,
    tenantShare = TENANT_MEMORY_SHARE,
    maxVariantsPerUrl = Number.POSITIVE_INFINITY,
  ) {
    this.#tenantMaxBytes = tenantShareOf(maxBytes, tenantShare);
    this.#maxVariantsPerUrl = maxVariantsPerUrl;
    this.#slots = new LRUCache<string, Slot>({
      maxSize: maxBytes,
      dispose: (slot, key, reason) => {
        if (reason !== 'set') this.#forget(key, slot);
      },
    });
  }

  get(key: string): CacheRecord | undefined {
    const slot = this.#slots.get(key);
    if (slot === undefined) return undefined;
    const size = slot.tenant?.sizes.get(key);
    if (size !== undefined) {
      slot.tenant!.sizes.delete(key);
      slot.tenant!.sizes.set(key, size);
    }
    if (slot.urlKey !== undefined) {
      // The URL's variants are kept least recently used first: the Vary cap replaces the first.
      const variants = this.#variants.get(slot.urlKey);
      if (variants?.delete(key)) variants.add(key);
    }
    return slot.record;
  }

  /** The bytes the tenant's entries are counted at. */
  bytesOf(tenantId: string): number {
    return this.#tenants.get(tenantId)?.bytes ?? 0;
  }

  /**
   * Keeps a record; false when it is larger than its tenant's share of the L1 (then it is not kept, nor
   * any previous record of the key). Past the share, the tenant's least recently used entries go; a
   * new variant of a URL at the Vary cap takes the place of the URL's least recently used one.
   */
  set(key: string, record: CacheRecord, pathIndexKey: string, urlKey?: string): boolean {
    const tenantId = tenantOfKey(key);
    const tenant = tenantId === undefined ? undefined : this.#tenantEntries(tenantId);
    const slot: Slot = {
      record: compactBody(record),
      pathIndexKey,
      urlKey,
      routeId: routeOfKey(key),
      tenant,
    };
    // What the entry costs in the heap, not just its body and header characters (cache-entry.ts).
    const size = l1EntryBytes(slot.record, key, pathIndexKey, urlKey);
    if (tenant !== undefined && size > this.#tenantMaxBytes) {
      this.#slots.delete(key);
      this.#dropIfEmpty(tenantId!, tenant);
      return false;
    }
    // Variants read from the shared store count too: other replicas' fills replace the store's
    // variants at the cap, so what one replica reads from it over time has no bound of its own.
    if (urlKey !== undefined)
      this.makeRoomForVariant(urlKey, key, variantCap(record.varyOn, this.#maxVariantsPerUrl));
    // Replaced without a dispose we act on: the previous record's route and tags list it no more.
    const previous = this.#slots.peek(key);
    if (previous !== undefined) this.#unlist(key, previous);
    this.#slots.set(key, slot, { size });
    if (!this.#slots.has(key)) {
      // Too large: lru-cache dropped any previous record of the key without a dispose we act on.
      this.#forget(key, slot);
      if (tenant !== undefined) this.#dropIfEmpty(tenantId!, tenant);
      return false;
    }
    if (tenant !== undefined) {
      // Storing it may have evicted the tenant's last other entry, and its record of entries with it.
      this.#tenants.set(tenantId!, tenant);
      this.#account(tenant, key, size);
      this.#list(key, slot, tenant);
    }
    let keys = this.#byPath.get(pathIndexKey);
    if (!keys) {
      keys = new Set();
      this.#byPath.set(pathIndexKey, keys);
    }
    keys.add(key);
    if (urlKey !== undefined) {
      let variants = this.#variants.get(urlKey);
      if (!variants) {
        variants = new Set();
        this.#variants.set(urlKey, variants);
      }
      // Stored again (refreshed) is a use: to the back, as a read moves it.
      variants.delete(key);
      variants.add(key);
    }
    return true;
  }

  /**
   * Makes room for the variant `key` of a URL that may keep `maxVariants`: drops the URL's least
   * recently used other variants while it has that many. Returns how many were dropped.
   */
  makeRoomForVariant(urlKey: string, key: string, maxVariants: number): number {
    const variants = this.#variants.get(urlKey);
    if (!variants) return 0;
    let dropped = 0;
    while (variants.size - (variants.has(key) ? 1 : 0) >= maxVariants) {
      let oldest: string | undefined;
      for (const variant of variants) {
        if (variant !== key) {
          oldest = variant;
          break;
        }
      }
      if (oldest === undefined) break;
      this.#slots.delete(oldest);
      // Its dispose unlisted it; a listing left without a slot must not stop the loop either.
      variants.delete(oldest);
      dropped++;
    }
    return dropped;
  }

  delete(key: string): void {
    this.#slots.delete(key);
  }

  deletePath(pathIndexKey: string): void {
    for (const key of [...(this.#byPath.get(pathIndexKey) ?? [])]) this.#slots.delete(key);
  }

  /** Entries purges (tenant, route, tag) have looked at: what they cost this replica's event loop. */
  get purgeVisits(): number {
    return this.#purgeVisits;
  }

  deleteTenant(tenantId: string): void {
    const tenant = this.#tenants.get(tenantId);
    if (tenant !== undefined) this.#deleteAll([...tenant.sizes.keys()]);
  }

  deleteRoute(tenantId: string, routeId: string): void {
    const tenant = this.#tenants.get(tenantId);
    if (tenant !== undefined) this.#deleteAll(tenant.byRoute.keysOf(routeId));
  }

  /** Drops every response of the tenant tagged with one of `tags`. */
  deleteTagged(tenantId: string, tags: readonly string[]): void {
    const tenant = this.#tenants.get(tenantId);
    if (tenant === undefined) return;
    for (const tag of tags) this.#deleteAll(tenant.byTag.keysOf(tag));
  }

  #deleteAll(keys: readonly string[]): void {
    this.#purgeVisits += keys.length;
    for (const key of keys) this.#slots.delete(key);
  }

  #tenantEntries(tenantId: string): TenantEntries {
    let tenant = this.#tenants.get(tenantId);
    if (tenant === undefined) {
      tenant = { sizes: new Map(), bytes: 0, byRoute: new KeysByName(), byTag: new KeysByName() };
      this.#tenants.set(tenantId, tenant);
    }
    return tenant;
  }

  /** `key` is now the tenant's most recently used; its older entries go while it is past its share. */
  #account(tenant: TenantEntries, key: string, size: number): void {
    tenant.bytes += size - (tenant.sizes.get(key) ?? 0);
    tenant.sizes.delete(key);
    tenant.sizes.set(key, size);
    // The new entry fits the share on its own, so this never removes it.
    for (const oldest of tenant.sizes.keys()) {
      if (tenant.bytes <= this.#tenantMaxBytes || oldest === key) break;
      this.#slots.delete(oldest);
    }
  }

  #list(key: string, slot: Slot, tenant: TenantEntries): void {
    if (slot.routeId !== undefined) tenant.byRoute.add(slot.routeId, key);
    if (slot.record.kind === 'response') for (const tag of slot.record.tags) tenant.byTag.add(tag, key);
  }

  #unlist(key: string, slot: Slot): void {
    const { tenant } = slot;
    if (tenant === undefined) return;
    if (slot.routeId !== undefined) tenant.byRoute.remove(slot.routeId, key);
    if (slot.record.kind === 'response') for (const tag of slot.record.tags) tenant.byTag.remove(tag, key);
  }

  #dropIfEmpty(tenantId: string, tenant: TenantEntries): void {
    if (tenant.sizes.size === 0 && this.#tenants.get(tenantId) === tenant) this.#tenants.delete(tenantId);
  }

  #forget(key: string, slot: Slot): void {
    this.#unlist(key, slot);
    const { tenant } = slot;
    const size = tenant?.sizes.get(key);
    if (tenant !== undefined && size !== undefined) {
      tenant.sizes.delete(key);
      tenant.bytes -= size;
      if (tenant.sizes.size === 0) this.#dropIfEmpty(tenantOfKey(key)!, tenant);
    }
    const keys = this.#byPath.get(slot.pathIndexKey);
    keys?.delete(key);
    if (keys?.size === 0) this.#byPath.delete(slot.pathIndexKey);
    if (slot.urlKey === undefined) return;
    const variants = this.#variants.get(slot.urlKey);
    variants?.delete(key);
    if (variants?.size === 0) this.#variants.delete(slot.urlKey);
  }
}
