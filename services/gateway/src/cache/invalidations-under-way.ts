import type { SharedRead } from './shared-store-calls.js';

/**
 * The path invalidations (an unsafe method's, ResponseCache.invalidatePath) this replica sent to the
 * shared store that are not done there yet. The replica's own L1 copies went at once, but the store
 * lists the path's entries until the invalidation has deleted them: a request that came after the
 * invalidation and read one would be answered with what the POST replaced.
 */
export class InvalidationsUnderWay {
  /** Per path index key, how many invalidations of it are under way. */
  readonly #paths = new Map<string, number>();

  begin(pathIndexKey: string): void {
    this.#paths.set(pathIndexKey, (this.#paths.get(pathIndexKey) ?? 0) + 1);
  }

  end(pathIndexKey: string): void {
    const left = (this.#paths.get(pathIndexKey) ?? 1) - 1;
    if (left > 0) this.#paths.set(pathIndexKey, left);
    else this.#paths.delete(pathIndexKey);
  }

  /** What a read of one of the path's keys found: no response while an invalidation of it is under way. */
  read(pathIndexKey: string, stored: SharedRead): SharedRead {
    if (this.#paths.size === 0 || typeof stored !== 'object' || stored?.kind !== 'response') return stored;
    return this.#paths.has(pathIndexKey) ? null : stored;
  }
}
