import type pg from 'pg';
import type { Authorizer } from '../auth/authorize.js';
import type { Caller, TenantAccess, TenantDirectory } from '../auth/caller.js';
import { tenantsOfUser } from './read-model-store.js';

export type RequiredAccess = Exclude<TenantAccess, 'none'>;

const RANK: Record<TenantAccess, number> = { none: 0, read: 1, write: 2 };

export function allows(access: TenantAccess, required: RequiredAccess): boolean {
  return RANK[access] >= RANK[required];
}

/**
 * The tenants a caller may list, or null for "all" (platform admins). Apart from platform admins,
 * access only comes from the caller's Clerk org or their place in a tenant's user list, so those are
 * the candidates; the authorizer has the last word on each.
 */
export async function visibleTenantIds(
  deps: { pool: pg.Pool; authorizer: Authorizer; directory: TenantDirectory },
  caller: Caller,
  required: RequiredAccess,
): Promise<string[] | null> {
  if (caller.isPlatformAdmin) return null;
  const candidates = new Set(await tenantsOfUser(deps.pool, caller.userId));
  if (caller.orgId !== null) {
    const orgTenant = await deps.directory.tenantIdForOrg(caller.orgId);
    if (orgTenant !== null) candidates.add(orgTenant);
  }
  const visible: string[] = [];
  for (const tenantId of candidates) {
    if (allows(await deps.authorizer.access(caller, tenantId, undefined, required), required)) {
      visible.push(tenantId);
    }
  }
  return visible;
}
