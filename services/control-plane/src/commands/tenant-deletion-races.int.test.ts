import type { RecordedEvent } from '@vantageedge/shared/event-store/port';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * A tenant's resources live in streams of their own, so the tenant's deletion and a create or a change
 * of one of them append to different streams. A command answered 2xx must have been recorded while the
 * tenant was live; one that comes after the deletion is a 404 that appends nothing.
 */
describe('commands racing the deletion of their tenant', () => {
  let cp: ControlPlaneHarness;
  const post = (path: string, body: unknown) => cp.request('POST', path, { body });
  const idOf = (response: ApiResponse) => json(response)['id'] as string;
  let tenants = 0;

  beforeAll(async () => {
    cp = await startControlPlane();
  });
  afterAll(async () => {
    await cp?.close();
  });

  const newTenantWithOrigin = async () => {
    tenants += 1;
    const tenant = await post('/api/v1/tenants', {
      name: `doomed ${tenants}`,
      subdomain: `doomed-${tenants}`,
    });
    expect(tenant.status, JSON.stringify(tenant.body)).toBe(201);
    const tenantId = idOf(tenant);
    const origin = await post('/api/v1/origins', {
      tenant_id: tenantId,
      name: 'o',
      url: 'https://o.example.com',
    });
    expect(origin.status, JSON.stringify(origin.body)).toBe(201);
    return { tenantId, originId: idOf(origin) };
  };

  const CREATED = new Set(['RouteCreated', 'OriginCreated', 'ApiKeyIssued']);
  const tenantOf = (event: RecordedEvent) => (event.data as { tenant_id?: string }).tenant_id;

  // Regression test: a revoke, or a route's delete, found the tenant live and then appended after the
  // tenant's deletion had committed (they took no lock the deletion takes).
  it('records no change of a resource of a tenant after its deletion, and answers those commands 404', async () => {
    for (let round = 0; round < 5; round++) {
      const { tenantId, originId } = await newTenantWithOrigin();
      const resources = await Promise.all(
        Array.from({ length: 8 }, async (_, i) => {
          const route = await post('/api/v1/routes', {
            tenant_id: tenantId,
            origin_id: originId,
            path_pattern: `/c${i}/*`,
            auth_mode: 'public',
          });
          const key = await post('/api/v1/api-keys', { tenant_id: tenantId, name: `c${i}` });
          return { routeId: idOf(route), keyId: idOf(key) };
        }),
      );
      const commands = resources.flatMap(({ routeId, keyId }, i) => [
        cp.request('DELETE', `/api/v1/routes/${routeId}`),
        cp.request('POST', `/api/v1/api-keys/${keyId}/revoke`, { body: {} }),
        cp.request('PATCH', `/api/v1/origins/${originId}`, { body: { name: `renamed ${i}` } }),
      ]);
      const [deleted, ...answers] = await Promise.all([
        cp.request('DELETE', `/api/v1/tenants/${tenantId}`),
        ...commands,
      ]);
      expect(deleted!.status, JSON.stringify(deleted!.body)).toBe(204);

      const events = (await cp.allEvents()).filter((event) => event.metadata.tenant_id === tenantId);
      const deletion = events.find((event) => event.type === 'TenantDeleted')!;
      const late = events.filter((event) => event.position > deletion.position);
      expect(late.map((event) => event.type)).toEqual([]);
      for (const answer of answers) {
        expect([200, 204, 404], JSON.stringify(answer.body)).toContain(answer.status);
        if (answer.status === 404) {
          const error = json(answer)['error'] as { code: string; details: Array<{ field: string }> };
          expect(error.code).toBe('not_found');
          expect(error.details.map((detail) => detail.field)).toEqual(['id']);
        } else {
          expect(BigInt(answer.headers.get('x-event-position')!)).toBeLessThan(deletion.position);
        }
      }
    }
  });

  it('records no route, origin or API key of a tenant after its deletion, and answers those creates 404', async () => {
    for (let round = 0; round < 5; round++) {
      const { tenantId, originId } = await newTenantWithOrigin();
      const creates = Array.from({ length: 24 }, (_, i) => {
        switch (i % 3) {
          case 0:
            return post('/api/v1/routes', {
              tenant_id: tenantId,
              origin_id: originId,
              path_pattern: `/r${i}/*`,
              auth_mode: 'public',
            });
          case 1:
            return post('/api/v1/origins', {
              tenant_id: tenantId,
              name: `o${i}`,
              url: 'https://x.example.com',
            });
          default:
            return post('/api/v1/api-keys', { tenant_id: tenantId, name: `k${i}` });
        }
      });
      const [deleted, ...answers] = await Promise.all([
        cp.request('DELETE', `/api/v1/tenants/${tenantId}`),
        ...creates,
      ]);
      expect(deleted!.status, JSON.stringify(deleted!.body)).toBe(204);

      const events = (await cp.allEvents()).filter((event) => tenantOf(event) === tenantId);
      const deletion = events.find((event) => event.type === 'TenantDeleted');
      expect(deletion).toBeDefined();
      const lateCreates = events.filter(
        (event) => CREATED.has(event.type) && event.position > deletion!.position,
      );
      expect(lateCreates.map((event) => event.type)).toEqual([]);

      for (const answer of answers) {
        expect([201, 404], JSON.stringify(answer.body)).toContain(answer.status);
        if (answer.status === 201) {
          expect(BigInt(answer.headers.get('x-event-position')!)).toBeLessThan(deletion!.position);
        } else {
          const error = json(answer)['error'] as { code: string; details: Array<{ field: string }> };
          expect(error.code).toBe('not_found');
          expect(error.details.map((detail) => detail.field)).toEqual(['tenant_id']);
        }
      }
    }
  });
});
