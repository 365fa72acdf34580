import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';
import { recordRouteAsAnEarlierReleaseDid } from '../testing/recorded-routes.js';
import { expectRefusedNamingField } from '../testing/refused-commands.js';

/**
 * Route settings each valid on its own that the rest of the route keeps from ever taking effect: a
 * strip_prefix or rewrite_path.from_prefix no path of the route's pattern starts with (every request
 * would reach the origin unstripped), required_scopes on a public route (no credential is read, so no
 * scope is ever checked). Judged on the route a command leaves: a PATCH may change either side.
 */

let h: ControlPlaneHarness;
let tenantId = '';
let originId = '';

beforeAll(async () => {
  h = await startControlPlane({ withReadSide: true });
  tenantId = json(
    await h.request('POST', '/api/v1/tenants', { body: { name: 'Contra', subdomain: 'contra' } }),
  )['id'] as string;
  originId = json(
    await h.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'api', url: 'http://127.0.0.1:9/' },
    }),
  )['id'] as string;
}, 60_000);

afterAll(async () => {
  await h?.close();
});

const route = (fields: Record<string, unknown>) => ({
  tenant_id: tenantId,
  origin_id: originId,
  auth_mode: 'public',
  ...fields,
});

async function created(fields: Record<string, unknown>): Promise<string> {
  const response = await h.request('POST', '/api/v1/routes', { body: route(fields) });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return json(response)['id'] as string;
}

describe('a prefix the route forwards by that none of its paths starts with', () => {
  it('is refused on create, naming strip_prefix or rewrite_path.from_prefix; nothing is appended', async () => {
    const refused: Array<[Record<string, unknown>, string]> = [
      [{ path_pattern: '/api/users/*', strip_prefix: '/v1' }, 'strip_prefix'],
      [{ path_pattern: '/api/users/*', strip_prefix: '/api/orders' }, 'strip_prefix'],
      // Routes match as written: /API/… is not a path of /api/* (its case-folded reading is refused).
      [{ path_pattern: '/api/*', strip_prefix: '/API' }, 'strip_prefix'],
      // Whole segments: /apix never starts /api/….
      [{ path_pattern: '/api/*', strip_prefix: '/ap' }, 'strip_prefix'],
      // An exact pattern has no path longer than itself.
      [{ path_pattern: '/api', strip_prefix: '/api/v1' }, 'strip_prefix'],
      [{ path_pattern: '/users/:id', strip_prefix: '/users/7/orders' }, 'strip_prefix'],
      [{ path_pattern: '/', strip_prefix: '/api' }, 'strip_prefix'],
      [
        { path_pattern: '/api/*', rewrite_path: { from_prefix: '/v1', to_prefix: '/v2' } },
        'rewrite_path.from_prefix',
      ],
      [
        { path_pattern: '/v1/:id', rewrite_path: { from_prefix: '/v1/7/x', to_prefix: '/v2' } },
        'rewrite_path.from_prefix',
      ],
    ];
    await expectRefusedNamingField(
      h,
      refused.map(([fields, field]) => ['POST', '/api/v1/routes', route(fields), field] as const),
    );
  });

  it('is accepted whenever some path of the pattern starts with it, read as the gateway reads paths', async () => {
    const accepted: Array<Record<string, unknown>> = [
      { path_pattern: '/ok-a/*', strip_prefix: '/ok-a' },
      { path_pattern: '/ok-b/*', strip_prefix: '/ok-b/v1/' }, // deeper than the pattern's literals
      { path_pattern: '/ok-c', strip_prefix: '/ok-c' }, // the exact path, sent as /
      { path_pattern: '/:tenant/ok-d/*', strip_prefix: '/acme/ok-d' }, // a parameter takes any segment
      { path_pattern: '/*', strip_prefix: '/anything' },
      { path_pattern: '/%7Eok-e/*', strip_prefix: '/~ok-e' }, // %7E is read as ~
      { path_pattern: '/ok-f/*', strip_prefix: '/' }, // strips nothing, as before
      { path_pattern: '/ok-g/:id', rewrite_path: { from_prefix: '/ok-g', to_prefix: '/g' } },
      { path_pattern: '/ok-h/*', rewrite_path: { from_prefix: '/', to_prefix: '/h' } },
    ];
    for (const fields of accepted) await created(fields);
  });

  it('is judged on the merged route on PATCH: the pattern alone, or the prefix alone; a PATCH fixing both is accepted', async () => {
    const stripped = await created({ path_pattern: '/shop/*', strip_prefix: '/shop' });
    const rewritten = await created({
      path_pattern: '/legacy/*',
      rewrite_path: { from_prefix: '/legacy', to_prefix: '/v2' },
    });
    await expectRefusedNamingField(h, [
      ['PATCH', `/api/v1/routes/${stripped}`, { path_pattern: '/store/*' }, 'strip_prefix'],
      ['PATCH', `/api/v1/routes/${stripped}`, { strip_prefix: '/store' }, 'strip_prefix'],
      ['PATCH', `/api/v1/routes/${rewritten}`, { path_pattern: '/old/*' }, 'rewrite_path.from_prefix'],
      [
        'PATCH',
        `/api/v1/routes/${rewritten}`,
        { rewrite_path: { from_prefix: '/old', to_prefix: '/v2' } },
        'rewrite_path.from_prefix',
      ],
    ]);
    const both = await h.request('PATCH', `/api/v1/routes/${stripped}`, {
      body: { path_pattern: '/store/*', strip_prefix: '/store' },
    });
    expect(both.status, JSON.stringify(both.body)).toBe(200);
    expect(json(both)).toMatchObject({ path_pattern: '/store/*', strip_prefix: '/store' });
    const dropped = await h.request('PATCH', `/api/v1/routes/${rewritten}`, {
      body: { path_pattern: '/old/*', rewrite_path: null },
    });
    expect(dropped.status, JSON.stringify(dropped.body)).toBe(200);
  });

  it('recorded before the rule, still folds into the tenant’s config, and a PATCH that fixes it is accepted', async () => {
    const id = randomUUID();
    await recordRouteAsAnEarlierReleaseDid(h.store, tenantId, {
      id,
      origin_id: originId,
      path_pattern: '/recorded/*',
      auth_mode: 'public',
      strip_prefix: '/elsewhere',
    });
    const config = await h.request('GET', `/api/v1/tenants/${tenantId}/config`);
    expect(config.status).toBe(200);
    const routes = json(config)['routes'] as Array<{ id: string; strip_prefix: string | null }>;
    expect(routes.find((entry) => entry.id === id)?.strip_prefix).toBe('/elsewhere');
    const fixed = await h.request('PATCH', `/api/v1/routes/${id}`, { body: { strip_prefix: '/recorded' } });
    expect(fixed.status, JSON.stringify(fixed.body)).toBe(200);
    expect(json(fixed)['strip_prefix']).toBe('/recorded');
  });
});

