import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * A tenant's share of the response cache (`settings.cache.max_bytes`) through the admin API: kept as
 * sent within the platform's range; anything else is a 400 naming the field and changes nothing.
 */
let cp: ControlPlaneHarness;
let tenantId = '';

beforeAll(async () => {
  cp = await startControlPlane({ withReadSide: true });
  const tenant = await cp.request('POST', '/api/v1/tenants', {
    body: { name: 'Quota', subdomain: 'cquota' },
  });
  tenantId = json(tenant)['id'] as string;
});
afterAll(async () => {
  await cp?.close();
});

const eventCount = async () => (await cp.allEvents()).length;
const patch = (cache: unknown) =>
  cp.request('PATCH', `/api/v1/tenants/${tenantId}`, { body: { settings: { cache } } });

describe('tenant cache settings', () => {
  it('keeps a cache byte bound within the platform range', async () => {
    const ok = await patch({ max_bytes: 32 * 1024 * 1024 });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(json(ok)['settings']).toMatchObject({ cache: { max_bytes: 32 * 1024 * 1024 } });
  });

  it.each([
    ['above the platform maximum', { max_bytes: 4 * 1024 * 1024 * 1024 + 1 }, 'settings.cache.max_bytes'],
    ['below the minimum', { max_bytes: 10 }, 'settings.cache.max_bytes'],
    ['not an integer', { max_bytes: 1.5e6 + 0.5 }, 'settings.cache.max_bytes'],
    ['a string', { max_bytes: '1000000' }, 'settings.cache.max_bytes'],
    ['with an unknown field', { max_bytes: 1_000_000, max_entries: 5 }, 'settings.cache.max_entries'],
  ])('refuses a bound %s with a 400 naming the field, changing nothing', async (_case, cache, field) => {
    const before = await eventCount();
    const bad = await patch(cache);
    expect(bad.status).toBe(400);
    const error = (bad.body as { error: { code: string; details: Array<{ field: string }> } }).error;
    expect(error.details.map((detail) => detail.field)).toContain(field);
    expect(await eventCount()).toBe(before);
  });
});

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

// Regression: a tenant admin could give its own tenant the platform maximum (4 GiB, ≈8 GiB of the shared
// Redis with its footprint), evicting other tenants' cache entries and rate-limit counters. Above
// TENANT_MAX_CACHE_BYTES (256 MiB by default) the bound is the platform admins' decision.
describe('the cache bound a tenant admin may set', () => {
  let adminToken = '';
  /** The tenant's cache settings as read once the read side has every event so far. */
  const cacheOf = async () => {
    const headers = { 'x-min-position': (await cp.store.headPosition()).toString() };
    const tenant = json(await cp.request('GET', `/api/v1/tenants/${tenantId}`, { headers }));
    return (tenant['settings'] as { cache?: { max_bytes: number } }).cache;
  };
  const asTenantAdmin = (cache: unknown) =>
    cp.request('PATCH', `/api/v1/tenants/${tenantId}`, { token: adminToken, body: { settings: { cache } } });
  const expectRefused = async (
    response: Awaited<ReturnType<typeof asTenantAdmin>>,
    before: number,
    field = 'settings.cache.max_bytes',
  ) => {
    expect(response.status, JSON.stringify(response.body)).toBe(403);
    expect(json(response)['error']).toMatchObject({ code: 'forbidden', details: [{ field }] });
    expect(await eventCount()).toBe(before);
  };

  beforeAll(async () => {
    const user = await cp.request('POST', '/api/v1/users', {
      body: {
        tenant_id: tenantId,
        clerk_user_id: 'user_cquota_admin',
        email: 'a@example.com',
        role: 'admin',
      },
    });
    expect(user.status, JSON.stringify(user.body)).toBe(201);
    adminToken = await cp.token({ userId: 'user_cquota_admin' });
  });

  it('refuses a tenant admin more than TENANT_MAX_CACHE_BYTES with a 403 naming the field', async () => {
    const before = await eventCount();
    await expectRefused(await asTenantAdmin({ max_bytes: 4 * GiB }), before);
    await expectRefused(await asTenantAdmin({ max_bytes: 256 * MiB + 1 }), before);
    const atCeiling = await asTenantAdmin({ max_bytes: 256 * MiB });
    expect(atCeiling.status, JSON.stringify(atCeiling.body)).toBe(200);
  });

  it('lets a platform admin set more; the tenant admin keeps or lowers it but never raises it above', async () => {
    const granted = await patch({ max_bytes: 2 * GiB });
    expect(granted.status, JSON.stringify(granted.body)).toBe(200);
    const kept = await asTenantAdmin({ max_bytes: 2 * GiB });
    expect(kept.status, JSON.stringify(kept.body)).toBe(200);
    const lowered = await asTenantAdmin({ max_bytes: GiB });
    expect(lowered.status, JSON.stringify(lowered.body)).toBe(200);
    const before = await eventCount();
    await expectRefused(await asTenantAdmin({ max_bytes: 2 * GiB }), before);
    expect(await cacheOf()).toEqual({ max_bytes: GiB });
  });

  it('refuses the same through a config apply', async () => {
    const lowered = await asTenantAdmin({ max_bytes: 64 * MiB });
    expect(lowered.status).toBe(200);
    const read = await cp.request('GET', `/api/v1/tenants/${tenantId}/config/document`, {
      token: adminToken,
    });
    const document = json(read)['document'] as { tenant: { settings: Record<string, unknown> } };
    document.tenant.settings = { ...document.tenant.settings, cache: { max_bytes: 4 * GiB } };
    const before = await eventCount();
    const applied = await cp.request('POST', `/api/v1/tenants/${tenantId}/config/apply`, {
      token: adminToken,
      body: document,
    });
    await expectRefused(applied, before, 'tenant.settings.cache.max_bytes');
    expect(await cacheOf()).toEqual({ max_bytes: 64 * MiB });
  });
});
