import { ownCopy, SHORTEST_VIEW } from '@vantageedge/shared/text/own-copy';

/** One tenant's entries, in use order (a use moves an entry to the end). */
interface Partition<V> {
  readonly name: string;
  readonly entries: Map<string, Entry<V>>;
}

/**
 * An entry and the key it was first stored under. A use moves it to the end under that key, never the
 * caller's: the caller's is often cut from a request's header, and V8 keeps a cut of 13 characters or
 * more as a view of the whole header (a key after 15,000 spaces of `Authorization` held 15 KB).
 */
interface Entry<V> {
  readonly key: string;
  value: V;
}

/**
 * A bounded cache that tenants share, in which one tenant's churn costs only its own entries. Each
 * tenant's entries are kept least recently used first; when the cache is full, a tenant holding at
 * least its fair share (max ÷ the tenants holding entries) makes room from its own oldest entry, and a
 * tenant below it from the oldest entry of a tenant holding at least that share. So a tenant whose
 * clients send a new key per request evicts its own keys, never the counters of a quieter tenant, and
 * a tenant costs what it holds.
 */
export class FairLru<V extends {}> {
  readonly #partitions = new Map<string, Partition<V>>();
  #size = 0;
  /** Where the search for a partition to take room from goes on (see #partitionHolding). */
  #scan: Iterator<Partition<V>> = this.#partitions.values();
  #lastTaken: Partition<V> | undefined;

  constructor(readonly max: number) {
    if (!(max >= 1)) throw new RangeError('FairLru needs room for at least one entry');
  }

  get(partition: string, key: string): V | undefined {
    const entries = this.#partitions.get(partition)?.entries;
    const entry = entries?.get(key);
    if (entry === undefined) return undefined;
    entries!.delete(key);
    entries!.set(entry.key, entry);
    return entry.value;
  }

  /** Stores `value` under a copy of `key` of its own (see Entry): the caller's may be a view of a request. */
  set(partition: string, key: string, value: V): void {
    let own = this.#partitions.get(partition);
    if (own === undefined) {
      own = { name: partition, entries: new Map() };
      this.#partitions.set(partition, own);
    }
    const existing = own.entries.get(key);
    if (existing !== undefined) {
      existing.value = value;
      own.entries.delete(key);
      own.entries.set(existing.key, existing);
      return;
    }
    if (this.#size >= this.max) this.#makeRoomFor(own);
    this.#size++;
    const kept = key.length >= SHORTEST_VIEW ? ownCopy(key) : key;
    own.entries.set(kept, { key: kept, value });
  }

  /** Drops every entry `stale` says is stale. */
  deleteWhere(stale: (value: V) => boolean): void {
    for (const partition of this.#partitions.values()) {
      for (const [key, { value }] of partition.entries) {
        if (!stale(value)) continue;
        partition.entries.delete(key);
        this.#size--;
      }
      if (partition.entries.size === 0) this.#partitions.delete(partition.name);
    }
  }

  #makeRoomFor(own: Partition<V>): void {
    const fairShare = this.max / this.#partitions.size;
    const victim = own.entries.size >= fairShare ? own : this.#partitionHolding(fairShare);
    victim.entries.delete(victim.entries.keys().next().value!);
    this.#size--;
    if (victim !== own && victim.entries.size === 0) this.#partitions.delete(victim.name);
  }

  /**
   * A partition holding at least `share` entries (with the cache full and `share` the average, one
   * does). The last one taken from is asked first, and the search goes on from where it stopped, so a
   * partition is looked at again only after every other one was: O(1) per eviction, amortised.
   */
  #partitionHolding(share: number): Partition<V> {
    const last = this.#lastTaken;
    if (last !== undefined && last.entries.size >= share && this.#partitions.get(last.name) === last) {
      return last;
    }
    for (let pass = 0; pass < 2; pass++) {
      for (let next = this.#scan.next(); next.done !== true; next = this.#scan.next()) {
        if (next.value.entries.size < share) continue;
        this.#lastTaken = next.value;
        return next.value;
      }
      this.#scan = this.#partitions.values();
    }
    throw new Error('FairLru: full, yet no partition holds the average share');
  }
}
