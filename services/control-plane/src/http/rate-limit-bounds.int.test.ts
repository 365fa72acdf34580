import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * Rate limits through the admin API: every replica runs a tenant's limit against the one shared
 * Redis, so its numbers are bounded (requests_per_second at least 0.001, a sliding window of at most
 * 10,000,000 requests whether set as `limit` or implied by requests_per_second × window_seconds, a token
 * bucket refilled within 30 days). Outside the bounds, a route's or the tenant's `rate_limit` is a 400
 * naming the field, and nothing is appended.
 */
let cp: ControlPlaneHarness;
let tenantId = '';
let originId = '';
let routeId = '';

beforeAll(async () => {
  cp = await startControlPlane({ withReadSide: true });
  const tenant = await cp.request('POST', '/api/v1/tenants', { body: { name: 'Limits', subdomain: 'rlb' } });
  tenantId = json(tenant)['id'] as string;
  const origin = await cp.request('POST', '/api/v1/origins', {
    body: { tenant_id: tenantId, name: 'o', url: 'http://127.0.0.1:9' },
  });
  originId = json(origin)['id'] as string;
  const route = await cp.request('POST', '/api/v1/routes', {
    body: { tenant_id: tenantId, origin_id: originId, path_pattern: '/patched/*', auth_mode: 'public' },
  });
  routeId = json(route)['id'] as string;
});
afterAll(async () => {
  await cp?.close();
});

const eventCount = async () => (await cp.allEvents()).length;
let paths = 0;
const createRoute = (rateLimit: unknown) =>
  cp.request('POST', '/api/v1/routes', {
    body: {
      tenant_id: tenantId,
      origin_id: originId,
      path_pattern: `/r${++paths}/*`,
      auth_mode: 'public',
      rate_limit: rateLimit,
    },
  });

const sliding = { algorithm: 'sliding_window', accuracy: 'fast' } as const;

/** [what, rate_limit, the field the 400 names (under rate_limit)] */
const OUT_OF_BOUNDS: Array<[string, Record<string, unknown>, string]> = [
  [
    'a sliding-window limit of 2^53-1',
    { ...sliding, requests_per_second: 1, window_seconds: 1, limit: Number.MAX_SAFE_INTEGER },
    'limit',
  ],
  [
    'a sliding-window limit of 10,000,001',
    { ...sliding, requests_per_second: 1, window_seconds: 1, limit: 10_000_001 },
    'limit',
  ],
  [
    'a sliding window whose rate × window is 1,000,000 × 60',
    { ...sliding, requests_per_second: 1_000_000, window_seconds: 60 },
    'requests_per_second',
  ],
  ['requests_per_second 1e-14', { requests_per_second: 1e-14, burst: 10_000_000 }, 'requests_per_second'],
  ['requests_per_second 1e-300', { requests_per_second: 1e-300 }, 'requests_per_second'],
  ['requests_per_second 5e-324', { requests_per_second: 5e-324 }, 'requests_per_second'],
  ['requests_per_second 0.0009', { requests_per_second: 0.0009 }, 'requests_per_second'],
  ['requests_per_second above 1,000,000', { requests_per_second: 1_000_001 }, 'requests_per_second'],
  [
    'a token bucket that takes longer than 30 days to refill',
    { requests_per_second: 0.001, burst: 10_000 },
    'burst',
  ],
  ['a burst above 10,000,000', { requests_per_second: 1_000_000, burst: 10_000_001 }, 'burst'],
  [
    'a window longer than a day',
    { ...sliding, requests_per_second: 1, window_seconds: 86_401 },
    'window_seconds',
  ],
  ['an IPv6 prefix wider than /32', { requests_per_second: 1, scope: 'ip', ipv6_prefix: 31 }, 'ipv6_prefix'],
  [
    'an IPv6 prefix longer than 128',
    { requests_per_second: 1, scope: 'ip', ipv6_prefix: 129 },
    'ipv6_prefix',
  ],
  ['an IPv6 prefix of 56.5', { requests_per_second: 1, scope: 'ip', ipv6_prefix: 56.5 }, 'ipv6_prefix'],
];

/**
 * Fields of the other algorithm: they were stored and ignored, so `{ requests_per_second: 100,
 * window_seconds: 60, limit: 1000 }` (no algorithm: a token bucket) admitted 100 per second, six times
 * the 1,000 per minute its admin meant. [what, rate_limit, the field the 400 names]
 */
const OTHER_ALGORITHM: Array<[string, Record<string, unknown>, string]> = [
  [
    'a window limit on a token bucket',
    { requests_per_second: 100, window_seconds: 60, limit: 1_000 },
    'limit',
  ],
  [
    'a window length on a token bucket',
    { algorithm: 'token_bucket', requests_per_second: 100, window_seconds: 60 },
    'window_seconds',
  ],
  ['a burst on a sliding window', { ...sliding, requests_per_second: 1, burst: 500 }, 'burst'],
];

