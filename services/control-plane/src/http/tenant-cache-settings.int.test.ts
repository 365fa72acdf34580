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
