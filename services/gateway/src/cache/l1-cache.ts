import { LRUCache } from 'lru-cache';
import { type CacheRecord, compactBody, l1EntryBytes } from './cache-entry.js';

interface Slot {
  readonly record: CacheRecord;
  readonly pathIndexKey: string;
  /** For a variant of a URL whose responses vary: the URL's key. */
  readonly urlKey: string | undefined;
}

/**
 * The response cache's per-process tier: an LRU bounded by the bytes its entries hold in the heap
 * (l1EntryBytes: fixed costs per entry and per header included), in front of the CacheStore, read
 * synchronously. It keeps the same keys as the store, plus the indexes purges need without scanning:
 * keys per path index (unsafe methods, `path` purges) and variants per URL (the Vary cap).
 */
export class L1Cache {
  readonly #slots: LRUCache<string, Slot>;
  readonly #byPath = new Map<string, Set<string>>();
  readonly #variants = new Map<string, Set<string>>();

  constructor(maxBytes: number) {
    this.#slots = new LRUCache<string, Slot>({
      maxSize: maxBytes,
      // What the entry costs in the heap, not just its body and header characters (cache-entry.ts).
      sizeCalculation: (slot, key) => l1EntryBytes(slot.record, key, slot.pathIndexKey, slot.urlKey),
      dispose: (slot, key, reason) => {
        if (reason !== 'set') this.#forget(key, slot);
      },
    });
  }

  get(key: string): CacheRecord | undefined {
    return this.#slots.get(key)?.record;
  }

  /** Keeps a record; false when it is larger than the whole L1 (then it is not kept). */
  set(key: string, record: CacheRecord, pathIndexKey: string, urlKey?: string): boolean {
    const slot = { record: compactBody(record), pathIndexKey, urlKey };
    this.#slots.set(key, slot);
    if (!this.#slots.has(key)) {
      // Too large: lru-cache dropped any previous record of the key without a dispose we act on.
      this.#forget(key, slot);
      return false;
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
      variants.add(key);
    }
    return true;
  }

  /** How many variants of the URL are kept, not counting `key` itself. */
  otherVariants(urlKey: string, key: string): number {
    const variants = this.#variants.get(urlKey);
    if (!variants) return 0;
    return variants.size - (variants.has(key) ? 1 : 0);
  }

  delete(key: string): void {
    this.#slots.delete(key);
  }

  deletePath(pathIndexKey: string): void {
    for (const key of [...(this.#byPath.get(pathIndexKey) ?? [])]) this.#slots.delete(key);
  }

  /** Drops every key that starts with `prefix` (and, when given, contains `segment`). O(size): purges only. */
  deleteMatching(prefix: string, segment?: string): void {
    for (const key of [...this.#slots.keys()])
      if (key.startsWith(prefix) && (segment === undefined || key.includes(segment))) this.#slots.delete(key);
  }

  /** Drops every response under `prefix` tagged with one of `tags`. O(size): purges only. */
  deleteTagged(prefix: string, tags: readonly string[]): void {
    const wanted = new Set(tags);
    for (const [key, slot] of [...this.#slots.entries()]) {
      if (!key.startsWith(prefix) || slot.record.kind !== 'response') continue;
      if (slot.record.tags.some((tag) => wanted.has(tag))) this.#slots.delete(key);
    }
  }

  #forget(key: string, slot: Slot): void {
    const keys = this.#byPath.get(slot.pathIndexKey);
    keys?.delete(key);
    if (keys?.size === 0) this.#byPath.delete(slot.pathIndexKey);
    if (slot.urlKey === undefined) return;
    const variants = this.#variants.get(slot.urlKey);
    variants?.delete(key);
    if (variants?.size === 0) this.#variants.delete(slot.urlKey);
  }
}
