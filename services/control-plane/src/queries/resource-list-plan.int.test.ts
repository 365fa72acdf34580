import { randomUUID } from 'node:crypto';
import { readModelsProjection } from '@vantageedge/projections/read-models/projector';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PlanNode, plansOf, rowsRead } from '../testing/query-plans.js';
import { listResources } from './read-model-store.js';
import { apiKeyResource, routeResource, tenantResource } from './resources.js';

/**
 * A list page of a tenant's resources reads about a page of rows, however many the tenant has: its
 * revoked API keys stay listed and are not bounded by TENANT_MAX_API_KEYS (only active keys are), so a
 * tenant can pile up any number of them; every other tenant's rows stay unread. A platform admin's
 * list of every tenant's rows walks them in creation order (migration 0310) instead of sorting them all,
 * and never the rows of deleted tenants (migration 0350).
 */

let db: TestDatabase;
const tenant = randomUUID();
const neighbour = 'c4ca4238-a0b9-2382-0dcc-509a6f75849b'; // md5('1')
const KEYS = 40_000;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.pool.query(
    `insert into read_models.tenants (id, name, subdomain, clerk_org_id, settings, created_at, updated_at,
       revision, position, created_position)
     select case when n = 0 then $1::uuid else md5(n::text)::uuid end, 't' || n, 's' || n, null, '{}',
            now(), now(), 0, n + 1, n + 1
       from generate_series(0, 199) as n`,
    [tenant],
  );
  // Half the keys the tenant's (revoked), half every other tenant's, interleaved in creation order.
  await db.pool.query(
    `insert into read_models.api_keys (id, tenant_id, name, key_hash, key_prefix, scopes, revoked_at,
       created_at, updated_at, revision, position, created_position)
     select gen_random_uuid(), case when n % 2 = 0 then $1::uuid else md5((n % 200)::text)::uuid end,
            'k', md5(n::text), 've_live_', '[]', now(), now(), now(), 1, 1000 + n, 1000 + n
       from generate_series(0, $2::int - 1) as n`,
    [tenant, KEYS],
  );
  await db.pool.query('analyze read_models.tenants');
  await db.pool.query('analyze read_models.api_keys');
}, 180_000);

afterAll(async () => {
  await db?.drop();
});

function plan(tenantIds: string[] | null, after: bigint): Promise<PlanNode[]> {
  return plansOf(db.pool, (explaining) =>
    listResources(explaining, apiKeyResource, { tenantIds, after, limit: 51 }),
  );
}

describe('a list page of API keys', () => {
  it.each([
    { tenants: 'the tenant', after: 0n },
    { tenants: 'the tenant', after: BigInt(1000 + KEYS / 2) },
    { tenants: 'the tenant and a neighbour', after: 0n },
    // A platform admin's list of every tenant's keys.
    { tenants: 'every tenant', after: 0n },
    { tenants: 'every tenant', after: BigInt(1000 + KEYS / 2) },
  ])('reads about a page of rows: $tenants, after $after', async ({ tenants, after }) => {
    const ids = tenants === 'every tenant' ? null : tenants === 'the tenant' ? [tenant] : [tenant, neighbour];
    const nodes = await plan(ids, after);
    expect(rowsRead(nodes), JSON.stringify(nodes)).toBeLessThan(1_000);
  });

  // Regression test: a tag filter was applied to each row the tenant's page walked, so a tag few keys
  // carry read every key the tenant ever had, its revoked ones included, for each page.
  it.each([
    { tenants: 'the tenant', tags: { every: ['rare'] } },
    { tenants: 'the tenant', tags: { any: ['rare', 'scarce'] } },
    { tenants: 'every tenant', tags: { every: ['rare'] } },
  ])('reads about a page of rows filtered by tags: $tenants, $tags', async ({ tenants, tags }) => {
    const ids = tenants === 'every tenant' ? null : [tenant];
    const nodes = await plansOf(db.pool, (explaining) =>
      listResources(explaining, apiKeyResource, { tenantIds: ids, after: 0n, limit: 51, tags }),
    );
    expect(rowsRead(nodes), JSON.stringify(nodes)).toBeLessThan(1_000);
  });

  it('reads about a page of rows when every key of the tenant carries the tag', async () => {
    await db.pool.query(`update read_models.api_keys set tags = '["prod"]' where tenant_id = $1`, [tenant]);
    await db.pool.query('analyze read_models.api_keys');
    try {
      const nodes = await plansOf(db.pool, (explaining) =>
        listResources(explaining, apiKeyResource, {
          tenantIds: [tenant],
          after: 0n,
          limit: 51,
          tags: { every: ['prod'] },
        }),
      );
      expect(rowsRead(nodes), JSON.stringify(nodes)).toBeLessThan(1_000);
    } finally {
      await db.pool.query(`update read_models.api_keys set tags = '[]' where tenant_id = $1`, [tenant]);
      await db.pool.query('analyze read_models.api_keys');
    }
  });

  it('pages the tenants together in creation order, after the cursor', async () => {
    const rows = await listResources(db.pool, apiKeyResource, {
      tenantIds: [tenant, neighbour],
      after: 1001n,
      limit: 4,
    });
    // The tenant's keys are the even ones; md5('1') is the tenant of 1001, 1201, 1401, …
    expect(rows.map((row) => row.created_position)).toEqual(['1002', '1004', '1006', '1008']);
    const later = await listResources(db.pool, apiKeyResource, {
      tenantIds: [tenant, neighbour],
      after: 1198n,
      limit: 3,
    });
    expect(later.map((row) => row.created_position)).toEqual(['1200', '1201', '1202']);
  });

  it('lists nothing of a deleted tenant', async () => {
    const gone = randomUUID();
    await db.pool.query(
      `insert into read_models.tenants (id, name, subdomain, clerk_org_id, settings, created_at, updated_at,
         deleted_at, revision, position, created_position)
       values ($1, 'gone', 'gone', null, '{}', now(), now(), now(), 1, 900, 900)`,
      [gone],
    );
    await db.pool.query(
      `insert into read_models.routes (id, tenant_id, origin_id, path_pattern, methods, priority, auth_mode,
         required_scopes, require_tenant_org, strip_prefix, created_at, updated_at, revision, position,
         created_position)
       values (gen_random_uuid(), $1, gen_random_uuid(), '/x/*', '[]', 0, 'public', '[]', true, null, now(),
         now(), 0, 901, 901)`,
      [gone],
    );
    expect(await listResources(db.pool, routeResource, { tenantIds: [gone], after: 0n, limit: 10 })).toEqual(
      [],
    );
    expect(
      (await listResources(db.pool, routeResource, { tenantIds: null, after: 0n, limit: 10 })).length,
    ).toBe(0);
  });

  it('walks no key of a deleted tenant in a list of every tenant’s keys', async () => {
    // A tenant piles up revoked keys, a few created before every other tenant's, many after, and is deleted.
    const gone = randomUUID();
    await db.pool.query(
      `insert into read_models.tenants (id, name, subdomain, clerk_org_id, settings, created_at, updated_at,
         revision, position, created_position)
       values ($1, 'gone', 'gone', null, '{}', now(), now(), 0, 300, 300)`,
      [gone],
    );
    await db.pool.query(
      `insert into read_models.api_keys (id, tenant_id, name, key_hash, key_prefix, scopes, revoked_at,
         created_at, updated_at, revision, position, created_position)
       select gen_random_uuid(), $1::uuid, 'k', md5(n::text), 've_live_', '[]', now(), now(), now(), 1, p, p
         from generate_series(0, 500 + $2::int - 1) as n,
              lateral (select case when n < 500 then 400 + n else 100000000 + n end as p) as created`,
      [gone, KEYS],
    );
    await deleteTenant(gone, 200_000_000n);
    await db.pool.query('analyze read_models.api_keys');
    try {
      const nodes = await plan(null, BigInt(1000 + KEYS - 2));
      expect(rowsRead(nodes), JSON.stringify(nodes)).toBeLessThan(1_000);
      const page = await listResources(db.pool, apiKeyResource, { tenantIds: null, after: 0n, limit: 3 });
      expect(page.map((row) => row.created_position)).toEqual(['1000', '1001', '1002']);
      const afterThem = await listResources(db.pool, apiKeyResource, {
        tenantIds: null,
        after: BigInt(1000 + KEYS - 2),
        limit: 3,
      });
      expect(afterThem.map((row) => row.created_position)).toEqual([String(1000 + KEYS - 1)]);
    } finally {
      await db.pool.query('delete from read_models.api_keys where tenant_id = $1', [gone]);
    }
  });
});

