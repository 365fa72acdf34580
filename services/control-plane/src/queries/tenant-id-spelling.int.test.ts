import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConfigReadBudget, useConfigReadBudget } from '../config-history/config-read-budget.js';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * Regression: the read side kept a tenant id as the request spelled it. PostgreSQL's uuid columns
 * match any case, so `D84E0B0E-…` reached the tenant's rows and its members were granted access, while
 * the tenant's config read budget (and its usage read gate and request places) were kept under that
 * spelling: each case variant of the id had a budget of its own, and the config endpoints folded the
 * tenant's history under it only to answer 404. An id is now read in its one spelling, lower case.
 */

let cp: ControlPlaneHarness;
let member: string;
let orgAdmin: string;
let tenantId = '';

/** The id with its hex letters in upper case: the same uuid, another spelling. */
const shouted = (id: string) => id.toUpperCase();

beforeAll(async () => {
  cp = await startControlPlane({ withReadSide: true });
  const post = async (path: string, body: unknown) => {
    const response = await cp.request('POST', path, { body });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    return json(response)['id'] as string;
  };
  tenantId = await post('/api/v1/tenants', {
    name: 'Case',
    subdomain: 'id-case',
    clerk_org_id: 'org_id_case',
  });
  await post('/api/v1/origins', { tenant_id: tenantId, name: 'a', url: 'https://a.example.com' });
  await post('/api/v1/users', {
    tenant_id: tenantId,
    clerk_user_id: 'user_id_case_admin',
    email: 'admin@case.example.com',
    role: 'admin',
  });
  await cp.readModelsCaughtUp();
  member = await cp.token({ userId: 'user_id_case_admin' });
  orgAdmin = await cp.token({ userId: 'user_id_case_org', orgId: 'org_id_case', orgRole: 'admin' });
});
afterAll(async () => {
  await cp?.close();
});

describe('a tenant id spelled in upper case', () => {
  it('is the same tenant for its config, explain and usage, whoever grants the access', async () => {
    for (const token of [member, orgAdmin]) {
      const config = await cp.request('GET', `/api/v1/tenants/${shouted(tenantId)}/config`, { token });
      expect(config.status, JSON.stringify(config.body)).toBe(200);
      expect(json(config)['tenant_id']).toBe(tenantId);
      const explained = await cp.request('POST', `/api/v1/tenants/${shouted(tenantId)}/explain`, {
        token,
        body: { method: 'GET', host: 'id-case.vantageedge.dev', path: '/' },
      });
      expect(explained.status, JSON.stringify(explained.body)).toBe(200);
      expect(json(explained)['tenant_id']).toBe(tenantId);
      const usage = await cp.request('GET', `/api/v1/usage?tenant_id=${shouted(tenantId)}`, { token });
      expect(usage.status, JSON.stringify(usage.body)).toBe(200);
      expect(json(usage)['tenant_id']).toBe(tenantId);
    }
  });

  it("draws on the tenant's own config read budget", async () => {
    // A budget the first read spends: the tenant's next reads are refused until it refills.
    useConfigReadBudget(cp.store, createConfigReadBudget({ bytesPerMinute: 1000 }));
    const first = await cp.request('GET', `/api/v1/tenants/${tenantId}/config`, { token: member });
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    for (const spelling of [tenantId, shouted(tenantId), shouted(tenantId.slice(0, 8)) + tenantId.slice(8)]) {
      const read = await cp.request('GET', `/api/v1/tenants/${spelling}/config`, { token: member });
      expect(read.status, `${spelling}: ${JSON.stringify(read.body)}`).toBe(429);
      expect(json(read)['error']).toMatchObject({ code: 'admin_rate_limited' });
    }
  });
});