describe('required_scopes on a public route', () => {
  it('is refused on create and on a PATCH making the route public; a PATCH clearing them too is accepted', async () => {
    const keyed = await created({
      path_pattern: '/orders/*',
      auth_mode: 'apikey_required',
      required_scopes: ['orders:read'],
    });
    await expectRefusedNamingField(h, [
      [
        'POST',
        '/api/v1/routes',
        route({ path_pattern: '/reports/*', required_scopes: ['reports:read'] }),
        'required_scopes',
      ],
      ['PATCH', `/api/v1/routes/${keyed}`, { auth_mode: 'public' }, 'required_scopes'],
    ]);
    const opened = await h.request('PATCH', `/api/v1/routes/${keyed}`, {
      body: { auth_mode: 'public', required_scopes: [] },
    });
    expect(opened.status, JSON.stringify(opened.body)).toBe(200);
    expect(json(opened)).toMatchObject({ auth_mode: 'public', required_scopes: [] });
  });
});

describe('retries on a route none of whose methods they may retry', () => {
  it('is refused on create and on a PATCH of either side, naming retries.methods; a PATCH listing the method is accepted', async () => {
    const posts = await created({ path_pattern: '/payments/*', methods: ['POST'] });
    const reads = await created({ path_pattern: '/catalog/*', methods: ['GET'], retries: { attempts: 3 } });
    await expectRefusedNamingField(h, [
      // The default retries.methods are the idempotent ones: a POST-only route would never retry.
      [
        'POST',
        '/api/v1/routes',
        route({ path_pattern: '/transfers/*', methods: ['POST'], retries: { attempts: 3 } }),
        'retries.methods',
      ],
      ['PATCH', `/api/v1/routes/${posts}`, { retries: { attempts: 2 } }, 'retries.methods'],
      ['PATCH', `/api/v1/routes/${reads}`, { methods: ['POST', 'PATCH'] }, 'retries.methods'],
    ]);
    const listed = await h.request('PATCH', `/api/v1/routes/${posts}`, {
      body: { retries: { attempts: 2, methods: ['POST'] } },
    });
    expect(listed.status, JSON.stringify(listed.body)).toBe(200);
    // Any method (no list) and a list sharing one method with retries.methods keep retries useful.
    await created({ path_pattern: '/any/*', retries: { attempts: 2 } });
    await created({ path_pattern: '/mixed/*', methods: ['GET', 'POST'], retries: { attempts: 2 } });
  });
});

describe('cache_policy.vary_headers without the key pattern that reads them', () => {
  it('is refused on create and PATCH, naming cache_policy.vary_headers; with path+query+headers it is accepted', async () => {
    const cached = await created({ path_pattern: '/pages/*' });
    await expectRefusedNamingField(h, [
      [
        'POST',
        '/api/v1/routes',
        route({ path_pattern: '/docs/*', cache_policy: { vary_headers: ['accept-language'] } }),
        'cache_policy.vary_headers',
      ],
      [
        'PATCH',
        `/api/v1/routes/${cached}`,
        { cache_policy: { cache_key_pattern: 'path', vary_headers: ['accept-language'] } },
        'cache_policy.vary_headers',
      ],
    ]);
    const keyed = await h.request('PATCH', `/api/v1/routes/${cached}`, {
      body: { cache_policy: { cache_key_pattern: 'path+query+headers', vary_headers: ['accept-language'] } },
    });
    expect(keyed.status, JSON.stringify(keyed.body)).toBe(200);
  });
});
