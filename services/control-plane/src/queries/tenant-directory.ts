import { qualified, READ_MODELS_SCHEMA } from '@vantageedge/projections/read-models/schema';
import type { UserRole } from '@vantageedge/shared/domain/events';
import { USER_ROLES } from '@vantageedge/shared/domain/events';
import type pg from 'pg';
import type { TenantDirectory } from '../auth/caller.js';

const tenants = qualified(READ_MODELS_SCHEMA, 'tenants');
const users = qualified(READ_MODELS_SCHEMA, 'users');

const isUserRole = (role: string): role is UserRole => (USER_ROLES as readonly string[]).includes(role);

/** What authorization needs, answered from the read models (deleted tenants are invisible). */
export function createTenantDirectory(pool: pg.Pool): TenantDirectory {
  return {
    async tenantIdForOrg(orgId) {
      const { rows } = await pool.query<{ id: string }>(
        `select id from ${tenants} where clerk_org_id = $1 and deleted_at is null order by created_position limit 1`,
        [orgId],
      );
      return rows[0]?.id ?? null;
    },
    async userRole(tenantId, clerkUserId) {
      const { rows } = await pool.query<{ role: string }>(
        `select u.role from ${users} u join ${tenants} t on t.id = u.tenant_id
          where u.tenant_id = $1 and u.clerk_user_id = $2 and t.deleted_at is null
          order by u.created_position limit 1`,
        [tenantId, clerkUserId],
      );
      const role = rows[0]?.role;
      return role !== undefined && isUserRole(role) ? role : null;
    },
  };
}