describe('a platform admin’s list page of tenants', () => {
  it('walks no deleted tenant', async () => {
    // Many tenants created after every live one but one, and deleted (their rows are kept).
    const DELETED = 20_000;
    const last = randomUUID();
    await db.pool.query(
      `insert into read_models.tenants (id, name, subdomain, clerk_org_id, settings, created_at, updated_at,
         deleted_at, revision, position, created_position)
       select gen_random_uuid(), 'gone' || n, 'gone' || n, null, '{}', now(), now(), now(), 1,
              10000000 + n, 10000000 + n
         from generate_series(0, $1::int - 1) as n`,
      [DELETED],
    );
    await db.pool.query(
      `insert into read_models.tenants (id, name, subdomain, clerk_org_id, settings, created_at, updated_at,
         revision, position, created_position)
       values ($1, 'last', 'last', null, '{}', now(), now(), 0, 20000000, 20000000)`,
      [last],
    );
    await db.pool.query('analyze read_models.tenants');
    try {
      const nodes = await plansOf(db.pool, (explaining) =>
        listResources(explaining, tenantResource, { tenantIds: null, after: 199n, limit: 51 }),
      );
      expect(rowsRead(nodes), JSON.stringify(nodes)).toBeLessThan(1_000);
      const page = await listResources(db.pool, tenantResource, { tenantIds: null, after: 199n, limit: 3 });
      expect(page.map((row) => row.created_position)).toEqual(['200', '20000000']);
    } finally {
      await db.pool.query(
        `delete from read_models.tenants where created_position >= 10000000 and created_position <= 20000000`,
      );
      await db.pool.query('analyze read_models.tenants');
    }
  });
});

/** Folds a TenantDeleted event into the read models, as the read-model projector does. */
async function deleteTenant(tenantId: string, position: bigint): Promise<void> {
  const client = await db.pool.connect();
  try {
    await client.query('begin');
    await readModelsProjection.handle(
      [
        {
          id: randomUUID(),
          type: 'TenantDeleted',
          stream: `tenant-${tenantId}`,
          revision: 1n,
          position,
          data: { tenant_id: tenantId },
          metadata: {
            actor: 'user_admin',
            tenant_id: tenantId,
            correlation_id: 'corr',
            causation_id: null,
            occurred_at: new Date().toISOString(),
            schema_version: 1,
          },
          storedBytes: 100,
        },
      ],
      { client },
    );
    await client.query('commit');
  } catch (error) {
    await client.query('rollback');
    throw error;
  } finally {
    client.release();
  }
}