/** An IPv6 prefix on a limit that counts no caller by address: it would be stored and never read. */
const NOT_PER_CALLER: Array<[string, Record<string, unknown>, string]> = [
  ['an IPv6 prefix on a route-wide limit', { requests_per_second: 1, ipv6_prefix: 48 }, 'ipv6_prefix'],
];
const REFUSED = [...OUT_OF_BOUNDS, ...OTHER_ALGORITHM, ...NOT_PER_CALLER];

describe('rate limit bounds', () => {
  it('accepts limits at the bounds', async () => {
    for (const rateLimit of [
      { ...sliding, requests_per_second: 1, window_seconds: 86_400, limit: 10_000_000 },
      { ...sliding, requests_per_second: 1_000_000, window_seconds: 10 },
      { ...sliding, requests_per_second: 0.001, window_seconds: 86_400, limit: 1 },
      { requests_per_second: 0.001 },
      { requests_per_second: 0.001, burst: 2592 },
      { requests_per_second: 1_000_000, burst: 10_000_000, accuracy: 'fast' },
      { requests_per_second: 1, scope: 'ip', ipv6_prefix: 32 },
      { requests_per_second: 1, scope: 'api_key', ipv6_prefix: 128 },
    ]) {
      const created = await createRoute(rateLimit);
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      expect(json(created)['rate_limit']).toMatchObject(rateLimit);
    }
  });

  it.each(REFUSED)(
    'refuses %s on a new route with a 400 naming the field',
    async (_what, rateLimit, field) => {
      const before = await eventCount();
      const response = await createRoute(rateLimit);
      expect(response.status, JSON.stringify(response.body)).toBe(400);
      const error = json(response)['error'] as { code: string; details: Array<{ field: string }> };
      expect(error.code).toBe('validation_failed');
      expect(error.details.map((detail) => detail.field)).toContain(`rate_limit.${field}`);
      expect(await eventCount()).toBe(before);
    },
  );

  it.each(REFUSED)('refuses %s on a route update', async (_what, rateLimit, field) => {
    const before = await eventCount();
    const response = await cp.request('PATCH', `/api/v1/routes/${routeId}`, {
      body: { rate_limit: rateLimit },
    });
    expect(response.status, JSON.stringify(response.body)).toBe(400);
    const error = json(response)['error'] as { code: string; details: Array<{ field: string }> };
    expect(error.code).toBe('validation_failed');
    expect(error.details.map((detail) => detail.field)).toContain(`rate_limit.${field}`);
    expect(await eventCount()).toBe(before);
  });

  it.each(REFUSED)('refuses %s as the tenant-wide limit', async (_what, rateLimit, field) => {
    const before = await eventCount();
    const patched = await cp.request('PATCH', `/api/v1/tenants/${tenantId}`, {
      body: { settings: { rate_limit: { ...rateLimit, scope: 'tenant' } } },
    });
    expect(patched.status, JSON.stringify(patched.body)).toBe(400);
    const error = json(patched)['error'] as { code: string; details: Array<{ field: string }> };
    expect(error.code).toBe('validation_failed');
    expect(error.details.map((detail) => detail.field)).toContain(`settings.rate_limit.${field}`);
    const created = await cp.request('POST', '/api/v1/tenants', {
      body: { name: 'New', subdomain: `rlb-${paths++}`, settings: { rate_limit: rateLimit } },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(400);
    expect(JSON.stringify(created.body)).toContain(`settings.rate_limit.${field}`);
    expect(await eventCount()).toBe(before);
  });

  it('describes the bounds in the OpenAPI document', async () => {
    const doc = json(await cp.request('GET', '/openapi.json', { token: null }));
    const schemas = (
      doc['components'] as { schemas: Record<string, { properties: Record<string, unknown> }> }
    ).schemas;
    interface Bounds {
      minimum?: number;
      exclusiveMinimum?: number;
      maximum?: number;
    }
    for (const schema of ['CreateRoute', 'UpdateRoute']) {
      const rateLimit = JSON.stringify(schemas[schema]?.properties['rate_limit']);
      const policy = (
        JSON.parse(rateLimit) as { anyOf: Array<{ properties?: Record<string, Bounds> }> }
      ).anyOf.find((variant) => variant.properties)!.properties!;
      expect(policy['requests_per_second'], schema).toMatchObject({ minimum: 0.001, maximum: 1_000_000 });
      expect(policy['limit'], schema).toMatchObject({ minimum: 1, maximum: 10_000_000 });
      expect(policy['burst'], schema).toMatchObject({ minimum: 1, maximum: 10_000_000 });
      expect(policy['window_seconds'], schema).toMatchObject({ minimum: 1, maximum: 86_400 });
      expect(policy['ipv6_prefix'], schema).toMatchObject({ minimum: 32, maximum: 128 });
    }
  });
});
