import type { StreamFolds } from '../commands/stream-folds.js';
import type { Caller, TenantAccess, TenantDirectory } from './caller.js';

/** Decides what a caller may do on one tenant. */
export interface Authorizer {
  /**
   * `folds`: the tenant stream's folds a config apply keeps for its steps (stream-folds.ts). `required`:
   * what the request looks for, when it skips a tenant the caller has less access to (a listing of the
   * tenants it writes): the request does not act on that tenant (tenant-requests-in-flight.ts).
   */
  access(
    caller: Caller,
    tenantId: string,
    folds?: StreamFolds,
    required?: 'read' | 'write',
  ): Promise<TenantAccess>;
}

const WRITE_ORG_ROLES: ReadonlySet<string> = new Set(['org:admin']);

/** The org role that writes to its organisation's tenant. */
export function isOrgAdminRole(orgRole: string | null): boolean {
  return orgRole !== null && WRITE_ORG_ROLES.has(orgRole);
}

/**
 * The admin API's authorization policy:
 * - platform admins (PLATFORM_ADMIN_USER_IDS) → write on every tenant;
 * - the token's active Clerk org is the tenant's clerk_org_id: `org:admin` → write, any other org role → read;
 * - the caller is in the tenant's user list: owner/admin → write, member/viewer → read;
 * - anything else → none. The stronger of the org grant and the user-list grant wins.
 */
export function createAuthorizer(directory: TenantDirectory): Authorizer {
  return {
    async access(caller, tenantId, folds) {
      if (caller.isPlatformAdmin) return 'write';
      let access: TenantAccess = 'none';
      if (caller.orgId !== null) {
        const orgTenant = await directory.tenantIdForOrg(caller.orgId);
        if (orgTenant === tenantId) {
          if (isOrgAdminRole(caller.orgRole)) return 'write';
          access = 'read';
        }
      }
      const role = await directory.userRole(tenantId, caller.userId, folds);
      if (role === 'owner' || role === 'admin') return 'write';
      if (role === 'member' || role === 'viewer') return 'read';
      return access;
    },
  };
}
