import type { CacheStore } from '../cache-store.js';

/** A cache store whose writes (fills, trims) are tracked, so a test can wait until they reached it. */
export interface TrackedWrites {
  store: CacheStore;
  /**
   * Resolves once every write begun so far has settled (a fill commits after the body went out, a
   * trim runs after a config lowering the tenant's bound is applied).
   */
  settled(): Promise<void>;
}

export function trackingWrites(store: CacheStore): TrackedWrites {
  const pending: Promise<unknown>[] = [];
  const tracked = new Proxy(store, {
    get(target, property) {
      const value = Reflect.get(target, property) as unknown;
      if (typeof value !== 'function') return value;
      if (property !== 'putResponse' && property !== 'trimTenant') return value.bind(target);
      return (...args: unknown[]) => {
        const write = (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        pending.push(write);
        return write;
      };
    },
  });
  return {
    store: tracked,
    async settled() {
      await new Promise((resolve) => setImmediate(resolve));
      await Promise.allSettled(pending.splice(0));
    },
  };
}
