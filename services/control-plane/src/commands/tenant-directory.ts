import { reservation, streamName, type UserRole } from '@vantageedge/shared/domain/events';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import type { TenantDirectory } from '../auth/caller.js';
import { memberByClerkUser, type Tenant, tenantDecider } from '../domain/tenant.js';
import { userDecider } from '../domain/user.js';
import { fold } from './handle-command.js';
import { foldStream, type StreamFolds } from './stream-folds.js';

/** The tenant aggregate as its own stream records it. */
export function loadTenant(store: EventStore, tenantId: string, folds?: StreamFolds): Promise<Tenant> {
  return foldStream(store, streamName.tenant(tenantId), tenantDecider, folds);
}

const TENANT_STREAM = /^tenant-(.+)$/;
const LEGACY_USER_STREAM = /^user-(.+)$/;

/**
 * What write authorization needs, decided from the event log — never from the read models, which
 * may lag behind a removal or a demotion:
 * - the tenant of a Clerk org: the tenant stream holding the `clerk_org:<org>` reservation (deleted
 *   tenants released it);
 * - a Clerk user's role in a tenant: the tenant's own stream (its members), or, for a user recorded
 *   before users moved into tenant streams, the `user-<id>` stream holding `tenant_user:<t>:<user>`.
 */
export function createEventLogTenantDirectory(store: EventStore): TenantDirectory {
  return {
    async tenantIdForOrg(orgId) {
      const holder = await store.reservationHolder(reservation.clerkOrg(orgId));
      return holder === null ? null : (TENANT_STREAM.exec(holder)?.[1] ?? null);
    },
    async userRole(tenantId, clerkUserId, folds): Promise<UserRole | null> {
      const tenant = await loadTenant(store, tenantId, folds);
      if (tenant.status !== 'active') return null;
      const member = memberByClerkUser(tenant, clerkUserId);
      if (member) return member.data.role;
      const holder = await store.reservationHolder(reservation.tenantUser(tenantId, clerkUserId));
      const legacyUserId = holder === null ? undefined : LEGACY_USER_STREAM.exec(holder)?.[1];
      // Changed or removed since, in the tenant stream: that is the current word on this user.
      if (legacyUserId === undefined || tenant.members.byId.has(legacyUserId)) return null;
      const legacy = fold(userDecider, await store.readStream(streamName.user(legacyUserId)));
      return legacy.status === 'active' && legacy.data.tenant_id === tenantId ? legacy.data.role : null;
    },
  };
}
