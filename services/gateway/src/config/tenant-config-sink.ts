import type { TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import type { EventLoopSlices } from '@vantageedge/shared/process/event-loop-slices';

/**
 * Where the gateway's config plane (the snapshot consumer) delivers tenant snapshots. The gateway's
 * config store implements it: `apply` compiles the snapshot (routes, key index, limits, cache policies)
 * and swaps the tenant atomically; requests in flight keep the config they started with.
 *
 * Versions are event positions. Both methods ignore a version older than or equal to the one applied
 * (snapshots are published at least once and may arrive twice).
 */
export interface TenantConfigSink {
  /** Returns false when the snapshot was stale or a duplicate and nothing changed. */
  apply(snapshot: TenantSnapshot): boolean;
  /**
   * `apply` in slices of the event loop (other tenants' requests run between them); the tenant keeps
   * its previous config until the new one is complete. The config plane uses it when present.
   */
  applyInSlices?(snapshot: TenantSnapshot, slices: EventLoopSlices): Promise<boolean>;
  /** A tenant deleted (tombstone). Its host stops resolving. */
  remove(tenantId: string): boolean;
  /** Applied version per tenant id, for readiness and rollout reporting. */
  appliedVersions(): ReadonlyMap<string, bigint>;
}
