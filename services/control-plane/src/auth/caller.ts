import type { UserRole } from '@vantageedge/shared/domain/events';
import type { StreamFolds } from '../commands/stream-folds.js';

/** Who is calling the admin API, from a verified Clerk session token. */
export interface Caller {
  /** Clerk user id (`sub`). */
  userId: string;
  /** Listed in PLATFORM_ADMIN_USER_IDS: may do everything, including creating tenants. */
  isPlatformAdmin: boolean;
  /** The token's active Clerk organisation (v1 `org_id` or v2 `o.id`), if any. */
  orgId: string | null;
  /** Normalised Clerk org role, e.g. "org:admin", "org:member". */
  orgRole: string | null;
}

/** What a caller may do on one tenant. */
export type TenantAccess = 'none' | 'read' | 'write';

/**
 * Looks up what authorization needs from the read models. Implemented by the query side
 * (services/control-plane/src/queries), used by the authorization policy (auth/authorize.ts).
 */
export interface TenantDirectory {
  /** The live (not deleted) tenant whose clerk_org_id is `orgId`. */
  tenantIdForOrg(orgId: string): Promise<string | null>;
  /** The caller's role in a tenant's user list, if they are a user of it. */
  userRole(tenantId: string, clerkUserId: string, folds?: StreamFolds): Promise<UserRole | null>;
}
