import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * Input the security review found answered with a 500 or accepted and then lost or moved: deeply
 * nested bodies, bodies that do not decompress, path escapes that are not UTF-8, reserved names in route
 * policy maps and service keys, and path patterns the gateway would skip or serve at another path. Each
 * must be a 400 naming the offending field, and append nothing.
 */
let cp: ControlPlaneHarness;
let tenantId = '';
let originId = '';
let routeId = '';
let n = 0;

beforeAll(async () => {
  cp = await startControlPlane();
  tenantId = json(await cp.request('POST', '/api/v1/tenants', { body: { name: 'In', subdomain: 'input' } }))[
    'id'
  ] as string;
  originId = json(
    await cp.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'o', url: 'http://127.0.0.1:9' },
    }),
  )['id'] as string;
  routeId = json(
    await cp.request('POST', '/api/v1/routes', {
      body: { tenant_id: tenantId, origin_id: originId, path_pattern: '/kept/*', auth_mode: 'public' },
    }),
  )['id'] as string;
});
afterAll(async () => {
  await cp?.close();
});

const route = (extra: Record<string, unknown> = {}) => ({
  tenant_id: tenantId,
  origin_id: originId,
  path_pattern: `/r${n++}/*`,
  auth_mode: 'public',
  ...extra,
});

/** Sends each request and expects 400 validation_failed naming `field`, with no event appended. */
async function expectRefused(field: string, send: () => Promise<ApiResponse>): Promise<void> {
  const before = await cp.store.headPosition();
  const response = await send();
  const body = json(response);
  expect(response.status, JSON.stringify(body).slice(0, 300)).toBe(400);
  const error = body['error'] as { code: string; details: Array<{ field: string; issue: string }> };
  expect(error.code).toBe('validation_failed');
  expect(error.details.map((detail) => detail.field)).toContain(field);
  expect(await cp.store.headPosition()).toBe(before);
}

const raw = (method: string, path: string, rawBody: string) => () =>
  cp.request(method, path, { rawBody, headers: { 'content-type': 'application/json' } });

describe('deeply nested bodies', () => {
  it.each([
    ['30,000 nested arrays', `${'['.repeat(30_000)}${']'.repeat(30_000)}`],
    ['10,000 nested objects', `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`],
    [
      'a route with a deeply nested field',
      JSON.stringify(route()).replace(/}$/, `,"x":${'['.repeat(100)}${']'.repeat(100)}}`),
    ],
  ])('POST /api/v1/routes with %s: 400 naming the body', async (_label, text) => {
    await expectRefused('body', raw('POST', '/api/v1/routes', text));
  });

  it('POST …/config/plan with a 400 KB nested array: 400 naming the body', async () => {
    await expectRefused(
      'body',
      raw('POST', `/api/v1/tenants/${tenantId}/config/plan`, `${'['.repeat(200_000)}${']'.repeat(200_000)}`),
    );
  });
});

describe('reserved names in route policy maps', () => {
  it.each([
    ['request_headers.set.__proto__', '"request_headers":{"set":{"__proto__":"x"}}'],
    ['request_headers.add.constructor', '"request_headers":{"add":{"constructor":"x"}}'],
    ['response_headers.set.prototype', '"response_headers":{"set":{"prototype":"x"}}'],
    ['query.set.__proto__', '"query":{"set":{"__proto__":"x"}}'],
    // Gateways lower-case header names: this one was accepted (201) and never sent.
    ['request_headers.set.__Proto__', '"request_headers":{"set":{"__Proto__":"x"}}'],
    ['response_headers.add.__PROTO__', '"response_headers":{"add":{"__PROTO__":"x"}}'],
  ])('POST /api/v1/routes: 400 naming %s', async (field, fragment) => {
    await expectRefused(
      field,
      raw('POST', '/api/v1/routes', JSON.stringify(route()).replace(/}$/, `,${fragment}}`)),
    );
  });

  it('fixed_response.headers.__proto__: 400 naming it', async () => {
    const text = JSON.stringify(route({ origin_id: null })).replace(
      /}$/,
      ',"fixed_response":{"status":200,"headers":{"__proto__":"v"}}}',
    );
    await expectRefused('fixed_response.headers.__proto__', raw('POST', '/api/v1/routes', text));
  });

  it('fixed_response.headers.__Proto__: 400 naming it', async () => {
    const text = JSON.stringify(route({ origin_id: null })).replace(
      /}$/,
      ',"fixed_response":{"status":200,"headers":{"__Proto__":"v"}}}',
    );
    await expectRefused('fixed_response.headers.__Proto__', raw('POST', '/api/v1/routes', text));
  });

  it('PATCH /api/v1/routes/:id: 400 naming it', async () => {
    await expectRefused(
      'request_headers.set.__proto__',
      raw('PATCH', `/api/v1/routes/${routeId}`, '{"request_headers":{"set":{"__proto__":"x"}}}'),
    );
  });
});

