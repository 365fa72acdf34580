/**
 * Keys listed under names (an L1 tenant's keys per route, per tag), so that a purge finds what it drops
 * without looking at anything else. A name with a single key holds just that key: most tags an origin
 * gives are one response's own, and a Set per tag would cost several times what the key's listing does.
 */
export class KeysByName {
  readonly #keys = new Map<string, string | Set<string>>();

  add(name: string, key: string): void {
    const listed = this.#keys.get(name);
    if (listed === undefined) this.#keys.set(name, key);
    else if (typeof listed !== 'string') listed.add(key);
    else if (listed !== key) this.#keys.set(name, new Set([listed, key]));
  }

  remove(name: string, key: string): void {
    const listed = this.#keys.get(name);
    if (listed === key) {
      this.#keys.delete(name);
      return;
    }
    if (typeof listed !== 'object' || !listed.delete(key)) return;
    if (listed.size === 1) this.#keys.set(name, listed.values().next().value as string);
  }

  /** A copy: the caller may remove keys while it goes through them. */
  keysOf(name: string): string[] {
    const listed = this.#keys.get(name);
    if (listed === undefined) return [];
    return typeof listed === 'string' ? [listed] : [...listed];
  }
}
