import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * A target of weight 0 is drained (Kong's and APISIX's weight 0): kept in the origin, sent no new
 * request. An origin needs at least one target that is not drained, as a traffic split needs one
 * origin above weight 0: one whose targets are all drained is refused with 400 at `targets`, and
 * nothing is recorded.
 */

let cp: ControlPlaneHarness;
let tenantId = '';
const SUBDOMAIN = 'drained-targets';

beforeAll(async () => {
  cp = await startControlPlane({ withReadSide: true });
  const tenant = await cp.request('POST', '/api/v1/tenants', {
    body: { name: 'Drained', subdomain: SUBDOMAIN },
  });
  tenantId = json(tenant)['id'] as string;
});
afterAll(async () => {
  await cp?.close();
});

function expectAllDrainedRefused(response: { status: number; body: unknown }, field: string): void {
  expect(response.status, JSON.stringify(response.body)).toBe(400);
  expect(response.body).toMatchObject({
    error: {
      code: 'validation_failed',
      details: [{ field, issue: expect.stringContaining('needs at least one weight above 0') }],
    },
  });
}

const DRAINED_AND_SERVING = [
  { url: 'https://blue.example.com', weight: 0 },
  { url: 'https://green.example.com', weight: 3 },
];
const ALL_DRAINED = [
  { url: 'https://blue.example.com', weight: 0 },
  { url: 'https://green.example.com', weight: 0 },
];

describe('drained origin targets (weight 0)', () => {
  it('accepts a target of weight 0 next to one above 0, and reads it back with weight 0', async () => {
    const created = await cp.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'blue-green', targets: DRAINED_AND_SERVING },
    });
    expect(created.status, JSON.stringify(json(created))).toBe(201);
    expect(json(created)['targets']).toEqual(DRAINED_AND_SERVING);
    await cp.readModelsCaughtUp();
    const read = await cp.request('GET', `/api/v1/origins/${json(created)['id'] as string}`);
    expect(read.status).toBe(200);
    expect(json(read)['targets']).toEqual(DRAINED_AND_SERVING);
  });

  it('refuses a new origin whose targets are all weight 0, and records nothing', async () => {
    const before = (await cp.allEvents()).length;
    expectAllDrainedRefused(
      await cp.request('POST', '/api/v1/origins', {
        body: { tenant_id: tenantId, name: 'all-drained', targets: ALL_DRAINED },
      }),
      'targets',
    );
    expect((await cp.allEvents()).length).toBe(before);
  });

  it('refuses draining the last target in a PATCH, and keeps the origin as it was', async () => {
    const created = await cp.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'to-drain', targets: DRAINED_AND_SERVING },
    });
    expect(created.status).toBe(201);
    const id = json(created)['id'] as string;
    const before = (await cp.allEvents()).length;
    expectAllDrainedRefused(
      await cp.request('PATCH', `/api/v1/origins/${id}`, { body: { targets: ALL_DRAINED } }),
      'targets',
    );
    expect((await cp.allEvents()).length).toBe(before);

    // Draining one target and bringing the other back is one edit like any other.
    const swapped = [
      { url: 'https://blue.example.com', weight: 2 },
      { url: 'https://green.example.com', weight: 0 },
    ];
    const patched = await cp.request('PATCH', `/api/v1/origins/${id}`, { body: { targets: swapped } });
    expect(patched.status, JSON.stringify(json(patched))).toBe(200);
    expect(json(patched)['targets']).toEqual(swapped);
  });

  it('refuses an all-drained origin in a config document, plan and apply alike', async () => {
    const document = {
      tenant: { name: 'Drained', subdomain: SUBDOMAIN },
      origins: [{ name: 'api', targets: ALL_DRAINED }],
      routes: [{ origin: 'api', path_pattern: '/api/*', auth_mode: 'public' }],
    };
    for (const step of ['plan', 'apply']) {
      expectAllDrainedRefused(
        await cp.request('POST', `/api/v1/tenants/${tenantId}/config/${step}`, { body: document }),
        'origins.0.targets',
      );
    }
  });

  it('explains a request with the drained target listed at weight 0', async () => {
    const origin = await cp.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'explained', targets: DRAINED_AND_SERVING },
    });
    const route = await cp.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        origin_id: json(origin)['id'],
        path_pattern: '/blue-green/*',
        auth_mode: 'public',
      },
    });
    expect(route.status, JSON.stringify(json(route))).toBe(201);
    await cp.readModelsCaughtUp();
    const answer = await cp.request('POST', `/api/v1/tenants/${tenantId}/explain`, {
      body: { method: 'GET', host: `${SUBDOMAIN}.vantageedge.dev`, path: '/blue-green/x' },
    });
    expect(answer.status, JSON.stringify(json(answer))).toBe(200);
    expect((json(answer)['upstream'] as { targets: unknown }).targets).toEqual(DRAINED_AND_SERVING);
  });
});