describe('bodies that do not decompress as their Content-Encoding says', () => {
  const compressed = (method: string, path: string, encoding: string) => () =>
    cp.request(method, path, {
      rawBody: '{"name":"not compressed","subdomain":"plain"}',
      headers: { 'content-type': 'application/json', 'content-encoding': encoding },
    });

  it.each(['gzip', 'deflate', 'br'])(
    'POST /api/v1/tenants as %s: 400 naming content-encoding',
    async (encoding) => {
      await expectRefused('content-encoding', compressed('POST', '/api/v1/tenants', encoding));
    },
  );

  it('a tenant document for config/plan: 400 naming content-encoding', async () => {
    await expectRefused(
      'content-encoding',
      compressed('POST', `/api/v1/tenants/${tenantId}/config/plan`, 'gzip'),
    );
  });
});

describe('ids in the path that are not percent-encoded UTF-8', () => {
  it.each([
    ['PATCH', '/api/v1/tenants/%E0%A4%A'],
    ['DELETE', '/api/v1/origins/%C0'],
    ['POST', '/api/v1/tenants/%FF/config/plan'],
  ])('%s %s: 400 naming the path', async (method, path) => {
    await expectRefused('path', raw(method, path, '{}'));
  });
});

describe('reserved names in a service key (a JWK takes members beyond those it names)', () => {
  const publicJwk = () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return { ...publicKey.export({ format: 'jwk' }), kid: `k${n++}` };
  };
  const settingsWithMember = (member: string) =>
    JSON.stringify({ settings: { service_accounts: [{ id: 'svc', keys: [publicJwk()] }] } }).replace(
      /"kid"/,
      `"${member}":{"kid":"other"},"kid"`,
    );

  it.each(['__proto__', 'constructor', 'prototype'])(
    'PATCH /api/v1/tenants/:id with a key member %s: 400 naming it',
    async (member) => {
      await expectRefused(
        `settings.service_accounts.0.keys.0.${member}`,
        raw('PATCH', `/api/v1/tenants/${tenantId}`, settingsWithMember(member)),
      );
    },
  );

  it('a config document whose tenant settings carry one: 400 naming it', async () => {
    const document = `{"tenant":{"name":"In","subdomain":"input",${settingsWithMember('__proto__').slice(1, -1)}}}`;
    await expectRefused(
      'tenant.settings.service_accounts.0.keys.0.__proto__',
      raw('POST', `/api/v1/tenants/${tenantId}/config/plan`, document),
    );
  });
});

describe('path patterns the gateway would skip or serve elsewhere', () => {
  const patterns = ['/api/%zz', '/api/%', '/api/%00', '/api/%5C', '/x/../admin/*', '/a/./b', '/api/%2e%2e/x'];

  it.each(patterns)('POST /api/v1/routes with %s: 400 naming path_pattern', async (pattern) => {
    await expectRefused('path_pattern', () =>
      cp.request('POST', '/api/v1/routes', { body: route({ path_pattern: pattern }) }),
    );
  });

  it.each(patterns)('PATCH /api/v1/routes/:id to %s: 400 naming path_pattern', async (pattern) => {
    await expectRefused('path_pattern', () =>
      cp.request('PATCH', `/api/v1/routes/${routeId}`, { body: { path_pattern: pattern } }),
    );
  });

  it('a config document applying /x/../admin/*: 400 naming routes.0.path_pattern', async () => {
    await expectRefused('routes.0.path_pattern', () =>
      cp.request('POST', `/api/v1/tenants/${tenantId}/config/apply`, {
        body: {
          tenant: { name: 'In', subdomain: 'input' },
          origins: [{ name: 'o', url: 'http://127.0.0.1:9' }],
          routes: [{ origin: 'o', path_pattern: '/x/../admin/*', auth_mode: 'public' }],
        },
      }),
    );
  });

  it('still creates a route with a pattern the gateway keeps as written', async () => {
    const response = await cp.request('POST', '/api/v1/routes', {
      body: route({ path_pattern: '/caf%C3%A9/.well-known/:id/*' }),
    });
    expect(response.status).toBe(201);
    expect(json(response)['path_pattern']).toBe('/caf%C3%A9/.well-known/:id/*');
  });

  it('creates a route with an escape in lower case, as it always did (the gateway reads it alike)', async () => {
    const response = await cp.request('POST', '/api/v1/routes', {
      body: route({ path_pattern: '/caf%c3%a9/*' }),
    });
    expect(response.status).toBe(201);
  });
});

