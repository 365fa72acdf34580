import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * What one tenant's usage reads may cost the admin API. A tenant's own OIDC issuer can mint a new `sub`
 * per request, so its `usage_counts` can hold hundreds of thousands of rows a month; a usage read over
 * them must neither hold the pool every tenant's admin API shares nor run for as long as it likes.
 */

let cp: ControlPlaneHarness;
let busyTenantId: string;
let otherTenantId: string;
const MONTH = 'granularity=hour&from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z';

async function createdTenant(name: string): Promise<string> {
  const response = await cp.request('POST', '/api/v1/tenants', {
    body: { name, subdomain: `${name.toLowerCase()}-${Date.now()}` },
  });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return String(json(response)['id']);
}

beforeAll(async () => {
  cp = await startControlPlane({ withReadSide: true, usageQueryTimeoutMs: 300 });
  busyTenantId = await createdTenant('Busy');
  otherTenantId = await createdTenant('Quiet');
  // Usage reads and tenant reads find the tenants in the read models: wait until these hold them.
  await cp.readModelsCaughtUp();
  // 720 hours × 800 users, one request each: what a tenant's issuer minting a new subject per request
  // makes at ~0.2 requests/s for a month.
  await cp.db.pool.query(
    `insert into usage_counts (tenant_id, hour, route_id, api_key_id, user_id, status_class, requests)
     select $1, timestamptz '2026-11-01T00:00:00Z' + make_interval(hours => h), '', '',
            'oidc:issuer:' || h || ':' || u, '2xx', 1
       from generate_series(0, 719) h, generate_series(1, 800) u`,
    [busyTenantId],
  );
  await cp.db.pool.query('analyze usage_counts');
}, 120_000);

afterAll(async () => {
  await cp?.close();
});

describe('the cost of GET /api/v1/usage', () => {
  it('regression: one tenant’s usage reads in parallel do not hold up another tenant’s admin API', async () => {
    const usage = Array.from({ length: 10 }, () =>
      cp.request('GET', `/api/v1/usage?tenant_id=${busyTenantId}&${MONTH}`),
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    const other = await cp.request('GET', `/api/v1/tenants/${otherTenantId}`);
    const answers = await Promise.all(usage);
    expect(other.status).toBe(200);
    for (const answer of answers) expect([200, 422, 429]).toContain(answer.status);
    // A refused usage read says why, with the limit, and when to try again.
    const busy = answers.find((answer) => answer.status === 429);
    expect(busy, 'no usage read was refused while the tenant had others in flight').toBeDefined();
    expect(json(busy!)['error']).toMatchObject({
      code: 'admin_rate_limited',
      details: [expect.objectContaining({ field: 'usage_queries_in_flight' })],
    });
    expect(busy!.headers.get('retry-after')).toBe('1');
  }, 60_000);

  it('regression: a usage read past USAGE_QUERY_TIMEOUT_MS is a 422 naming the range, not a long wait', async () => {
    const response = await cp.request('GET', `/api/v1/usage?tenant_id=${busyTenantId}&${MONTH}`);
    expect(response.status).toBe(422);
    expect(json(response)['error']).toMatchObject({
      code: 'limit_exceeded',
      details: [expect.objectContaining({ field: 'from' })],
    });
    // A range the tenant's rows fit in is answered.
    const day = await cp.request(
      'GET',
      `/api/v1/usage?tenant_id=${busyTenantId}&granularity=hour&from=2026-11-02T00:00:00Z&to=2026-11-02T03:00:00Z`,
    );
    expect(day.status, JSON.stringify(day.body)).toBe(200);
    expect(json(day)['requests']).toBe(3 * 800);
  }, 60_000);
});
