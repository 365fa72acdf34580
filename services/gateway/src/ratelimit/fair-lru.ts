/**
 * A bounded cache that tenants share, in which one tenant's churn costs only its own entries. Each
 * tenant's entries are kept least recently used first; when the cache is full, a tenant holding at
 * least its fair share (max ÷ the tenants holding entries) makes room from its own oldest entry, and a
 * tenant below it from the oldest entry of the tenant holding the most. So a tenant whose clients send
 * a new key per request evicts its own keys, never the counters of a quieter tenant. A tenant's entries
 * are a Map in use order (a use moves the entry to the end), so a tenant costs what it holds.
 */
export class FairLru<V extends {}> {
  readonly #partitions = new Map<string, Map<string, V>>();
  #size = 0;

  constructor(readonly max: number) {
    if (!(max >= 1)) throw new RangeError('FairLru needs room for at least one entry');
  }

  get(partition: string, key: string): V | undefined {
    const entries = this.#partitions.get(partition);
    const value = entries?.get(key);
    if (value !== undefined) {
      entries!.delete(key);
      entries!.set(key, value);
    }
    return value;
  }

  set(partition: string, key: string, value: V): void {
    let entries = this.#partitions.get(partition);
    if (entries === undefined) {
      entries = new Map();
      this.#partitions.set(partition, entries);
    }
    if (entries.delete(key)) {
      entries.set(key, value);
      return;
    }
    if (this.#size >= this.max) this.#makeRoomFor(entries);
    this.#size++;
    entries.set(key, value);
  }

  /** Drops every entry `stale` says is stale. */
  deleteWhere(stale: (value: V) => boolean): void {
    for (const [partition, entries] of this.#partitions) {
      for (const [key, value] of entries) {
        if (!stale(value)) continue;
        entries.delete(key);
        this.#size--;
      }
      if (entries.size === 0) this.#partitions.delete(partition);
    }
  }

  #makeRoomFor(entries: Map<string, V>): void {
    let victim = entries;
    let victimName: string | undefined;
    if (entries.size < this.max / this.#partitions.size) {
      for (const [name, other] of this.#partitions) {
        if (other.size > victim.size) {
          victim = other;
          victimName = name;
        }
      }
    }
    victim.delete(victim.keys().next().value!);
    this.#size--;
    if (victimName !== undefined && victim.size === 0) this.#partitions.delete(victimName);
  }
}