/**
 * Regression: an API key's expires_at of year 0000 (or one whose offset moves it past 9999) was stored
 * as a year PostgreSQL refuses, and the read-model projector stopped on it for every tenant.
 */
describe('an API key expiry outside the years 1970–9999', () => {
  it.each([
    '0000-01-01T00:00:00Z',
    '0000-01-01T00:00:00+01:00',
    '9999-12-31T23:59:59-14:00',
    '1969-12-31T23:59:59Z',
  ])('POST /api/v1/api-keys with expires_at %s: 400 naming expires_at', async (expiresAt) => {
    await expectRefused('expires_at', () =>
      cp.request('POST', '/api/v1/api-keys', {
        body: { tenant_id: tenantId, name: 'k', expires_at: expiresAt },
      }),
    );
  });

  it('still takes a past expiry within them (the key is born expired)', async () => {
    const response = await cp.request('POST', '/api/v1/api-keys', {
      body: { tenant_id: tenantId, name: 'k', expires_at: '2020-01-01T00:00:00Z' },
    });
    expect(response.status).toBe(201);
  });
});

/**
 * Regression: a health check path the probe does not send as written was recorded. Gateways probe
 * `<target URL><health_check_path>` as a URL, which resolves dot segments (`/../admin` probed `/admin`,
 * outside the target's base path), turns `\` into `/` and percent-encodes spaces, controls and Unicode;
 * and a control character (ESC) reached the terminals that show the origin.
 */
describe('health check paths the probe would not send as written', () => {
  const paths = [
    '/../admin',
    '/status/..',
    '/a/./b',
    '/%2e%2E/admin',
    '/a\\b',
    '/a\u0001b',
    '/\u001b[2J',
    '/é',
    '/%zz',
  ];

  it.each(paths)('POST /api/v1/origins with %j: 400 naming health_check_path', async (path) => {
    await expectRefused('health_check_path', () =>
      cp.request('POST', '/api/v1/origins', {
        body: { tenant_id: tenantId, name: 'h', url: 'http://127.0.0.1:9/base', health_check_path: path },
      }),
    );
  });

  it.each(paths)('PATCH /api/v1/origins/:id to %j: 400 naming health_check_path', async (path) => {
    await expectRefused('health_check_path', () =>
      cp.request('PATCH', `/api/v1/origins/${originId}`, { body: { health_check_path: path } }),
    );
  });

  it('a config document with /../admin: 400 naming origins.0.health_check_path', async () => {
    await expectRefused('origins.0.health_check_path', () =>
      cp.request('POST', `/api/v1/tenants/${tenantId}/config/apply`, {
        body: {
          tenant: { name: 'In', subdomain: 'input' },
          origins: [{ name: 'o', url: 'http://127.0.0.1:9', health_check_path: '/../admin' }],
        },
      }),
    );
  });

  it('still takes a path the probe sends as written (escapes, dots inside a segment, sub-delims)', async () => {
    const response = await cp.request('POST', '/api/v1/origins', {
      body: {
        tenant_id: tenantId,
        name: 'h',
        url: 'http://127.0.0.1:9/base',
        health_check_path: "/caf%C3%A9/.well-known/v1.2/health;probe=1/~ok!$&'()*+,=:@",
      },
    });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
  });
});

/**
 * Regression: a header condition (or a traffic split's header override) on a value no request header
 * can carry as gateways read it was recorded, and its route or override silently never applied.
 * Gateways read a header line's bytes as Latin-1 with the spaces and tabs around it trimmed, and no
 * request carries a control character but a tab: `exact: "gold "`, `"€"` or `"a\nb"` is never met.
 */
