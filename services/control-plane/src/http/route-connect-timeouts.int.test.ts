import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';
import { expectRefusedNamingField } from '../testing/refused-commands.js';

/**
 * A gateway opens a pool per target for each route connect_ms it is asked for, at most
 * MAX_ROUTE_CONNECT_TIMEOUTS_PER_ORIGIN of them: past those a route's connect_ms was accepted here and
 * then not applied (its connects waited the origin's own connect timeout, up to 10 s, instead of the
 * 200 ms it set). A value its origin's routes do not use yet is refused once they use that many.
 */

let h: ControlPlaneHarness;
let tenantId = '';
let busy = '';
let other = '';

async function originNamed(name: string): Promise<string> {
  const response = await h.request('POST', '/api/v1/origins', {
    body: { tenant_id: tenantId, name, url: 'http://127.0.0.1:9/' },
  });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return json(response)['id'] as string;
}

const route = (originId: string, path: string, connectMs?: number) => ({
  tenant_id: tenantId,
  origin_id: originId,
  auth_mode: 'public',
  path_pattern: path,
  ...(connectMs === undefined ? {} : { timeouts: { connect_ms: connectMs } }),
});

async function created(body: Record<string, unknown>): Promise<string> {
  const response = await h.request('POST', '/api/v1/routes', { body });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return json(response)['id'] as string;
}

beforeAll(async () => {
  h = await startControlPlane({ withReadSide: true });
  tenantId = json(
    await h.request('POST', '/api/v1/tenants', { body: { name: 'Connects', subdomain: 'connects' } }),
  )['id'] as string;
  busy = await originNamed('busy');
  other = await originNamed('other');
  for (const [index, ms] of [100, 200, 300, 400].entries()) await created(route(busy, `/r${index}/*`, ms));
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe("an origin's routes' distinct connect_ms values", () => {
  it('a fifth value on the same origin is refused, naming timeouts.connect_ms; nothing is appended', async () => {
    const onOther = await created(route(other, '/other/*', 500));
    const split = {
      ...route(other, '/split/*', 600),
      traffic_split: {
        origins: [
          { origin_id: other, weight: 1 },
          { origin_id: busy, weight: 1 },
        ],
      },
    };
    await expectRefusedNamingField(h, [
      ['POST', '/api/v1/routes', route(busy, '/fifth/*', 500), 'timeouts.connect_ms'],
      ['POST', '/api/v1/routes', split, 'timeouts.connect_ms'],
      ['PATCH', `/api/v1/routes/${onOther}`, { origin_id: busy }, 'timeouts.connect_ms'],
    ]);
  });

  it('a value the origin uses already, none, or one on another origin is accepted', async () => {
    await created(route(busy, '/same/*', 300));
    const without = await created(route(busy, '/none/*'));
    await created(route(other, '/elsewhere/*', 900));
    const patched = await h.request('PATCH', `/api/v1/routes/${without}`, {
      body: { timeouts: { connect_ms: 100 } },
    });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
  });

  it('a config document whose routes bring a fifth value to an origin is refused at that entry, by name or id', async () => {
    const read = await h.request('GET', `/api/v1/tenants/${tenantId}/config/document`, {
      headers: { 'x-min-position': (await h.store.headPosition()).toString() },
    });
    const document = json(read)['document'] as { routes: Array<Record<string, unknown>> };
    const before = await h.store.headPosition();
    const { id: _id, origin: _name, origin_id: _origin, ...template } = document.routes[0]!;
    const fifth = { ...template, path_pattern: '/doc-fifth/*', timeouts: { connect_ms: 700 } };
    for (const entry of [
      { ...fifth, origin: 'busy' },
      { ...fifth, origin_id: busy },
    ]) {
      for (const step of ['plan', 'apply']) {
        const response = await h.request('POST', `/api/v1/tenants/${tenantId}/config/${step}`, {
          body: { ...document, routes: [...document.routes, entry] },
        });
        expect(response.status, `${step} ${JSON.stringify(response.body)}`).toBe(400);
        expect(json(response)['error']).toMatchObject({
          details: [
            expect.objectContaining({ field: `routes.${document.routes.length}.timeouts.connect_ms` }),
          ],
        });
      }
    }
    expect(await h.store.headPosition()).toBe(before);
    const same = await h.request('POST', `/api/v1/tenants/${tenantId}/config/plan`, {
      body: {
        ...document,
        routes: [...document.routes, { ...fifth, origin: 'busy', timeouts: { connect_ms: 200 } }],
      },
    });
    expect(same.status, JSON.stringify(same.body)).toBe(200);
  });
});
