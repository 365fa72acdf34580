import type { EventStore } from '@vantageedge/shared/event-store/port';
import { snapshotJsonBytes } from '@vantageedge/shared/snapshot-bus/codec';
import { rateLimited } from '../domain/errors.js';

/**
 * How much config one tenant's whole-config reads (GET …/config, …/config/document, …/config/diff,
 * POST …/explain, …/config/plan) may go through per minute in one control-plane process, in bytes of the
 * configs' JSON. Such a read costs the process's one thread about its config's size (≈ 15–20 ms per MB:
 * 170–270 ms for a 13 MB tenant), so the per-caller request limit alone let one admin keep the admin
 * API of every tenant busy. A token bucket per tenant, as big as a minute's worth: a read starts while
 * the bucket is not in debt and takes its configs' bytes (it may go into debt: a config larger than the
 * bucket can still be read, once per refill); in debt, 429 `admin_rate_limited` naming
 * `tenant_config_read_bytes_per_minute` until it is repaid. Counted from the cached (frozen) folds, so
 * counting costs about nothing.
 */

export const DEFAULT_CONFIG_READ_BYTES_PER_MINUTE = 512 * 1024 * 1024;

/** Tenants whose buckets are kept, least recently used out (a dropped bucket is full again). */
const MAX_TENANTS = 100_000;

export interface ConfigReadBudget {
  /** Takes the configs' bytes from the tenant's bucket; throws 429 when the bucket is in debt. */
  charge(tenantId: string, configs: readonly unknown[]): void;
}

export function createConfigReadBudget({
  bytesPerMinute = DEFAULT_CONFIG_READ_BYTES_PER_MINUTE,
  now = Date.now,
}: {
  /** 0: no limit. */
  bytesPerMinute?: number;
  now?: () => number;
} = {}): ConfigReadBudget {
  const buckets = new Map<string, { bytes: number; at: number }>();
  const perMs = bytesPerMinute / 60_000;
  return {
    charge(tenantId, configs) {
      if (bytesPerMinute === 0) return;
      const at = now();
      const kept = buckets.get(tenantId);
      const bytes = kept ? Math.min(bytesPerMinute, kept.bytes + (at - kept.at) * perMs) : bytesPerMinute;
      if (bytes <= 0) {
        throw rateLimited(
          'admin_rate_limited',
          "too much of this tenant's config read in the last minute: retry later",
          'tenant_config_read_bytes_per_minute',
          `whole-config reads of one tenant may go through ${bytesPerMinute} bytes of config per minute (CONTROL_PLANE_TENANT_CONFIG_READ_BYTES_PER_MINUTE)`,
          Math.max(1, Math.ceil(-bytes / perMs / 1000)),
        );
      }
      let cost = 0;
      for (const config of configs) cost += snapshotJsonBytes(config);
      buckets.delete(tenantId);
      buckets.set(tenantId, { bytes: bytes - cost, at });
      for (const oldest of buckets.keys()) {
        if (buckets.size <= MAX_TENANTS) break;
        buckets.delete(oldest);
      }
    },
  };
}

/** Each store's budget: every router of one control plane over that store shares it. */
const budgetsByStore = new WeakMap<EventStore, ConfigReadBudget>();

/** The budget whole-config reads over `store` use (set once, at start-up; default: the default). */
export function useConfigReadBudget(store: EventStore, budget: ConfigReadBudget): void {
  budgetsByStore.set(store, budget);
}

export function configReadBudgetOf(store: EventStore): ConfigReadBudget {
  let budget = budgetsByStore.get(store);
  if (budget === undefined) {
    budget = createConfigReadBudget();
    budgetsByStore.set(store, budget);
  }
  return budget;
}