describe('header values a gateway never reads from a request', () => {
  const cases: Array<[string, Record<string, string>]> = [
    ['exact with a trailing space', { exact: 'gold ' }],
    ['exact with a leading tab', { exact: '\tgold' }],
    ['exact with CR LF', { exact: 'a\r\nb' }],
    ['exact with ESC', { exact: '\u001b[2J' }],
    ['exact beyond Latin-1', { exact: '€uro' }],
    ['exact with NUL', { exact: 'a\u0000b' }],
    ['prefix with a leading space', { prefix: ' gold' }],
    ['prefix with DEL', { prefix: 'a\u007f' }],
  ];

  it.each(cases)('POST /api/v1/routes with a header condition %s: 400 naming it', async (_case, value) => {
    const [kind] = Object.keys(value);
    await expectRefused(`match.headers.0.${kind}`, () =>
      cp.request('POST', '/api/v1/routes', {
        body: route({ match: { headers: [{ name: 'x-tier', ...value }] } }),
      }),
    );
  });

  it('PATCH /api/v1/routes/:id with exact "gold ": 400 naming it', async () => {
    await expectRefused('match.headers.0.exact', () =>
      cp.request('PATCH', `/api/v1/routes/${routeId}`, {
        body: { match: { headers: [{ name: 'x-tier', exact: 'gold ' }] } },
      }),
    );
  });

  it('a traffic split header override on "beta ": 400 naming its value', async () => {
    const other = json(
      await cp.request('POST', '/api/v1/origins', {
        body: { tenant_id: tenantId, name: 'canary', url: 'http://127.0.0.1:10' },
      }),
    )['id'] as string;
    await expectRefused('traffic_split.overrides.0.value', () =>
      cp.request('POST', '/api/v1/routes', {
        body: route({
          traffic_split: {
            origins: [
              { origin_id: originId, weight: 1 },
              { origin_id: other, weight: 1 },
            ],
            overrides: [{ header: 'x-canary', value: 'beta ', origin_id: other }],
          },
        }),
      }),
    );
  });

  // A cookie's value ends at `;` and is read without the whitespace around it: an override on any other
  // value was stored and never met.
  it.each([
    ['with a semicolon', 'beta; tier=gold'],
    ['with a trailing space', 'beta '],
    ['with a leading tab', '\tbeta'],
    ['with CR LF', 'a\r\nb'],
    ['beyond Latin-1', '€uro'],
  ])('a traffic split cookie override %s: 400 naming its value', async (_case, value) => {
    const other = json(
      await cp.request('POST', '/api/v1/origins', {
        body: { tenant_id: tenantId, name: `canary-${randomUUID()}`, url: 'http://127.0.0.1:10' },
      }),
    )['id'] as string;
    await expectRefused('traffic_split.overrides.0.value', () =>
      cp.request('POST', '/api/v1/routes', {
        body: route({
          traffic_split: {
            origins: [
              { origin_id: originId, weight: 1 },
              { origin_id: other, weight: 1 },
            ],
            overrides: [{ cookie: 'canary', value, origin_id: other }],
          },
        }),
      }),
    );
  });

  it('still takes values a header carries: inner spaces and tabs, Latin-1, a prefix ending in a space, empty', async () => {
    const response = await cp.request('POST', '/api/v1/routes', {
      body: route({
        match: {
          headers: [
            { name: 'x-a', exact: 'gold\tplus tier' },
            { name: 'x-b', exact: 'caf\u00e9' },
            { name: 'x-c', prefix: 'Bearer ' },
            { name: 'x-d', exact: '' },
            // `Москва` sent as UTF-8, as gateways read its bytes (0x9C and 0x81 among them)
            { name: 'x-city', exact: Buffer.from('Москва', 'utf8').toString('latin1') },
          ],
          query: [{ name: 'q', exact: ' spaced €\n' }],
        },
      }),
    });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
  });
});

/**
 * Regression: a cache policy naming a header or cookie no message can carry (`"Accept-Language "`,
 * `"x\ny"`, `"session;id"`) was recorded: the key silently did not vary on it, the bypass never applied
 * and purges by that tag header found nothing, as if the name were left out.
 */
describe('cache policy names no request or response carries', () => {
  it.each([
    ['vary_headers.0', { cache_key_pattern: 'path+query+headers', vary_headers: ['Accept-Language '] }],
    ['bypass.headers.0', { bypass: { headers: ['x\ny'] } }],
    ['bypass.cookies.0', { bypass: { cookies: ['session;id'] } }],
    ['tag_headers.1', { tag_headers: ['surrogate-key', 'cache tag'] }],
  ])('POST /api/v1/routes with cache_policy.%s not a field name: 400 naming it', async (field, policy) => {
    await expectRefused(`cache_policy.${field}`, () =>
      cp.request('POST', '/api/v1/routes', { body: route({ cache_policy: policy }) }),
    );
  });

  it('still takes field names in any case', async () => {
    const response = await cp.request('POST', '/api/v1/routes', {
      body: route({
        cache_policy: {
          cache_key_pattern: 'path+query+headers',
          vary_headers: ['Accept-Language'],
          bypass: { headers: ['X-No-Cache'], cookies: ['session_id'], query_params: ['no cache'] },
          tag_headers: ['Cache-Tag'],
        },
      }),
    });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
  });
});
