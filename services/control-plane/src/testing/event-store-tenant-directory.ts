import { isControlPlaneEvent, type UserRole } from '@vantageedge/shared/domain/events';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import type { TenantDirectory } from '../auth/caller.js';

/**
 * A TenantDirectory folded straight from the event store, for the control plane's own tests (no
 * projector running). Production uses the read-model directory of services/control-plane/src/queries.
 * Scans the whole log per lookup: test-sized histories only.
 */
export function createEventStoreTenantDirectory(store: EventStore): TenantDirectory {
  async function fold() {
    const orgs = new Map<string, string>();
    const roles = new Map<string, { tenant: string; clerkUser: string; role: UserRole | null }>();
    for (const event of await store.readAll()) {
      if (!isControlPlaneEvent(event)) continue;
      switch (event.type) {
        case 'TenantCreated':
        case 'TenantUpdated':
          for (const [org, tenant] of orgs) if (tenant === event.data.tenant_id) orgs.delete(org);
          if (event.data.clerk_org_id) orgs.set(event.data.clerk_org_id, event.data.tenant_id);
          break;
        case 'TenantDeleted':
          for (const [org, tenant] of orgs) if (tenant === event.data.tenant_id) orgs.delete(org);
          break;
        case 'UserAdded':
        case 'UserRoleChanged':
          roles.set(event.data.user_id, {
            tenant: event.data.tenant_id,
            clerkUser: event.data.clerk_user_id,
            role: event.data.role,
          });
          break;
        case 'UserRemoved': {
          const user = roles.get(event.data.user_id);
          if (user) user.role = null;
          break;
        }
        default:
          break;
      }
    }
    return { orgs, roles };
  }
  return {
    async tenantIdForOrg(orgId) {
      return (await fold()).orgs.get(orgId) ?? null;
    },
    async userRole(tenantId, clerkUserId) {
      for (const user of (await fold()).roles.values()) {
        if (user.tenant === tenantId && user.clerkUser === clerkUserId && user.role) return user.role;
      }
      return null;
    },
  };
}
