import type { TenantEventSource } from '../config-history/tenant-events.js';
import { tenantFoldAt } from '../config-history/tenant-folds.js';
import type { LimitedCollection, TenantResourceCounts } from './tenant-limits.js';

/**
 * The tenant limits' counts, from the tenant's config folded from the event log up to its newest event
 * (the fold cache: one event read per change), never from the read models, which trail the log by
 * milliseconds, or by as long as their projector is down. Read under the tenant's lock
 * (tenant-limits.ts, `withCountedCreate`), a count includes every create appended before it.
 */
export function createEventLogResourceCounts(
  source: TenantEventSource,
  clock: () => Date = () => new Date(),
): TenantResourceCounts {
  const snapshotOf = async (tenantId: string) => {
    const { state } = await tenantFoldAt(source, tenantId, await source.store.headPosition());
    return state?.status === 'live' ? state.snapshot : undefined;
  };
  return {
    async count(collection: LimitedCollection, tenantId) {
      const snapshot = await snapshotOf(tenantId);
      if (snapshot === undefined) return 0;
      switch (collection) {
        case 'routes':
          return snapshot.routes.length;
        case 'origins':
          return snapshot.origins.length;
        case 'certificates':
          return snapshot.certificates.length;
        case 'api_keys': {
          // Active keys: revoked ones are out of the snapshot, expired ones are not (as the read model).
          const now = clock().getTime();
          return snapshot.api_keys.filter(
            (key) => key.expires_at === null || Date.parse(key.expires_at) > now,
          ).length;
        }
      }
    },
    async routes(tenantId) {
      return (await snapshotOf(tenantId))?.routes ?? [];
    },
    async origins(tenantId) {
      return (await snapshotOf(tenantId))?.origins ?? [];
    },
    async targets(tenantId, exceptOriginId) {
      const snapshot = await snapshotOf(tenantId);
      let targets = 0;
      for (const origin of snapshot?.origins ?? []) {
        if (origin.id !== exceptOriginId) targets += origin.targets.length;
      }
      return targets;
    },
  };
}
