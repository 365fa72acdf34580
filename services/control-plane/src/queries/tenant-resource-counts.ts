import { qualified, READ_MODELS_SCHEMA } from '@vantageedge/projections/read-models/schema';
import type pg from 'pg';
import type { LimitedCollection, TenantResourceCounts } from '../commands/tenant-limits.js';

const T = (table: Parameters<typeof qualified>[1]) => qualified(READ_MODELS_SCHEMA, table);

const LIVE_COUNT: Record<LimitedCollection, string> = {
  routes: `select count(*)::int as n from ${T('routes')} where tenant_id = $1`,
  origins: `select count(*)::int as n from ${T('origins')} where tenant_id = $1`,
  api_keys: `select count(*)::int as n from ${T('api_keys')}
              where tenant_id = $1 and revoked_at is null and (expires_at is null or expires_at > now())`,
  certificates: `select count(*)::int as n from ${T('certificates')} where tenant_id = $1`,
};

const LIVE_TARGETS = `select coalesce(sum(jsonb_array_length(targets)), 0)::int as n from ${T('origins')}
                       where tenant_id = $1 and ($2::uuid is null or id <> $2::uuid)`;

/** The tenant limits' counts, from the read models (commands/tenant-limits.ts says why that is enough). */
export function createReadModelResourceCounts(pool: pg.Pool): TenantResourceCounts {
  return {
    async count(collection, tenantId) {
      const { rows } = await pool.query<{ n: number }>(LIVE_COUNT[collection], [tenantId]);
      return rows[0]?.n ?? 0;
    },
    async targets(tenantId, exceptOriginId) {
      const { rows } = await pool.query<{ n: number }>(LIVE_TARGETS, [tenantId, exceptOriginId ?? null]);
      return rows[0]?.n ?? 0;
    },
  };
}
