import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * A route whose match (path pattern, methods, hosts, header and query conditions, priority) is another
 * route's of the same tenant would never be chosen: the gateway tries them in a fixed order and the
 * first one always wins. Such a route is refused with 409 `duplicate_route` naming the route it
 * duplicates; a route on the same path that differs in anything it is matched by is taken.
 */
let cp: ControlPlaneHarness;
let tenantId = '';
let originId = '';
let n = 0;

beforeAll(async () => {
  cp = await startControlPlane();
  const tenant = await cp.request('POST', '/api/v1/tenants', { body: { name: 'Dup', subdomain: 'dup' } });
  tenantId = json(tenant)['id'] as string;
  originId = json(
    await cp.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'o', url: 'http://127.0.0.1:9' },
    }),
  )['id'] as string;
});
afterAll(async () => {
  await cp?.close();
});

const createRoute = (fields: Record<string, unknown>) =>
  cp.request('POST', '/api/v1/routes', {
    body: { tenant_id: tenantId, origin_id: originId, auth_mode: 'public', ...fields },
  });

/** A fresh path, so that each test's routes only meet each other. */
const freshPath = () => `/dup${n++}`;

async function expectDuplicateOf(
  otherRoute: string,
  field: string,
  send: () => Promise<ApiResponse>,
): Promise<void> {
  const before = await cp.store.headPosition();
  const response = await send();
  const body = json(response);
  expect(response.status, JSON.stringify(body).slice(0, 400)).toBe(409);
  const error = body['error'] as { code: string; message: string; details: Array<{ field: string }> };
  expect(error.code).toBe('duplicate_route');
  expect(error.message).toContain(otherRoute);
  expect(error.details.map((detail) => detail.field)).toContain(field);
  expect(await cp.store.headPosition()).toBe(before);
}

describe('a route with the match of another route of the tenant', () => {
  it('is refused with 409 duplicate_route naming that route, also written differently', async () => {
    const path = freshPath();
    const first = await createRoute({
      path_pattern: `${path}/caf%C3%A9/:id/*`,
      methods: ['GET', 'POST'],
      priority: 5,
      match: {
        hosts: ['dup.localhost', 'dup.vantageedge.dev'],
        headers: [
          { name: 'x-api-version', exact: '2' },
          { name: 'x-tier', present: true },
        ],
        query: [{ name: 'beta', present: true }],
      },
    });
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    const firstId = json(first)['id'] as string;

    // The same match: methods, hosts and conditions in another order, header names in another case,
    // the parameter under another name and the escape in lower case.
    await expectDuplicateOf(firstId, 'path_pattern', () =>
      createRoute({
        path_pattern: `${path}/caf%c3%a9/:key/*`,
        methods: ['POST', 'GET'],
        priority: 5,
        match: {
          hosts: ['dup.vantageedge.dev', 'dup.localhost'],
          headers: [
            { name: 'X-Tier', present: true },
            { name: 'X-Api-Version', exact: '2' },
          ],
          query: [{ name: 'beta', present: true }],
        },
      }),
    );
  });

  it('is refused when both routes have no conditions and every method', async () => {
    const path = freshPath();
    const first = await createRoute({ path_pattern: `${path}/*` });
    expect(first.status).toBe(201);
    await expectDuplicateOf(json(first)['id'] as string, 'path_pattern', () =>
      createRoute({ path_pattern: `${path}/*`, match: { hosts: [], headers: [], query: [] } }),
    );
  });

  it('is taken on the same path with other methods, hosts, conditions or priority', async () => {
    const path = `${freshPath()}/*`;
    const variants: Record<string, unknown>[] = [
      {},
      { methods: ['GET'] },
      { methods: ['GET', 'POST'] },
      { priority: 1 },
      { match: { hosts: ['dup.localhost'], headers: [], query: [] } },
      { match: { hosts: [], headers: [{ name: 'x-api-version', exact: '2' }], query: [] } },
      { match: { hosts: [], headers: [{ name: 'x-api-version', exact: '3' }], query: [] } },
      { match: { hosts: [], headers: [{ name: 'x-api-version', prefix: '2' }], query: [] } },
      { match: { hosts: [], headers: [], query: [{ name: 'x-api-version', exact: '2' }] } },
    ];
    for (const variant of variants) {
      const response = await createRoute({ path_pattern: path, ...variant });
      expect(response.status, JSON.stringify([variant, response.body])).toBe(201);
    }
  });

  it('is refused when a PATCH gives a route the match of another; other changes of either are taken', async () => {
    const path = freshPath();
    const first = await createRoute({ path_pattern: `${path}/a`, methods: ['GET'] });
    const second = await createRoute({ path_pattern: `${path}/b`, methods: ['GET'] });
    const firstId = json(first)['id'] as string;
    const secondId = json(second)['id'] as string;
    await expectDuplicateOf(firstId, 'path_pattern', () =>
      cp.request('PATCH', `/api/v1/routes/${secondId}`, { body: { path_pattern: `${path}/a` } }),
    );
    const renamed = await cp.request('PATCH', `/api/v1/routes/${firstId}`, {
      body: { auth_mode: 'apikey_required' },
    });
    expect(renamed.status).toBe(200);
    const moved = await cp.request('PATCH', `/api/v1/routes/${secondId}`, {
      body: { path_pattern: `${path}/a`, methods: ['POST'] },
    });
    expect(moved.status).toBe(200);
  });
});

describe('a config document with two routes of the same match', () => {
  const document = (path: string) => ({
    tenant: { name: 'Dup', subdomain: 'dup' },
    origins: [{ name: 'o', url: 'http://127.0.0.1:9' }],
    routes: [
      { origin: 'o', path_pattern: `${path}/:id`, methods: ['GET'], auth_mode: 'public' },
      { origin: 'o', path_pattern: `${path}/:id`, methods: ['POST'], auth_mode: 'public' },
      { origin: 'o', path_pattern: `${path}/:name`, methods: ['GET'], auth_mode: 'apikey_required' },
    ],
  });

  it.each(['plan', 'apply'])(
    'is refused by %s with 409 duplicate_route naming the other entry',
    async (action) => {
      await expectDuplicateOf('routes.0', 'routes.2.path_pattern', () =>
        cp.request('POST', `/api/v1/tenants/${tenantId}/config/${action}`, { body: document(freshPath()) }),
      );
    },
  );
});
