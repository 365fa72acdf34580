import { qualified, READ_MODELS_SCHEMA } from '@vantageedge/projections/read-models/schema';
import type pg from 'pg';
import type { ResourceDefinition, RowBase } from './resources.js';
import { type TagFilter, tagCondition } from './tag-filter.js';

/**
 * SQL over the read models. Rows of deleted tenants, and every row of their children, are hidden
 * here, in one place. `tenantIds` null = no restriction (platform admins).
 */

export type ResourceRow = RowBase & { tenant_id?: string } & Record<string, unknown>;

const T = (table: Parameters<typeof qualified>[1]) => qualified(READ_MODELS_SCHEMA, table);

/**
 * A page in creation order. With `tenantIds`, each tenant's page is read on its own through its
 * (tenant_id, created_position) index and the pages merged: over `tenant_id = any(…)` no index gives
 * the order, and the planner read and sorted every row of the tenants (a tenant's revoked API keys
 * pile up without limit), or scanned every tenant's rows, for each page. Without, the page walks the
 * table's created_position index, which holds the rows of live tenants only (migrations 0310, 0350;
 * the tenants' own, 0360).
 */
export async function listResources(
  pool: pg.Pool,
  resource: ResourceDefinition,
  {
    tenantIds,
    after,
    limit,
    tags,
  }: { tenantIds: readonly string[] | null; after: bigint; limit: number; tags?: TagFilter | undefined },
): Promise<ResourceRow[]> {
  const tagged = tags === undefined ? null : tagCondition(tags, 4);
  const rowFilter = `r.created_position > $2 ${tagged === null ? '' : `and ${tagged.sql}`}`;
  const sql =
    resource.table === 'tenants'
      ? `select r.* from ${T('tenants')} r
          where r.deleted_at is null and ($1::uuid[] is null or r.id = any($1::uuid[])) and r.created_position > $2
          order by r.created_position limit $3`
      : tenantIds === null
        ? `select r.* from ${T(resource.table)} r join ${T('tenants')} t on t.id = r.tenant_id
            where t.deleted_at is null and $1::uuid[] is null and not r.tenant_deleted and ${rowFilter}
            order by r.created_position limit $3`
        : `select page.* from ${T('tenants')} t
            cross join lateral (select r.* from ${T(resource.table)} r where r.tenant_id = t.id and ${rowFilter}
              order by r.created_position limit $3) as page
            where t.id = any($1::uuid[]) and t.deleted_at is null
            order by page.created_position limit $3`;
  const values: unknown[] = [tenantIds, after.toString(), limit];
  if (tagged !== null) values.push(tagged.value);
  const { rows } = await pool.query<ResourceRow>(sql, values);
  return rows;
}

export async function getResource(
  pool: pg.Pool,
  resource: ResourceDefinition,
  id: string,
): Promise<ResourceRow | null> {
  const sql =
    resource.table === 'tenants'
      ? `select r.*, r.id as tenant_id from ${T('tenants')} r where r.id = $1 and r.deleted_at is null`
      : `select r.* from ${T(resource.table)} r join ${T('tenants')} t on t.id = r.tenant_id
          where r.id = $1 and t.deleted_at is null`;
  const { rows } = await pool.query<ResourceRow>(sql, [id]);
  return rows[0] ?? null;
}

export async function tenantExists(pool: pg.Pool, tenantId: string): Promise<boolean> {
  const { rowCount } = await pool.query(
    `select 1 from ${T('tenants')} where id = $1 and deleted_at is null`,
    [tenantId],
  );
  return (rowCount ?? 0) > 0;
}

/** Live tenants a Clerk user appears in (candidates for what a non-admin caller may see). */
export async function tenantsOfUser(pool: pg.Pool, clerkUserId: string): Promise<string[]> {
  const { rows } = await pool.query<{ tenant_id: string }>(
    `select distinct u.tenant_id from ${T('users')} u join ${T('tenants')} t on t.id = u.tenant_id
      where u.clerk_user_id = $1 and t.deleted_at is null`,
    [clerkUserId],
  );
  return rows.map((row) => row.tenant_id);
}
