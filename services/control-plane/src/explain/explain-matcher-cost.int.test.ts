import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConfigReadBudget, useConfigReadBudget } from '../config-history/config-read-budget.js';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * Explain matches a request with the tenant's route matcher, as a gateway does. Building it costs about
 * the tenant's routes (300 routes of 255 segments: ≈ 50 ms of the thread, 1,000 ≈ 150 ms), which every
 * explain paid again, a preflight's twice, while its config read budget charged it what reading the
 * config costs (≈ 20 ms per MB): ten times that was let through. The matcher is built once per version
 * of the config and paid for, by its routes' bytes, when it is.
 */

const ROUTES = 300;
const MIB = 1024 * 1024;

let h: ControlPlaneHarness;
let tenantId: string;

const explain = () =>
  h.request('POST', `/api/v1/tenants/${tenantId}/explain`, {
    body: { method: 'GET', host: 'deep.example', path: `/a/${'b/'.repeat(200)}c` },
  });

/** A pattern of 255 one-letter segments, each route's its own. */
function deepPattern(route: number): string {
  const segments = ['a'];
  for (let segment = 1; segment < 255; segment += 1) {
    segments.push(String.fromCharCode(97 + ((route * 7 + segment * segment) % 26)));
  }
  segments[253] = String.fromCharCode(97 + Math.floor(route / 26));
  segments[254] = String.fromCharCode(97 + (route % 26));
  return `/${segments.join('/')}`;
}

beforeAll(async () => {
  h = await startControlPlane({ withReadSide: true });
  const created = await h.request('POST', '/api/v1/tenants', {
    body: { name: 'Deep routes', subdomain: `deep-routes-${Date.now()}` },
  });
  tenantId = json(created)['id'] as string;
  await h.readModelsCaughtUp();
  const current = await h.request('GET', `/api/v1/tenants/${tenantId}/config/document`);
  const document = json(current)['document'] as Record<string, unknown>;
  const routes = Array.from({ length: ROUTES }, (_, route) => ({
    path_pattern: deepPattern(route),
    auth_mode: route % 2 === 0 ? 'public' : 'apikey_required',
    origin_id: null,
    fixed_response: { status: 200, body: 'ok' },
  }));
  const applied = await h.request('POST', `/api/v1/tenants/${tenantId}/config/apply`, {
    body: { ...document, routes },
  });
  expect(applied.status, JSON.stringify(applied.body).slice(0, 300)).toBe(200);
  await h.readModelsCaughtUp();
  // Folded once (its events paid from the default budget), so that below only a new version is read.
  expect((await explain()).status).toBe(200);
  const renamed = await h.request('PATCH', `/api/v1/tenants/${tenantId}`, { body: { name: 'Deeper' } });
  expect(renamed.status, JSON.stringify(renamed.body)).toBe(200);
}, 120_000);

afterAll(async () => {
  useConfigReadBudget(h.store, createConfigReadBudget());
  await h?.close();
});

describe('POST …/explain: the route matcher', () => {
  it("is paid from the tenant's config read budget when a version's is built, once", async () => {
    let now = 0;
    // Room for several reads of this config (≈ 0.3 MB), not for building its matcher too.
    useConfigReadBudget(h.store, createConfigReadBudget({ bytesPerMinute: 1.5 * MIB, now: () => now }));
    const built = await explain();
    expect(built.status, JSON.stringify(built.body).slice(0, 300)).toBe(200);
    const refused = await explain();
    expect(refused.status).toBe(429);
    expect(json(refused)['error']).toMatchObject({
      code: 'admin_rate_limited',
      details: [{ field: 'tenant_config_read_bytes_per_minute' }],
    });

    // Once the bucket is full again, explains of the same version read the config and build nothing.
    now += 10 * 60_000;
    for (let read = 0; read < 3; read += 1) {
      const again = await explain();
      expect(again.status, JSON.stringify(again.body).slice(0, 300)).toBe(200);
    }
  }, 60_000);
});
