import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * Regression test: a tenant's snapshot could grow to 24 MiB of JSON (75 % of what gateways inflate) as
 * long as it gzipped under the message limit. Every gateway replica decodes and compiles the tenant's
 * whole snapshot on each of its versions, on the event loop all tenants share: 1,000 routes of 400
 * distinct CIDRs, 50 CORS origins and 20 match conditions each (21.7 MB of JSON, 3.4 MB gzipped) held
 * each replica's event loop ~0.7 s per change of its settings. Routes here are ~25 KB each, within
 * TENANT_MAX_ROUTE_BYTES, under the default budget (no snapshotBudget given).
 */
let cp: ControlPlaneHarness;

const hex = (n: number) => n.toString(16).padStart(4, '0');
const errorOf = (response: ApiResponse) =>
  json(response)['error'] as {
    code: string;
    message: string;
    details: Array<{ field: string; issue: string }>;
  };

/** A route as large as a route may be in practice: its own IP rules, CORS origins and header transform. */
function largeRoute(tenantId: string, originId: string, index: number) {
  return {
    tenant_id: tenantId,
    origin_id: originId,
    path_pattern: `/api/r${index}/*`,
    auth_mode: 'public',
    ip_rules: {
      allow: Array.from({ length: 200 }, (_, k) => `2001:db8:${hex(index)}:${hex(k)}::/64`),
      deny: Array.from({ length: 200 }, (_, k) => `2001:db9:${hex(index)}:${hex(k)}::/64`),
    },
    cors: {
      allow_origins: Array.from({ length: 50 }, (_, k) => `https://*.app${k}-${index}.customer-example.com`),
    },
    request_headers: {
      set: Object.fromEntries(
        Array.from({ length: 30 }, (_, k) => [`x-route-${k}`, `${index}-${k}-`.padEnd(250, 'v')]),
      ),
    },
  };
}

beforeAll(async () => {
  cp = await startControlPlane();
});
afterAll(async () => {
  await cp?.close();
});

describe("the snapshot budget's JSON bound (what every replica decodes and compiles per version)", () => {
  it('refuses a route that would take the snapshot over 2 MiB of JSON, though it gzips far under the message limit', async () => {
    const created = await cp.request('POST', '/api/v1/tenants', {
      body: { name: 'wide', subdomain: `wide-${randomUUID().slice(0, 8)}` },
    });
    const tenantId = json(created)['id'] as string;
    const origin = await cp.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'api', url: 'https://api.wide.example' },
    });
    const originId = json(origin)['id'] as string;

    let refused: ApiResponse | undefined;
    const accepted: string[] = [];
    for (let index = 0; index < 120 && refused === undefined; index += 1) {
      const response = await cp.request('POST', '/api/v1/routes', {
        body: largeRoute(tenantId, originId, index),
      });
      if (response.status === 201) accepted.push(json(response)['id'] as string);
      else refused = response;
    }
    expect(refused, `${accepted.length} routes of ~25 KB accepted: no JSON bound below 2 MiB`).toBeDefined();
    expect(refused!.status, JSON.stringify(refused!.body)).toBe(422);
    const error = errorOf(refused!);
    expect(error.code).toBe('limit_exceeded');
    expect(error.details.map((detail) => detail.field)).toEqual(['routes']);
    expect(error.details[0]?.issue).toContain(`${2 * 1024 * 1024} bytes of JSON`);
    expect(error.message).toContain('TENANT_MAX_SNAPSHOT_JSON_BYTES');
    // Everything up to the bound was accepted: ~80 such routes.
    expect(accepted.length).toBeGreaterThan(60);
    const events = (await cp.allEvents()).length;
    expect(
      (await cp.request('POST', '/api/v1/routes', { body: largeRoute(tenantId, originId, 998) })).status,
    ).toBe(422);
    expect((await cp.allEvents()).length).toBe(events);

    // A deletion is always allowed, and then the tenant grows again.
    expect((await cp.request('DELETE', `/api/v1/routes/${accepted[0]}`)).status).toBe(204);
    const again = await cp.request('POST', '/api/v1/routes', { body: largeRoute(tenantId, originId, 999) });
    expect(again.status, JSON.stringify(again.body)).toBe(201);
  });
});
