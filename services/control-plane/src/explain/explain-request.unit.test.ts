// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} is the route policies' own value-template syntax
import { createHash, generateKeyPairSync, randomUUID } from 'node:crypto';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import {
  type RouteConfig,
  type TenantSnapshot,
  tenantSnapshot,
} from '@vantageedge/shared/domain/gateway-config';
import { variantDigest } from '@vantageedge/shared/gateway-policies/cache-key';
import { compileCachePolicy } from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import { compileRateLimits, limitKey } from '@vantageedge/shared/gateway-policies/compile-rate-limits';
import {
  createClerkTestKeys,
  OFFLINE_CLERK_ISSUER,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
import { rsa8192TestKeys } from '@vantageedge/shared/testing/test-certificates';
import { InMemoryQuotaStore, type QuotaStore } from '@vantageedge/shared/usage/quota-store';
import { requestQuotaWindows } from '@vantageedge/shared/usage/quota-windows';
import { exportJWK, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import type { QuotaCounters } from './explain-quota.js';
import { type ExplainContext, type ExplainInput, explainRequest } from './explain-request.js';

const PEPPER = 'unit-pepper-0123456789abcdef0123456789abcdef';
const NOW = new Date('2026-11-30T12:00:00Z');
const TENANT = randomUUID();
const ORIGIN = randomUUID();
const USERS_ROUTE = randomUUID();
const ADMIN_ROUTE = randomUUID();
const CATCH_ALL = randomUUID();
const SERVICE_ROUTE = randomUUID();
const ACTIVE_KEY = 've_live_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const REVOKED_KEY = 've_live_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB';
const ACTIVE_KEY_ID = randomUUID();
const REVOKED_KEY_ID = randomUUID();

const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });

async function snapshot(overrides: Partial<Record<string, unknown>> = {}): Promise<TenantSnapshot> {
  const jwk = { ...(await exportJWK(publicKey)), kid: 'billing-1', alg: 'ES256' };
  return tenantSnapshot.parse({
    schema_version: 1,
    tenant_id: TENANT,
    version: '42',
    event_time: NOW.toISOString(),
    tenant: {
      id: TENANT,
      name: 'Acme',
      subdomain: 'acme',
      clerk_org_id: null,
      settings: {
        rate_limit: { requests_per_second: 100, burst: 200, scope: 'tenant' },
        service_accounts: [{ id: 'billing', keys: [jwk], scopes: ['invoices:write'] }],
      },
    },
    custom_domains: [{ domain: 'api.acme.test', verified_position: '7' }],
    origins: [
      {
        id: ORIGIN,
        name: 'users-service',
        targets: [{ url: 'http://10.0.0.1:8080', weight: 2 }, { url: 'http://10.0.0.2:8080' }],
        load_balancing: { algorithm: 'least_connections' },
      },
    ],
    routes: [
      {
        id: USERS_ROUTE,
        origin_id: ORIGIN,
        path_pattern: '/api/users/:id',
        methods: ['GET'],
        auth_mode: 'apikey_required',
        required_scopes: ['users:read'],
        strip_prefix: '/api',
        rate_limit: { requests_per_second: 5, burst: 10, scope: 'api_key' },
        cache_policy: {
          ttl_seconds: 30,
          cache_key_pattern: 'path+query',
          bypass: { headers: ['x-debug'], cookies: ['wordpress_logged_in'] },
        },
      },
      { id: ADMIN_ROUTE, origin_id: randomUUID(), path_pattern: '/admin/*', auth_mode: 'public' },
      { id: CATCH_ALL, origin_id: ORIGIN, path_pattern: '/api/*', methods: ['POST'], auth_mode: 'public' },
      { id: SERVICE_ROUTE, origin_id: ORIGIN, path_pattern: '/internal/*', auth_mode: 'service' },
    ],
    api_keys: [
      {
        id: ACTIVE_KEY_ID,
        key_hash: hashApiKey(PEPPER, ACTIVE_KEY),
        name: 'mobile app',
        scopes: ['users:read'],
        expires_at: null,
      },
    ],
    ...overrides,
  });
}

/** The tenant's keys as the read models hold them: the revoked one too. */
const formerKeys = new Map([
  [hashApiKey(PEPPER, ACTIVE_KEY), { api_key_id: ACTIVE_KEY_ID, name: 'mobile app' }],
  [hashApiKey(PEPPER, REVOKED_KEY), { api_key_id: REVOKED_KEY_ID, name: 'old laptop' }],
]);

async function explain(input: Partial<ExplainInput>, snap?: TenantSnapshot, quotaCounters?: QuotaCounters) {
  const s = snap ?? (await snapshot());
  const context: ExplainContext = {
    quotaCounters,
    snapshot: s,
    formerKeys: (keyHash) => Promise.resolve({ key: formerKeys.get(keyHash) }),
    apiKeyPepper: PEPPER,
    baseDomains: ['vantageedge.dev'],
    encodedSlashes: 'reject',
    maxServiceTokenSeconds: 300,
    now: NOW,
  };
  return explainRequest(
    s,
    { method: 'GET', host: 'acme.vantageedge.dev', path: '/', query: '', headers: {}, ...input },
    context,
  );
}

/**
 * The tenant's snapshot at Clerk organization `org_acme`, whose one route is its users route with any
 * method, no required scope, and `route`'s settings.
 */
async function clerkOrgSnapshot(route: Partial<TenantSnapshot['routes'][number]>): Promise<TenantSnapshot> {
  const base = await snapshot();
  return {
    ...base,
    tenant: { ...base.tenant, clerk_org_id: 'org_acme' },
    routes: [{ ...base.routes[0]!, methods: [], required_scopes: [], ...route }],
  };
}

/** A Clerk session token of `user_1` with `claims`, valid for a minute: explain leaves its signature to the gateways. */
function clerkSessionToken(claims: Record<string, unknown>): Promise<string> {
  return new SignJWT({ sid: 'sess_1', ...claims })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('user_1')
    .setExpirationTime(Math.floor(NOW.getTime() / 1000) + 60)
    .sign(new TextEncoder().encode('not-the-clerk-key-0123456789abcdef'));
}

/** The tenant's snapshot with a second origin, `second`, for the routes' traffic splits to choose. */
function withSecondOrigin(second: string, routes: unknown[]): Promise<TenantSnapshot> {
  return snapshot({
    origins: [
      { id: ORIGIN, name: 'users-service', targets: [{ url: 'http://10.0.0.1:8080' }] },
      { id: second, name: 'office-service', targets: [{ url: 'http://10.0.0.2:8080' }] },
    ],
    routes,
  });
}

/** A split that weighs nothing to `second`, sticky on `sticky`, and overrides to `second` on `header: value`. */
function splitToSecond(second: string, sticky: string, header: string, value: string) {
  return {
    origins: [
      { origin_id: ORIGIN, weight: 1 },
      { origin_id: second, weight: 0 },
    ],
    sticky: { header: sticky },
    overrides: [{ header, value, origin_id: second }],
  };
}

describe('explaining a request', () => {
  it('names the matching route, why every other route does not match, and the origin it goes to', async () => {
    const answer = await explain({ path: '/api/users/1', headers: { 'x-api-key': ACTIVE_KEY } });
    expect(answer.host).toMatchObject({ resolves: true, kind: 'subdomain' });
    expect(answer.route?.id).toBe(USERS_ROUTE);
    const byId = new Map(answer.routes.map((route) => [route.id, route]));
    expect(byId.get(ADMIN_ROUTE)?.reason).toBe('path /api/users/1 does not match /admin/*');
    expect(byId.get(CATCH_ALL)?.reason).toBe('method GET is not accepted (POST)');
    expect(byId.get(SERVICE_ROUTE)?.selected).toBe(false);
    expect(answer.upstream).toMatchObject({
      origin_name: 'users-service',
      targets: [
        { url: 'http://10.0.0.1:8080', weight: 2 },
        { url: 'http://10.0.0.2:8080', weight: 1 },
      ],
      load_balancing: { algorithm: 'least_connections' },
      strip_prefix: '/api',
      host_header: null,
      forwarded_path: '/users/1',
    });
    expect(answer.decision).toMatchObject({ stage: 'origin', status: null });
  });

  it('forwards the query without a method override, as the gateways do', async () => {
    const answer = await explain({
      path: '/api/users/1',
      query: 'page=2&_method=DELETE;.method=PUT',
      headers: { 'x-api-key': ACTIVE_KEY },
    });
    expect(answer.request.query).toBe('page=2&_method=DELETE;.method=PUT');
    expect(answer.upstream?.forwarded_path).toBe('/users/1?page=2');
  });

  it('names the Host a route with preserve_host sends: the host the tenant was resolved from', async () => {
    const preserving = await snapshot({
      routes: [
        { id: CATCH_ALL, origin_id: ORIGIN, path_pattern: '/*', auth_mode: 'public', preserve_host: true },
      ],
    });
    const cases: Array<[host: string, sent: string]> = [
      ['ACME.vantageedge.dev.:8443', 'acme.vantageedge.dev:8443'],
      ['api.acme.test', 'api.acme.test'],
      ['Api.Acme.Test.:0', 'api.acme.test'],
    ];
    for (const [host, sent] of cases) {
      const answer = await explain({ host, path: '/a' }, preserving);
      expect(answer.decision, host).toMatchObject({ stage: 'origin', status: null });
      expect(answer.upstream?.host_header, host).toBe(sent);
    }
  });

  it('says a route that matches too comes later in match order', async () => {
    const answer = await explain({ method: 'POST', path: '/api/users/1' });
    expect(answer.route?.id).toBe(CATCH_ALL);
    expect(answer.routes.find((r) => r.id === USERS_ROUTE)?.reason).toBe('method POST is not accepted (GET)');
    const overlapping = await snapshot({
      routes: [
        { id: USERS_ROUTE, origin_id: ORIGIN, path_pattern: '/api/users/:id', auth_mode: 'public' },
        { id: CATCH_ALL, origin_id: ORIGIN, path_pattern: '/api/*', auth_mode: 'public' },
      ],
    });
    const both = await explain({ path: '/api/users/1' }, overlapping);
    expect(both.route?.id).toBe(USERS_ROUTE);
    expect(both.routes.find((r) => r.id === CATCH_ALL)?.reason).toMatch(/comes first in match order/);
  });

  // Regression: a route stored before commands refused it, with a condition on a header the gateway writes
  // for the origin, was explained as the client's copy decided it; the gateways never meet such a condition.
  it('says a stored condition on a header the gateway writes is never met, as on the gateways', async () => {
    const stored = await snapshot({
      routes: [
        {
          id: USERS_ROUTE,
          origin_id: ORIGIN,
          path_pattern: '/api/*',
          priority: 10,
          auth_mode: 'public',
          match: { headers: [{ name: 'x_real_ip', prefix: '10.' }] },
        },
        { id: CATCH_ALL, origin_id: ORIGIN, path_pattern: '/api/*', auth_mode: 'public' },
      ],
    });
    const answer = await explain({ path: '/api/a', headers: { 'x-real-ip': '10.1.2.3' } }, stored);
    expect(answer.route?.id).toBe(CATCH_ALL);
    expect(answer.routes.find((r) => r.id === USERS_ROUTE)?.reason).toMatch(
      /condition on x_real_ip is never met: x_real_ip is written by the gateway for the origin/,
    );
  });

  // Regression: explain let a client's own CF-Connecting-IP choose the route and True-Client-IP the split
  // origin, while gateways drop both from a client that is no trusted proxy.
  it('reads a header kept only from a trusted proxy as a client through none sends it: not at all', async () => {
    const SECOND = randomUUID();
    const proxied = await withSecondOrigin(SECOND, [
      {
        id: USERS_ROUTE,
        origin_id: ORIGIN,
        path_pattern: '/api/*',
        priority: 10,
        auth_mode: 'public',
        match: { headers: [{ name: 'CF-Connecting-IP', prefix: '10.' }] },
      },
      {
        id: CATCH_ALL,
        origin_id: ORIGIN,
        path_pattern: '/api/*',
        auth_mode: 'public',
        traffic_split: splitToSecond(SECOND, 'x-forwarded-ssl', 'True-Client-IP', '10.0.0.1'),
      },
    ]);
    const headers = { 'cf-connecting-ip': '10.1.2.3', 'true-client-ip': '10.0.0.1', 'x-forwarded-ssl': 'on' };
    const answer = await explain({ path: '/api/a', headers }, proxied);
    expect(answer.route?.id).toBe(CATCH_ALL);
    expect(answer.policies?.traffic_split?.chosen_by).toMatch(
      /^weights: x-forwarded-ssl is read only on a trusted proxy’s request/,
    );
  });

  // Regression: a split keyed on Host read only a Host given among the headers, while gateways read the
  // host the request is for (an HTTP/2 client's :authority too).
  it('reads a split key on Host as the host the request is for', async () => {
    const SECOND = randomUUID();
    const byHost = await withSecondOrigin(SECOND, [
      {
        id: USERS_ROUTE,
        origin_id: ORIGIN,
        path_pattern: '/api/*',
        auth_mode: 'public',
        traffic_split: splitToSecond(SECOND, 'x-user', 'Host', 'acme.vantageedge.dev'),
      },
    ]);
    const answer = await explain({ path: '/api/a' }, byHost);
    expect(answer.policies?.traffic_split?.chosen_by).toBe(
      `an override: host = acme.vantageedge.dev → origin ${SECOND}`,
    );
  });

  // Regression: a split key the route's own request_headers write (which the origin gets from every
  // client, and the gateway's split reads) was explained as never read from a client through no proxy.
  it('reads a split key on such a header the route’s transform writes, as the gateway does', async () => {
    const SECOND = randomUUID();
    const stamped = await withSecondOrigin(SECOND, [
      {
        id: USERS_ROUTE,
        origin_id: ORIGIN,
        path_pattern: '/sticky/*',
        auth_mode: 'public',
        request_headers: { set: { 'True-Client-IP': '${client_ip}' } },
        traffic_split: splitToSecond(SECOND, 'true-client-ip', 'x-forwarded-ssl', 'on'),
      },
      {
        id: CATCH_ALL,
        origin_id: ORIGIN,
        path_pattern: '/secure/*',
        auth_mode: 'public',
        // An added line replaces the client's: the gateway drops a client's X-Forwarded-Ssl first.
        request_headers: { add: { 'X-Forwarded-Ssl': 'on' } },
        traffic_split: splitToSecond(SECOND, 'cf-connecting-ip', 'X_Forwarded_Ssl', 'on'),
      },
    ]);
    const sticky = await explain({ path: '/sticky/a', clientIp: '192.0.2.7' }, stamped);
    expect(sticky.policies?.traffic_split?.chosen_by).toMatch(/^weights, sticky on true-client-ip/);
    const secure = await explain({ path: '/secure/a', headers: { 'x-forwarded-ssl': 'off' } }, stamped);
    expect(secure.policies?.traffic_split?.chosen_by).toBe(
      `an override: x_forwarded_ssl as the route's request_headers write it → origin ${SECOND}`,
    );
  });

  it('answers 404 route_not_found for a path no route matches, and for a method no route accepts', async () => {
    const none = await explain({ path: '/nothing/here' });
    expect(none.route).toBeNull();
    expect(none.decision).toMatchObject({ stage: 'route', status: 404, code: 'route_not_found' });
    const wrongMethod = await explain({ method: 'DELETE', path: '/api/users/1' });
    expect(wrongMethod.decision).toMatchObject({ status: 404, code: 'route_not_found' });
    expect(wrongMethod.routes.find((r) => r.id === USERS_ROUTE)).toMatchObject({
      method_matches: false,
      path_matches: true,
    });
  });

  it('normalises the path as the gateway does, and refuses what it refuses', async () => {
    const dotted = await explain({ path: '/admin/../api//users/1', headers: { 'x-api-key': ACTIVE_KEY } });
    expect(dotted.path.normalized).toBe('/api/users/1');
    expect(dotted.route?.id).toBe(USERS_ROUTE);
    const encodedSlash = await explain({ path: '/api/users%2F1' });
    expect(encodedSlash.decision).toMatchObject({ stage: 'path', status: 400, code: 'invalid_path' });
  });

  it('refuses a query of more pairs than origins read, as the gateways do', async () => {
    const crowded = await explain({ path: '/api/users/1', query: `${'&'.repeat(1000)}x=1` });
    expect(crowded.decision).toMatchObject({ stage: 'path', status: 400, code: 'invalid_query' });
    expect(crowded.decision?.message).toContain('more than 940 parameters');
  });

  it('resolves hosts as a gateway: the subdomain, a verified custom domain, not another tenant', async () => {
    expect((await explain({ host: 'API.acme.test.', path: '/admin/x' })).host).toMatchObject({
      resolves: true,
      kind: 'custom_domain',
      host: 'api.acme.test',
    });
    const other = await explain({ host: 'globex.vantageedge.dev:8443', path: '/admin/x' });
    expect(other.host).toMatchObject({ resolves: false, kind: 'subdomain' });
    expect(other.decision).toMatchObject({ stage: 'host', status: 404, code: 'tenant_not_found' });
    // The route is still explained, for the request as it would be on the right host.
    expect(other.route?.id).toBe(ADMIN_ROUTE);
    expect((await explain({ host: 'a.b.vantageedge.dev' })).host.resolves).toBe(false);
  });

  it('tells a valid key from a revoked and an unknown one by its keyed hash, and never returns it', async () => {
    const valid = await explain({ path: '/api/users/1', headers: { 'x-api-key': ACTIVE_KEY } });
    expect(valid.auth?.credential).toMatchObject({
      kind: 'api_key',
      status: 'valid',
      api_key_id: ACTIVE_KEY_ID,
    });
    expect(valid.auth?.outcome.ok).toBe(true);
    const revoked = await explain({
      path: '/api/users/1',
      headers: { authorization: `Bearer ${REVOKED_KEY}` },
    });
    expect(revoked.auth?.credential).toMatchObject({ status: 'revoked', api_key_id: REVOKED_KEY_ID });
    expect(revoked.decision).toMatchObject({ stage: 'auth', status: 401, code: 'invalid_api_key' });
    const unknown = await explain({ path: '/api/users/1', headers: { 'x-api-key': 've_live_nope' } });
    expect(unknown.auth?.credential).toEqual({ kind: 'api_key', status: 'unknown' });
    const missing = await explain({ path: '/api/users/1' });
    expect(missing.decision).toMatchObject({ status: 401, code: 'missing_credentials' });
    for (const answer of [valid, revoked, unknown]) {
      const text = JSON.stringify(answer);
      expect(text).not.toContain(ACTIVE_KEY);
      expect(text).not.toContain(REVOKED_KEY);
      expect(text).not.toContain(hashApiKey(PEPPER, ACTIVE_KEY));
    }
  });

  it('refuses a key without the route scope with 403 insufficient_scope', async () => {
    const base = await snapshot();
    const noScope = { ...base, api_keys: base.api_keys.map((key) => ({ ...key, scopes: [] })) };
    const answer = await explain({ path: '/api/users/1', headers: { 'x-api-key': ACTIVE_KEY } }, noScope);
    expect(answer.decision).toMatchObject({ stage: 'auth', status: 403, code: 'insufficient_scope' });
  });

  it('reports the limits and the counter each one charges, with the RateLimit-Policy the gateway sends', async () => {
    const answer = await explain({ path: '/api/users/1', headers: { 'x-api-key': ACTIVE_KEY } });
    expect(answer.rate_limits?.policy_header).toBe('"tenant";q=200;w=2, "route_api_key";q=10;w=2');
    expect(answer.rate_limits?.limits).toEqual([
      expect.objectContaining({
        name: 'tenant',
        capacity: 200,
        refill_per_second: 100,
        key: `rl:{${TENANT}}:t:tb:`,
      }),
      expect.objectContaining({
        name: 'route_api_key',
        scope: 'api_key',
        capacity: 10,
        key: `rl:{${TENANT}}:r:${USERS_ROUTE}:tb:key:${ACTIVE_KEY_ID}`,
      }),
    ]);
  });

  it('says whether the cache is looked up or bypassed, and the key it uses', async () => {
    const headers = { 'x-api-key': ACTIVE_KEY };
    const cached = await explain({ path: '/api/users/1', query: 'b=2&a=1', headers });
    expect(cached.cache).toMatchObject({
      enabled: true,
      decision: 'lookup',
      ttl_seconds: 30,
      key: { pattern: 'path+query', per_caller: true },
    });
    // Same key for the same query in another order (the gateway sorts it).
    const reordered = await explain({ path: '/api/users/1', query: 'a=1&b=2', headers });
    expect(reordered.cache?.key?.variant_digest).toBe(cached.cache?.key?.variant_digest);
    const bypassed = await explain({ path: '/api/users/1', headers: { ...headers, 'x-debug': '1' } });
    expect(bypassed.cache).toMatchObject({ decision: 'bypass', reason: 'bypass_header' });
    // A bypass cookie spelled as PHP origins read it (`.` for `_`) bypasses as the gateway does.
    const phpSpelled = await explain({
      path: '/api/users/1',
      headers: { ...headers, cookie: 'wordpress.logged_in=alice' },
    });
    expect(phpSpelled.cache).toMatchObject({ decision: 'bypass', reason: 'bypass_cookie' });
    const noCache = await explain({ path: '/admin/x' });
    expect(noCache.cache).toMatchObject({ enabled: false, decision: 'not_cached' });
  });

  // The gateway forwards a GET's body to the origin but cannot key it, so it bypasses the cache.
  it('says a GET that announces a body bypasses the cache, as the gateway does', async () => {
    const headers = { 'x-api-key': ACTIVE_KEY };
    const withLength = await explain({
      path: '/api/users/1',
      headers: { ...headers, 'content-length': '4' },
    });
    expect(withLength.cache).toMatchObject({ decision: 'bypass', reason: 'request_body' });
    const chunked = await explain({
      path: '/api/users/1',
      headers: { ...headers, 'transfer-encoding': 'chunked' },
    });
    expect(chunked.cache).toMatchObject({ decision: 'bypass', reason: 'request_body' });
    const empty = await explain({ path: '/api/users/1', headers: { ...headers, 'content-length': '0' } });
    expect(empty.cache).toMatchObject({ decision: 'lookup' });
  });

  // Regression (hostile/naive origin review): the gateway's key now carries the scheme and the host
  // as the origin is told it (spelled as given: an origin may reflect a port); the explanation
  // computes the same key.
  it('keys the cache on the scheme and the host as spelled, as the gateway does', async () => {
    const headers = { 'x-api-key': ACTIVE_KEY };
    const digest = async (input: Partial<ExplainInput>) =>
      (await explain({ path: '/api/users/1', headers, ...input })).cache?.key?.variant_digest;
    const https = await digest({});
    expect(await digest({ scheme: 'https' })).toBe(https);
    expect(await digest({ scheme: 'http' })).not.toBe(https);
    expect(await digest({ host: 'api.acme.test' })).not.toBe(https);
    expect(await digest({ host: 'acme.vantageedge.dev' })).toBe(https);
    expect(await digest({ host: 'ACME.vantageedge.dev.:8443' })).not.toBe(https);
    const snap = await snapshot();
    const route = snap.routes.find((candidate) => candidate.id === USERS_ROUTE)!;
    expect(https).toBe(
      variantDigest(
        compileCachePolicy(TENANT, route, snap.tenant)!,
        {
          method: 'GET',
          scheme: 'https',
          host: 'acme.vantageedge.dev',
          path: '/api/users/1',
          query: '',
          headers,
        },
        // The gateway's cache stage keys a per-caller entry on the caller's principal.
        { userId: `key:${ACTIVE_KEY_ID}` },
      ),
    );
  });

  it('answers 503 origin_unavailable for a route whose origin is not in the config', async () => {
    const answer = await explain({ path: '/admin/x' });
    expect(answer.upstream?.targets).toBeNull();
    expect(answer.decision).toMatchObject({ stage: 'origin', status: 503, code: 'origin_unavailable' });
  });

  it('verifies a service token against the tenant registered key, without the network', async () => {
    const token = (claims: Record<string, unknown>, audience = 'acme.vantageedge.dev') =>
      new SignJWT({ scope: 'invoices:write admin', ...claims })
        .setProtectedHeader({ alg: 'ES256', kid: 'billing-1' })
        .setSubject('billing')
        .setAudience(audience)
        .setIssuedAt(Math.floor(NOW.getTime() / 1000) - 10)
        .setExpirationTime(Math.floor(NOW.getTime() / 1000) + 60)
        .sign(privateKey);
    const good = await explain({
      path: '/internal/jobs',
      headers: { authorization: `Bearer ${await token({})}` },
    });
    expect(good.auth?.credential).toMatchObject({
      kind: 'jwt',
      verifier: 'service',
      signature_checked: true,
    });
    expect(good.auth?.identity).toEqual({ kind: 'service', service_id: 'billing' });
    expect(good.auth?.credential).toMatchObject({ scopes: ['invoices:write'] });
    expect(good.decision.status).toBeNull();
    const wrongAudience = await explain({
      path: '/internal/jobs',
      headers: { authorization: `Bearer ${await token({}, 'globex.vantageedge.dev')}` },
    });
    expect(wrongAudience.decision).toMatchObject({ stage: 'auth', status: 401, code: 'invalid_token' });
  });

  it.each([
    ['an RSA key over 4096 bits', 'RS256', () => rsa8192TestKeys()],
    ['a P-384 key', 'ES384', () => generateKeyPairSync('ec', { namedCurve: 'P-384' })],
    ['a P-521 key', 'ES512', () => generateKeyPairSync('ec', { namedCurve: 'P-521' })],
  ])(
    'regression: refuses a token signed with %s stored in a service account, as the gateway leaves that key out',
    async (_name, alg, keys) => {
      // Stored before the control plane refused such keys; verifying with it is what the bound prevents.
      const costly = keys();
      const jwk = {
        ...costly.publicKey.export({ format: 'jwk' }),
        kty: costly.publicKey.asymmetricKeyType === 'ec' ? ('EC' as const) : ('RSA' as const),
        kid: 'billing-costly',
        alg,
      };
      const base = await snapshot();
      const stored: TenantSnapshot = {
        ...base,
        tenant: {
          ...base.tenant,
          settings: {
            ...base.tenant.settings,
            service_accounts: [{ id: 'billing', keys: [jwk], scopes: [] }],
          },
        },
      };
      const token = await new SignJWT({})
        .setProtectedHeader({ alg, kid: 'billing-costly' })
        .setSubject('billing')
        .setAudience('acme.vantageedge.dev')
        .setIssuedAt(Math.floor(NOW.getTime() / 1000) - 10)
        .setExpirationTime(Math.floor(NOW.getTime() / 1000) + 60)
        .sign(costly.privateKey);
      const result = await explain(
        { path: '/internal/jobs', headers: { authorization: `Bearer ${token}` } },
        stored,
      );
      expect(result.decision).toMatchObject({ stage: 'auth', status: 401, code: 'invalid_token' });
    },
    60_000,
  );

  it('reads a Clerk token as the gateway does: the org decides, the signature is left to the gateways', async () => {
    const withOrg = await clerkOrgSnapshot({ path_pattern: '/me', auth_mode: 'jwt_or_apikey' });
    const token = (org: string) => clerkSessionToken({ v: 2, o: { id: org } });
    const member = await explain(
      { path: '/me', headers: { authorization: `Bearer ${await token('org_acme')}` } },
      withOrg,
    );
    expect(member.auth?.credential).toMatchObject({
      kind: 'jwt',
      verifier: 'clerk',
      signature_checked: false,
    });
    expect(member.auth?.identity).toEqual({ kind: 'user', user_id: 'user_1' });
    expect(member.decision.status).toBeNull();
    const outsider = await explain(
      { path: '/me', headers: { authorization: `Bearer ${await token('org_other')}` } },
      withOrg,
    );
    expect(outsider.decision).toMatchObject({ stage: 'auth', status: 403, code: 'wrong_organization' });
    // With an X-API-Key as well, jwt_or_apikey reads the key, as the gateway does.
    const both = await explain(
      {
        path: '/me',
        headers: { authorization: `Bearer ${await token('org_other')}`, 'x-api-key': ACTIVE_KEY },
      },
      withOrg,
    );
    expect(both.auth?.credential).toMatchObject({ kind: 'api_key', status: 'valid' });
    expect(JSON.stringify(outsider)).not.toContain(await token('org_other'));
  });

  it("regression: counts a v1 Clerk token's org permissions as scopes only at that org's tenant, as the gateway does", async () => {
    const withOrg = await clerkOrgSnapshot({
      path_pattern: '/invoices',
      auth_mode: 'jwt_required',
      require_tenant_org: false,
      required_scopes: ['org:invoices:manage'],
    });
    const token = (org: string) =>
      clerkSessionToken({ org_id: org, org_permissions: ['org:invoices:manage'] });
    const explainFor = async (org: string) =>
      explain({ path: '/invoices', headers: { authorization: `Bearer ${await token(org)}` } }, withOrg);
    const member = await explainFor('org_acme');
    expect(member.auth?.credential).toMatchObject({ scopes: ['org:invoices:manage'] });
    expect(member.decision.status).toBeNull();
    // An org of the caller's own, where they hold every permission, grants nothing at this tenant.
    const outsider = await explainFor('org_callers_own');
    expect(outsider.auth?.credential).toMatchObject({ scopes: [] });
    expect(outsider.decision).toMatchObject({ stage: 'auth', status: 403, code: 'insufficient_scope' });
  });

  it('explains a route reached through another reading of the path, and an ambiguous path (403)', async () => {
    const base = await snapshot();
    const route = (id: string, path_pattern: string, auth_mode: string) => ({
      ...base.routes[3]!,
      id,
      path_pattern,
      methods: [],
      auth_mode: auth_mode as 'public',
    });
    const open = randomUUID();
    const admin = randomUUID();
    const caseFolded: TenantSnapshot = {
      ...base,
      routes: [route(open, '/api/*', 'public'), route(admin, '/api/Admin/*', 'apikey_required')],
    };
    const stricter = await explain({ path: '/api/admin/users' }, caseFolded);
    expect(stricter.route?.id).toBe(admin);
    expect(stricter.route?.reason).toMatch(/another reading of the path .* protects more than \/api\/\*/);
    expect(stricter.routes.find((r) => r.id === open)?.reason).toMatch(
      /another reading of the path reaches \/api\/Admin\/\*/,
    );
    expect(stricter.decision).toMatchObject({ stage: 'auth', status: 401, code: 'missing_credentials' });

    const jwt = randomUUID();
    const keyed = randomUUID();
    const incomparable: TenantSnapshot = {
      ...base,
      routes: [route(jwt, '/a/*', 'jwt_required'), route(keyed, '/A/*', 'apikey_required')],
    };
    const ambiguous = await explain({ path: '/a/x' }, incomparable);
    expect(ambiguous.route).toBeNull();
    expect(ambiguous.decision).toMatchObject({ stage: 'route', status: 403, code: 'ambiguous_path' });
    expect(ambiguous.routes.find((r) => r.id === jwt)?.reason).toMatch(/ambiguous/);
    expect(ambiguous.routes.find((r) => r.id === keyed)?.reason).toMatch(/ambiguous/);
  });

  it('explains a repeated query parameter an origin may read as a differently protected route’s (403), as the gateways answer it', async () => {
    const base = await snapshot();
    const pdf = randomUUID();
    const keyed = randomUUID();
    const reports: TenantSnapshot = {
      ...base,
      routes: [
        {
          ...base.routes[3]!,
          id: pdf,
          path_pattern: '/reports/*',
          methods: [],
          auth_mode: 'public',
          match: { hosts: [], headers: [], query: [{ name: 'format', exact: 'pdf' }] },
        },
        {
          ...base.routes[3]!,
          id: keyed,
          path_pattern: '/reports/*',
          methods: [],
          auth_mode: 'apikey_required',
        },
      ],
    };
    const polluted = await explain({ path: '/reports/q3', query: 'format=pdf&format=csv' }, reports);
    expect(polluted.route).toBeNull();
    expect(polluted.decision).toMatchObject({ stage: 'route', status: 403, code: 'ambiguous_query' });
    expect(polluted.decision?.message).toContain('"format"');
    expect(polluted.routes.find((r) => r.id === pdf)?.reason).toMatch(
      /"format" .* only its first or only its last value .* the query is ambiguous/,
    );
    expect(polluted.routes.find((r) => r.id === keyed)?.reason).toMatch(
      /"format" .* only its first or only its last value .* the query is ambiguous/,
    );

    const agreeing = await explain({ path: '/reports/q3', query: 'format=pdf&Format=pdf' }, reports);
    expect(agreeing.route?.id).toBe(pdf);
    expect(agreeing.decision).toMatchObject({ stage: 'origin' });

    // Sent once, after a `;`: an origin splitting pairs at `&` alone reads no `format` at all.
    const sliced = await explain({ path: '/reports/q3', query: 'x=1;format=pdf' }, reports);
    expect(sliced.route).toBeNull();
    expect(sliced.decision).toMatchObject({ stage: 'route', status: 403, code: 'ambiguous_query' });
    expect(sliced.routes.find((r) => r.id === pdf)?.reason).toMatch(/"format" .* the query is ambiguous/);
  });
});

/**
 * Regression tests: the gateway keys what it keeps per caller on the caller qualified by who vouched
 * for it (services/gateway/src/auth/identity.ts: `clerk:<sub>`, `oidc:<issuer digest>:<sub>`,
 * `svc:<id>`, `key:<id>`; cache-stage passes `{ userId: principal }`, rate-limit-stage
 * `{ userId: principal, apiKeyId }`), but explain still keyed on the bare user, service or API key id:
 * the `scope: user` bucket and the per-caller cache digest it reported were not the gateway's (an API
 * key on a `scope: user` limit was even reported as counted by address).
 */
describe('explaining the keys of a caller as the gateway keys them', () => {
  const ISSUER = 'https://idp.acme.test/';
  const MINE = randomUUID();
  const JOBS = randomUUID();
  const CLIENT_IP = '203.0.113.9';
  const perCaller = {
    auth_mode: 'jwt_or_apikey',
    required_scopes: [],
    require_tenant_org: false,
    rate_limit: { requests_per_second: 5, burst: 10, scope: 'user' },
    cache_policy: { ttl_seconds: 30, cache_key_pattern: 'path+query' },
  };

  async function callerSnapshot(): Promise<TenantSnapshot> {
    const base = await snapshot();
    return tenantSnapshot.parse({
      ...base,
      tenant: {
        ...base.tenant,
        clerk_org_id: 'org_acme',
        settings: {
          ...base.tenant.settings,
          oidc: { issuer: ISSUER, audience: 'acme-api', jwks_url: 'https://idp.acme.test/jwks' },
        },
      },
      routes: [
        { ...perCaller, id: MINE, origin_id: ORIGIN, path_pattern: '/mine/*' },
        { ...perCaller, id: JOBS, origin_id: ORIGIN, path_pattern: '/jobs/*', auth_mode: 'service' },
      ],
    });
  }

  const inAMinute = () => Math.floor(NOW.getTime() / 1000) + 60;
  const clerkToken = (sub: string, claims: Record<string, unknown> = { sid: 'sess_1' }) =>
    new SignJWT({ o: { id: 'org_acme' }, ...claims })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(sub)
      .setExpirationTime(inAMinute())
      .sign(new TextEncoder().encode('not-the-clerk-key-0123456789abcdef'));
  const oidcToken = (sub: string) =>
    new SignJWT({ scope: 'read' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(ISSUER)
      .setSubject(sub)
      .setAudience('acme-api')
      .setExpirationTime(inAMinute())
      .sign(new TextEncoder().encode('not-the-idp-key-0123456789abcdef'));
  const serviceToken = () =>
    new SignJWT({ scope: 'invoices:write' })
      .setProtectedHeader({ alg: 'ES256', kid: 'billing-1' })
      .setSubject('billing')
      .setAudience('acme.vantageedge.dev')
      .setIssuedAt(Math.floor(NOW.getTime() / 1000) - 10)
      .setExpirationTime(inAMinute())
      .sign(privateKey);
  // The principal formats of the gateway's identities, written out here so a change on either side shows.
  const issuerDigest = createHash('sha256').update(ISSUER).digest('base64url').slice(0, 16);

  const callers: Array<{
    label: string;
    path: string;
    routeId: string;
    headers: () => Promise<Record<string, string>>;
    principal: string;
    apiKeyId?: string;
  }> = [
    {
      label: 'a Clerk user',
      path: '/mine/profile',
      routeId: MINE,
      headers: async () => ({ authorization: `Bearer ${await clerkToken('user_2same')}` }),
      principal: 'clerk:user_2same',
    },
    {
      label: "a subject of the tenant's OIDC provider",
      path: '/mine/profile',
      routeId: MINE,
      headers: async () => ({ authorization: `Bearer ${await oidcToken('user_2same')}` }),
      principal: `oidc:${issuerDigest}:user_2same`,
    },
    {
      label: 'a service',
      path: '/jobs/run',
      routeId: JOBS,
      headers: async () => ({ authorization: `Bearer ${await serviceToken()}` }),
      principal: 'svc:billing',
    },
    {
      label: 'an API key',
      path: '/mine/profile',
      routeId: MINE,
      headers: async () => ({ 'x-api-key': ACTIVE_KEY }),
      principal: `key:${ACTIVE_KEY_ID}`,
      apiKeyId: ACTIVE_KEY_ID,
    },
  ];

  it("refuses a Clerk JWT template's token (no sid) and a pending session, as the gateways do", async () => {
    const snap = await callerSnapshot();
    for (const claims of [{}, { sid: 'sess_1', sts: 'pending' }]) {
      const token = await clerkToken('user_2same', claims);
      const answer = await explain(
        { path: '/mine/profile', headers: { authorization: `Bearer ${token}` } },
        snap,
      );
      expect(answer.decision, JSON.stringify(claims)).toMatchObject({
        stage: 'auth',
        status: 401,
        code: 'invalid_token',
      });
    }
  });

  for (const { label, path, routeId, headers: headersOf, principal, apiKeyId } of callers) {
    it(`${label}: the scope:user bucket and the per-caller cache digest are the gateway's`, async () => {
      const snap = await callerSnapshot();
      const headers = await headersOf();
      const answer = await explain({ path, query: 'b=2&a=1', headers, clientIp: CLIENT_IP }, snap);
      expect(answer.auth?.outcome.ok, JSON.stringify(answer.auth)).toBe(true);
      const route = snap.routes.find((candidate) => candidate.id === routeId)!;
      // What the gateway's rate-limit stage counts: limitKey with { userId: principal, apiKeyId, clientIp }.
      const { descriptors } = compileRateLimits(snap.tenant, route);
      const gatewayKeys = descriptors.map((descriptor) =>
        limitKey(descriptor, { userId: principal, apiKeyId, clientIp: CLIENT_IP }),
      );
      expect(answer.rate_limits?.limits.map((limit) => limit.key)).toEqual(gatewayKeys);
      expect(answer.rate_limits?.limits.find((limit) => limit.scope === 'user')?.key).toBe(
        `rl:{${TENANT}}:r:${route.id}:tb:user:${principal}`,
      );
      // What the gateway's cache stage looks up: variantDigest with { userId: principal }.
      expect(answer.cache).toMatchObject({ decision: 'lookup', key: { per_caller: true } });
      expect(answer.cache?.key?.variant_digest).toBe(
        variantDigest(
          compileCachePolicy(TENANT, route, snap.tenant)!,
          {
            method: 'GET',
            scheme: 'https',
            host: 'acme.vantageedge.dev',
            path,
            query: 'b=2&a=1',
            headers,
          },
          { userId: principal },
        ),
      );
    });
  }

  it("judges OIDC and service token times with the gateways' 5 s of clock tolerance", async () => {
    const snap = await callerSnapshot();
    const nowSeconds = Math.floor(NOW.getTime() / 1000);
    const decision = async (path: string, token: string) =>
      (await explain({ path, headers: { authorization: `Bearer ${token}` } }, snap)).decision;
    const oidcExpiring = (exp: number) =>
      new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer(ISSUER)
        .setSubject('user_1')
        .setAudience('acme-api')
        .setExpirationTime(exp)
        .sign(new TextEncoder().encode('not-the-idp-key-0123456789abcdef'));
    const serviceIssued = (iat: number) =>
      new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: 'billing-1' })
        .setSubject('billing')
        .setAudience('acme.vantageedge.dev')
        .setIssuedAt(iat)
        .setExpirationTime(iat + 60)
        .sign(privateKey);
    expect(await decision('/mine/x', await oidcExpiring(nowSeconds - 3))).toMatchObject({ status: null });
    expect(await decision('/mine/x', await oidcExpiring(nowSeconds - 30))).toMatchObject({
      code: 'token_expired',
    });
    expect(await decision('/jobs/x', await serviceIssued(nowSeconds + 3))).toMatchObject({ status: null });
    expect(await decision('/jobs/x', await serviceIssued(nowSeconds + 30))).toMatchObject({
      code: 'invalid_token',
    });
  });

  it('a Clerk user and an OIDC subject with the same id are different callers, as on the gateway', async () => {
    const snap = await callerSnapshot();
    const keysOf = async (token: string) => {
      const answer = await explain(
        { path: '/mine/profile', headers: { authorization: `Bearer ${token}` }, clientIp: CLIENT_IP },
        snap,
      );
      return [answer.rate_limits?.limits.at(-1)?.key, answer.cache?.key?.variant_digest];
    };
    const [clerkBucket, clerkDigest] = await keysOf(await clerkToken('user_2same'));
    const [oidcBucket, oidcDigest] = await keysOf(await oidcToken('user_2same'));
    expect(oidcBucket).not.toBe(clerkBucket);
    expect(oidcDigest).not.toBe(clerkDigest);
  });
});

describe('explaining the route policies that apply', () => {
  const CANARY = randomUUID();
  const policyRoutes = [
    {
      id: randomUUID(),
      origin_id: ORIGIN,
      path_pattern: '/office/*',
      auth_mode: 'public',
      ip_rules: { allow: ['10.0.0.0/8'], deny: ['10.0.13.0/24'] },
      timeouts: { connect_ms: 200 },
      retries: { attempts: 3 },
    },
    {
      id: randomUUID(),
      origin_id: ORIGIN,
      path_pattern: '/web/*',
      methods: ['GET', 'POST'],
      auth_mode: 'jwt_required',
      cors: { allow_origins: ['https://app.example.com'], allow_headers: ['authorization'] },
    },
    {
      id: randomUUID(),
      origin_id: ORIGIN,
      path_pattern: '/v1/*',
      auth_mode: 'public',
      rewrite_path: { from_prefix: '/v1', to_prefix: '/api/v1' },
      request_headers: { set: { 'x-tenant': '${tenant_id}' }, remove: ['cookie'] },
      query: { add: { source: 'gateway' } },
    },
    {
      id: randomUUID(),
      origin_id: ORIGIN,
      path_pattern: '/canary/*',
      auth_mode: 'public',
      traffic_split: {
        origins: [
          { origin_id: ORIGIN, weight: 95 },
          { origin_id: CANARY, weight: 5 },
        ],
        sticky: { cookie: 'session' },
        overrides: [
          // Stored before commands refused it: the gateways leave it out.
          { header: 'x_real_ip', value: '10.9.9.9', origin_id: CANARY },
          { header: 'x-canary', value: 'always', origin_id: CANARY },
        ],
      },
    },
    {
      id: randomUUID(),
      origin_id: ORIGIN,
      path_pattern: '/shop/*',
      auth_mode: 'public',
      fixed_response: { status: 503, body: 'maintenance' },
    },
    {
      id: randomUUID(),
      origin_id: null,
      path_pattern: '/old/*',
      auth_mode: 'public',
      redirect: { status: 308, location: 'https://new.example.com${path}${query}' },
    },
    {
      id: randomUUID(),
      origin_id: null,
      path_pattern: '/home',
      auth_mode: 'public',
      redirect: { location: 'https://${host}/welcome${query}' },
    },
  ];
  /** The tenant's snapshot whose origins are `stable` (ORIGIN, with `stable`'s settings) and `canary`. */
  const canarySnapshot = (
    snapshotOverrides: Partial<Record<string, unknown>>,
    stable: Record<string, unknown> = {},
  ) =>
    snapshot({
      origins: [
        { id: ORIGIN, name: 'stable', targets: [{ url: 'http://10.0.0.1:8080' }], ...stable },
        { id: CANARY, name: 'canary', targets: [{ url: 'http://10.0.0.9:8080' }] },
      ],
      ...snapshotOverrides,
    });
  const policySnapshot = () =>
    canarySnapshot({ routes: policyRoutes, api_keys: [] }, { timeout_seconds: 30 });

  it('judges the IP rules for the given client address, and says it depends on the address without one', async () => {
    const snap = await policySnapshot();
    const unknown = await explain({ path: '/office/x' }, snap);
    expect(unknown.policies?.ip_rules).toMatchObject({
      source: 'route',
      verdict: 'depends_on_client_address',
      client_ip: null,
    });
    expect(unknown.decision.stage).toBe('origin');
    const denied = await explain({ path: '/office/x', clientIp: '10.0.13.7' }, snap);
    expect(denied.policies?.ip_rules).toMatchObject({ verdict: 'denied', client_ip: '10.0.13.7' });
    expect(denied.decision).toMatchObject({ stage: 'ip_rules', status: 403, code: 'ip_denied' });
    const outside = await explain({ path: '/office/x', clientIp: '192.0.2.1' }, snap);
    expect(outside.decision).toMatchObject({ stage: 'ip_rules', status: 403 });
    const inside = await explain({ path: '/office/x', clientIp: '10.1.2.3' }, snap);
    expect(inside.policies?.ip_rules?.verdict).toBe('allowed');
    expect(inside.decision.stage).toBe('origin');
  });

  // Regression: an IPv6 spelling of an IPv4 client (::ffff:a01:203, as a dual-stack listener or a
  // proxy's X-Forwarded-For may write it) was judged as an IPv6 address, outside every IPv4 range:
  // explain said denied (or, under a deny list, allowed) where the gateway, which reads it as the IPv4
  // address, decides the other way.
  it('judges an IPv4-mapped IPv6 client address as the IPv4 address the gateway sees', async () => {
    const snap = await policySnapshot();
    const inside = await explain({ path: '/office/x', clientIp: '::ffff:a01:203' }, snap);
    expect(inside.policies?.ip_rules).toMatchObject({ verdict: 'allowed', client_ip: '10.1.2.3' });
    for (const spelling of [
      '::ffff:a00:d07',
      '0:0:0:0:0:ffff:a00:d07',
      '::FFFF:10.0.13.7',
      '::ffff:10.0.13.7',
    ]) {
      const denied = await explain({ path: '/office/x', clientIp: spelling }, snap);
      expect(denied.policies?.ip_rules, spelling).toMatchObject({
        verdict: 'denied',
        client_ip: '10.0.13.7',
      });
      expect(denied.decision, spelling).toMatchObject({ stage: 'ip_rules', status: 403, code: 'ip_denied' });
    }
  });

  it("answers a path no route takes with the tenant-wide IP rules' 403 for a refused address, as the gateways do", async () => {
    const snap = await canarySnapshot({
      routes: policyRoutes,
      api_keys: [],
      tenant: { ...(await policySnapshot()).tenant, settings: { ip_rules: { deny: ['203.0.113.0/24'] } } },
    });
    const refused = await explain({ path: '/nothing/here', clientIp: '::ffff:203.0.113.9' }, snap);
    expect(refused.route).toBeNull();
    expect(refused.decision).toMatchObject({ stage: 'ip_rules', status: 403, code: 'ip_denied' });
    for (const clientIp of ['192.0.2.1', undefined]) {
      const other = await explain({ path: '/nothing/here', ...(clientIp ? { clientIp } : {}) }, snap);
      expect(other.decision, clientIp).toMatchObject({
        stage: 'route',
        status: 404,
        code: 'route_not_found',
      });
    }
  });

  it('answers an ambiguous query with the IP rules’ 403 for an address every route it reaches refuses, as the gateways do', async () => {
    const base = await snapshot();
    const route = (extra: Partial<RouteConfig>): RouteConfig => ({
      ...base.routes[3]!,
      id: randomUUID(),
      path_pattern: '/reports/*',
      methods: [],
      auth_mode: 'public',
      ...extra,
    });
    const pdf = route({ match: { hosts: [], headers: [], query: [{ name: 'format', exact: 'pdf' }] } });
    const snap: TenantSnapshot = {
      ...base,
      tenant: {
        ...base.tenant,
        settings: { ...base.tenant.settings, ip_rules: { allow: [], deny: ['203.0.113.0/24'] } },
      },
      routes: [pdf, route({ auth_mode: 'apikey_required' })],
    };
    const request = { path: '/reports/q3', query: 'format=pdf&format=csv' };
    const refused = await explain({ ...request, clientIp: '203.0.113.9' }, snap);
    expect(refused.decision).toMatchObject({ stage: 'ip_rules', status: 403, code: 'ip_denied' });
    const admitted = await explain({ ...request, clientIp: '192.0.2.1' }, snap);
    expect(admitted.decision).toMatchObject({ stage: 'route', status: 403, code: 'ambiguous_query' });
    // One of the routes admits the address (its own rules replace the tenant's): it may reach it anyway.
    const ownRules = { ...snap, routes: [{ ...pdf, ip_rules: { allow: [], deny: [] } }, snap.routes[1]!] };
    const partly = await explain({ ...request, clientIp: '203.0.113.9' }, ownRules);
    expect(partly.decision).toMatchObject({ stage: 'route', status: 403, code: 'ambiguous_query' });
  });

  it('reports the route’s timeouts over the origin’s, and its retries', async () => {
    const snap = await policySnapshot();
    const office = await explain({ path: '/office/x' }, snap);
    expect(office.policies?.timeouts).toEqual({
      connect_ms: 200,
      response_headers_ms: 30_000,
      idle_ms: 30_000,
      source: 'route',
    });
    expect(office.policies?.retries).toMatchObject({ attempts: 3 });
    // Without route timeouts: the origin's timeout_seconds, the connect capped at 10 s.
    const plain = await explain({ path: '/v1/x' }, snap);
    expect(plain.policies?.timeouts).toMatchObject({ connect_ms: 10_000, source: 'origin' });
    expect(plain.policies?.retries).toBeNull();
  });

  it('says the gateway answers an allowed preflight with 204 before authentication, and refuses a foreign origin', async () => {
    const snap = await policySnapshot();
    const preflight = (origin: string) =>
      explain(
        {
          method: 'OPTIONS',
          path: '/web/orders',
          headers: {
            origin,
            'access-control-request-method': 'POST',
            'access-control-request-headers': 'authorization',
          },
        },
        snap,
      );
    const allowed = await preflight('https://app.example.com');
    expect(allowed.route?.path_pattern).toBe('/web/*');
    expect(allowed.policies?.cors).toMatchObject({ preflight: true, origin_allowed: true, status: 204 });
    expect(allowed.decision).toMatchObject({ stage: 'cors', status: 204, code: null });
    const foreign = await preflight('https://evil.example.net');
    expect(foreign.policies?.cors).toMatchObject({ preflight: true, origin_allowed: false, status: 403 });
    expect(foreign.decision).toMatchObject({ stage: 'cors', status: 403, code: 'cors_not_allowed' });
    // The actual request: not answered by the gateway's CORS step, still needs the token.
    const actual = await explain(
      { path: '/web/orders', headers: { origin: 'https://app.example.com' } },
      snap,
    );
    expect(actual.policies?.cors).toMatchObject({
      preflight: false,
      origin_allowed: true,
      answered_by_gateway: false,
    });
    expect(actual.decision).toMatchObject({ stage: 'auth', status: 401 });
  });

  it('shows the path the origin receives after the rewrite, and the header and query transforms', async () => {
    const answer = await explain({ path: '/v1/orders/7', query: 'x=1' }, await policySnapshot());
    expect(answer.policies?.rewrite_path).toMatchObject({ path: '/api/v1/orders/7', rewritten: true });
    expect(answer.upstream?.forwarded_path).toBe('/api/v1/orders/7?x=1&source=gateway');
    expect(answer.policies?.request_headers).toMatchObject({
      set: { 'x-tenant': '${tenant_id}' },
      remove: ['cookie'],
    });
    expect(answer.policies?.query).toMatchObject({ add: { source: 'gateway' } });
  });

  it('lists the traffic split’s origins with their weights, the sticky rule, and an override the request meets', async () => {
    const snap = await policySnapshot();
    const answer = await explain({ path: '/canary/x', headers: { cookie: 'session=abc' } }, snap);
    expect(answer.policies?.traffic_split?.origins).toEqual([
      { origin_id: ORIGIN, origin_name: 'stable', weight: 95, percent: 95 },
      { origin_id: CANARY, origin_name: 'canary', weight: 5, percent: 5 },
    ]);
    expect(answer.policies?.traffic_split?.sticky).toEqual({ cookie: 'session' });
    expect(answer.policies?.traffic_split?.chosen_by).toMatch(/sticky on session/);
    const forced = await explain({ path: '/canary/x', headers: { 'x-canary': 'always' } }, snap);
    expect(forced.policies?.traffic_split?.chosen_by).toMatch(/override: x-canary = always/);
    const spoofed = await explain(
      { path: '/canary/x', headers: { x_real_ip: '10.9.9.9', cookie: 'session=abc' } },
      snap,
    );
    expect(spoofed.policies?.traffic_split?.chosen_by).toMatch(/sticky on session/);
  });

  // Regression: the gateway applies the route's request_headers transform to the request before its
  // traffic split and its cache read it; explain read the client's headers. A route that keeps cookies
  // from its origins made explain name the cookie override (or the sticky cookie) that never chooses on
  // the gateway, and a route setting the override's header sent everything to the canary unexplained.
  it('reads the split and the cache on the headers as the route’s transform leaves them, as the gateway does', async () => {
    const split = {
      origins: [
        { origin_id: ORIGIN, weight: 95 },
        { origin_id: CANARY, weight: 5 },
      ],
      sticky: { cookie: 'session' },
      overrides: [
        { cookie: 'canary', value: 'on', origin_id: CANARY },
        { header: 'x-canary', value: 'always', origin_id: CANARY },
      ],
    };
    const route = (path: string, extra: Record<string, unknown>) => ({
      id: randomUUID(),
      origin_id: ORIGIN,
      path_pattern: path,
      auth_mode: 'public',
      traffic_split: split,
      ...extra,
    });
    const snap = await canarySnapshot({
      routes: [
        route('/cookieless/*', {
          request_headers: { remove: ['Cookie', 'x-canary'] },
          cache_policy: { mode: 'override', ttl_seconds: 30, bypass: { cookies: ['session'] } },
        }),
        route('/forced/*', { request_headers: { set: { 'X-Canary': 'always' } } }),
        route('/signed/*', {
          request_headers: { set: { 'x-canary-token': 's3cret' } },
          traffic_split: {
            ...split,
            overrides: [{ header: 'x-canary-token', value: 's3cret', origin_id: CANARY }],
          },
        }),
        route('/tagged/*', { request_headers: { add: { 'x-canary': '${tenant_id}' } } }),
      ],
      api_keys: [],
    });
    const lines = { cookie: 'canary=on; session=abc', 'x-canary': 'always' };
    const cookieless = await explain({ path: '/cookieless/x', headers: lines }, snap);
    expect(cookieless.policies?.traffic_split?.chosen_by).toBe(
      'weights: no session in the request, so the weights’ round robin chooses',
    );
    expect(cookieless.cache).toMatchObject({ decision: 'lookup' });
    const forced = await explain({ path: '/forced/x' }, snap);
    expect(forced.policies?.traffic_split?.chosen_by).toBe(
      `an override: x-canary as the route's request_headers write it → origin ${CANARY}`,
    );
    // The value a route writes is not echoed: a credential header's is write-only.
    const signed = await explain({ path: '/signed/x' }, snap);
    expect(signed.policies?.traffic_split?.chosen_by).toBe(
      `an override: x-canary-token as the route's request_headers write it → origin ${CANARY}`,
    );
    // An added line goes after the client's: the split reads the first one.
    const tagged = await explain({ path: '/tagged/x', headers: { 'x-canary': 'always' } }, snap);
    expect(tagged.policies?.traffic_split?.chosen_by).toMatch(/^an override: x-canary = always/);
    const untagged = await explain({ path: '/tagged/x' }, snap);
    expect(untagged.policies?.traffic_split?.chosen_by).toBe(
      'weights: no session in the request, so the weights’ round robin chooses',
    );
  });

  // Regression: a route's `add` of a header the gateway drops from clients (X-Api-Key, Authorization,
  // the client address headers) adds to nothing on the gateway, which removes the client's line first;
  // explain appended the route's line to the client's, so a split override or a cache key on the header
  // read the client's value, which never reaches the origin.
  it('reads a header the route adds and the gateway drops from clients as the route’s line alone', async () => {
    const snap = await canarySnapshot({
      routes: [
        {
          id: randomUUID(),
          origin_id: ORIGIN,
          path_pattern: '/partner/*',
          auth_mode: 'public',
          request_headers: { add: { 'X-Api-Key': 'partner-key' } },
          traffic_split: {
            origins: [
              { origin_id: ORIGIN, weight: 1 },
              { origin_id: CANARY, weight: 0 },
            ],
            overrides: [{ header: 'x-api-key', value: 'partner-key', origin_id: CANARY }],
          },
        },
        {
          id: randomUUID(),
          origin_id: ORIGIN,
          path_pattern: '/catalog/*',
          auth_mode: 'public',
          request_headers: { add: { 'x-api-key': 'catalog-key' } },
          cache_policy: {
            mode: 'override',
            ttl_seconds: 30,
            cache_key_pattern: 'path+query+headers',
            vary_headers: ['X-Api-Key'],
          },
        },
      ],
      api_keys: [],
    });
    const partner = await explain({ path: '/partner/x', headers: { 'x-api-key': 'mine' } }, snap);
    expect(partner.policies?.traffic_split?.chosen_by).toBe(
      `an override: x-api-key as the route's request_headers write it → origin ${CANARY}`,
    );
    const digest = async (headers: Record<string, string>) =>
      (await explain({ path: '/catalog/x', headers }, snap)).cache?.key?.variant_digest;
    const keyless = await digest({});
    expect(await digest({ 'x-api-key': 'mine' })).toBe(keyless);
    expect(await digest({ X_Api_Key: 'mine' })).toBe(keyless);
  });

  // Regression: the gateway keys a split route's cache entries on the origin its weights chose (each
  // origin answers for itself); explain's digest left the origin out, naming one entry for requests the
  // gateway serves from two.
  it('keys a split route’s cache entry on each origin its weights may choose, as the gateway does', async () => {
    const split = (canaryWeight: number) => ({
      origins: [
        { origin_id: ORIGIN, weight: 3 },
        { origin_id: CANARY, weight: canaryWeight },
      ],
      overrides: [{ header: 'x-canary', value: 'on', origin_id: CANARY }],
    });
    const cached = { mode: 'override', ttl_seconds: 30 };
    const routes = [
      { path_pattern: '/split/*', traffic_split: split(1) },
      { path_pattern: '/stable/*', traffic_split: split(0) },
      { path_pattern: '/plain/*', traffic_split: null },
    ].map((route) => ({
      id: randomUUID(),
      origin_id: ORIGIN,
      auth_mode: 'public',
      cache_policy: cached,
      ...route,
    }));
    const snap = await canarySnapshot({
      routes,
      api_keys: [],
    });
    const gatewayKey = (path: string, origin: string | undefined) => {
      const route = snap.routes.find((candidate) => path.startsWith(candidate.path_pattern.slice(0, -1)))!;
      return variantDigest(
        compileCachePolicy(TENANT, route, snap.tenant)!,
        {
          method: 'GET',
          scheme: 'https',
          host: 'acme.vantageedge.dev',
          path,
          query: '',
          headers: {},
          origin,
        },
        {},
      );
    };
    const both = await explain({ path: '/split/x' }, snap);
    expect(both.cache).toMatchObject({ decision: 'lookup', key: { variant_digest: null } });
    expect(both.cache?.key?.split_variants).toEqual([
      { origin_id: ORIGIN, variant_digest: gatewayKey('/split/x', ORIGIN) },
      { origin_id: CANARY, variant_digest: gatewayKey('/split/x', CANARY) },
    ]);
    expect(gatewayKey('/split/x', ORIGIN)).not.toBe(gatewayKey('/split/x', CANARY));
    // One origin with a weight: every request goes there.
    const stable = await explain({ path: '/stable/x' }, snap);
    expect(stable.cache?.key?.variant_digest).toBe(gatewayKey('/stable/x', ORIGIN));
    // An override's request bypasses: it neither fills nor is served the weights' entries.
    const forced = await explain({ path: '/split/x', headers: { 'x-canary': 'on' } }, snap);
    expect(forced.cache).toMatchObject({ decision: 'bypass', reason: 'bypass_header' });
    const plain = await explain({ path: '/plain/x' }, snap);
    expect(plain.cache?.key?.variant_digest).toBe(gatewayKey('/plain/x', undefined));
    expect(plain.cache?.key).not.toHaveProperty('split_variants');
  });

  // Regression: the gateway's cache keys on the query its route's transform leaves, and judges its
  // bypass rules on it; explain read the client's query, and called two requests one transform makes
  // alike two entries, and a bypass parameter the transform removes a bypass.
  it('keys and bypasses the cache on the query as the route’s transform leaves it, as the gateway does', async () => {
    const snap = await snapshot({
      routes: [
        {
          id: randomUUID(),
          origin_id: ORIGIN,
          path_pattern: '/catalog/*',
          auth_mode: 'public',
          cache_policy: { mode: 'override', ttl_seconds: 30, bypass: { query_params: ['preview'] } },
          query: { remove: ['utm_source', 'preview'], set: { lang: '${tenant_id}' } },
        },
      ],
      api_keys: [],
    });
    const digest = async (query: string) => {
      const answer = await explain({ path: '/catalog/x', query }, snap);
      expect(answer.cache?.decision, query).toBe('lookup');
      return answer.cache?.key?.variant_digest;
    };
    const plain = await digest('a=1');
    expect(await digest('utm_source=mail&a=1')).toBe(plain);
    expect(await digest('a=1&lang=de&preview=1')).toBe(plain);
    expect(await digest('a=2')).not.toBe(plain);
  });

  // Regression: the gateway's key held a CORS route's Origin as sent (a client sending a new one with
  // each request had each answered by the origin); it now holds it as the route's policy reads it.
  it('keys a CORS route’s Origin as its policy reads it: refused ones alike, a listed site in any spelling', async () => {
    const snap = await snapshot({
      routes: [
        {
          id: randomUUID(),
          origin_id: ORIGIN,
          path_pattern: '/catalog/*',
          auth_mode: 'public',
          cors: { allow_origins: ['https://app.example.com'] },
          cache_policy: { mode: 'override', ttl_seconds: 30, cache_key_pattern: 'path' },
        },
      ],
      api_keys: [],
    });
    const digest = async (headers: Record<string, string>) => {
      const answer = await explain({ path: '/catalog/x', headers }, snap);
      expect(answer.cache?.decision).toBe('lookup');
      return answer.cache?.key?.variant_digest;
    };
    const refused = await digest({ origin: 'https://evil-1.example' });
    expect(await digest({ origin: 'https://evil-2.example' })).toBe(refused);
    const site = await digest({ origin: 'https://app.example.com' });
    expect(await digest({ origin: 'HTTPS://App.Example.com:443' })).toBe(site);
    const none = await digest({});
    expect(new Set([refused, site, none]).size).toBe(3);
  });

  it('forwards the query as the route’s transform leaves it, as the gateway sends it to the origin', async () => {
    const snap = await snapshot({
      routes: [
        {
          id: randomUUID(),
          origin_id: ORIGIN,
          path_pattern: '/catalog/*',
          auth_mode: 'public',
          strip_prefix: '/catalog',
          query: { remove: ['internal_token'], set: { lang: '${tenant_id}' } },
        },
      ],
      api_keys: [],
    });
    const answer = await explain(
      { path: '/catalog/x', query: 'internal_token=t&Internal.Token=u&a=1' },
      snap,
    );
    expect(answer.upstream?.forwarded_path).toBe(`/x?a=1&lang=${snap.tenant_id}`);
  });

  it('shows a credential the route writes as <redacted> in the forwarded path, in the spellings origins read', async () => {
    const snap = await snapshot({
      routes: [
        {
          id: randomUUID(),
          origin_id: ORIGIN,
          path_pattern: '/catalog/*',
          auth_mode: 'public',
          // PHP reads `api.key` as `api_key`, and `key[0]` as `key`.
          query: {
            set: { 'api.key': 'S3CRET-1', api_key: 'S3CRET-2' },
            add: { 'key[0]': 'S3CRET-3', page: '2' },
          },
        },
      ],
      api_keys: [],
    });
    const answer = await explain({ path: '/catalog/x', query: 'a=1' }, snap);
    const shown = answer.upstream?.forwarded_path ?? '';
    expect(shown).not.toContain('S3CRET');
    expect(new URLSearchParams(shown.slice(shown.indexOf('?'))).get('api.key')).toBe('<redacted>');
    expect(shown).toContain('page=2');
  });

  it('says a fixed response or a redirect answers from the gateway, with the redirect’s location', async () => {
    const snap = await policySnapshot();
    const shop = await explain({ path: '/shop/cart' }, snap);
    expect(shop.policies?.fixed_response).toMatchObject({ status: 503 });
    expect(shop.decision).toMatchObject({ stage: 'fixed_response', status: 503 });
    const old = await explain({ path: '/old/docs', query: 'lang=en' }, snap);
    expect(old.policies?.redirect).toEqual({
      status: 308,
      location: 'https://new.example.com/old/docs?lang=en',
    });
    expect(old.decision).toMatchObject({ stage: 'redirect', status: 308 });
  });

  it('builds the Location as the gateways do: the host name without port or dot, raw query bytes percent-encoded', async () => {
    const snap = await policySnapshot();
    const home = await explain(
      { path: '/home', host: 'ACME.vantageedge.dev.:8443', query: 'q=caf\u00c3\u00a9' },
      snap,
    );
    expect(home.policies?.redirect, JSON.stringify(home.decision)).toEqual({
      status: 302,
      location: 'https://acme.vantageedge.dev/welcome?q=caf%C3%A9',
    });
  });
});

describe('explaining the request quotas', () => {
  const PREFIX = 'gw:';
  const keyed = { path: '/api/users/1', headers: { 'x-api-key': ACTIVE_KEY } };

  /** The tenant with a monthly quota of `month` and the active key a daily one of `day`. */
  async function metered(month: number, day: number): Promise<TenantSnapshot> {
    const base = await snapshot();
    return tenantSnapshot.parse({
      ...base,
      tenant: { ...base.tenant, settings: { ...base.tenant.settings, quota: { requests_per_month: month } } },
      api_keys: base.api_keys.map((key) => ({ ...key, quota: { requests_per_day: day } })),
    });
  }

  /** Counters in which the gateway has counted `requests` of the active key already, today. */
  async function countedCounters(snap: TenantSnapshot, requests: number): Promise<QuotaCounters> {
    const store = new InMemoryQuotaStore({ now: () => NOW.getTime() });
    const apiKey = { id: ACTIVE_KEY_ID, quota: snap.api_keys[0]!.quota };
    const windows = requestQuotaWindows(PREFIX, TENANT, snap.tenant.settings.quota, apiKey, NOW.getTime());
    for (let i = 0; i < requests; i++) expect((await store.consume(windows)).allowed).toBe(true);
    return { store, keyPrefix: PREFIX, clock: () => NOW.getTime() };
  }

  it("names the tenant's and the key's quota windows, the counters they spend and what is left, spending none", async () => {
    const snap = await metered(1000, 5);
    const counters = await countedCounters(snap, 3);
    const answer = await explain(keyed, snap, counters);
    expect(answer.quota).toEqual({
      windows: [
        {
          subject: 'tenant',
          api_key_id: null,
          period: 'month',
          limit: 1000,
          key: `q:{${TENANT}}:tenant:month:202611`,
          resets_at: '2026-12-01T00:00:00.000Z',
          used: 3,
          remaining: 997,
        },
        {
          subject: 'api_key',
          api_key_id: ACTIVE_KEY_ID,
          period: 'day',
          limit: 5,
          key: `q:{${TENANT}}:key:${ACTIVE_KEY_ID}:day:20261130`,
          resets_at: '2026-12-01T00:00:00.000Z',
          used: 3,
          remaining: 2,
        },
      ],
      counts: 'read',
      reason: "the tenant's quota and the API key's apply; counts read from the gateways' counters",
    });
    expect(answer.decision).toMatchObject({ stage: 'origin', status: null });
    expect(answer.decision.message).toContain('unless a quota is used up (429 quota_exceeded)');
    // Explaining spent nothing: the same counts again.
    expect((await explain(keyed, snap, counters)).quota?.windows.map((window) => window.used)).toEqual([
      3, 3,
    ]);
  });

  // Regression test: explain named the periods by the control plane's clock, so one a few seconds
  // behind the counters' (Redis's, which the gateways count by) read yesterday's spent-up counter
  // just after midnight, or was refused the read as "another period".
  it("explains a request of now in the counters' period, by their clock, not the control plane's", async () => {
    const snap = await metered(1000, 5);
    const redisNow = Date.UTC(2026, 11, 1, 0, 0, 5); // 5 s into December: the control plane is at NOW
    const store = new InMemoryQuotaStore({ now: () => redisNow });
    const apiKey = { id: ACTIVE_KEY_ID, quota: snap.api_keys[0]!.quota };
    const windows = requestQuotaWindows(PREFIX, TENANT, snap.tenant.settings.quota, apiKey, redisNow);
    for (let i = 0; i < 2; i++) expect((await store.consume(windows)).allowed).toBe(true);
    const answer = await explain(keyed, snap, { store, keyPrefix: PREFIX, atNow: true });
    expect(answer.quota?.counts).toBe('read');
    expect(answer.quota?.windows.map((window) => [window.key, window.used, window.resets_at])).toEqual([
      [`q:{${TENANT}}:tenant:month:202612`, 2, '2027-01-01T00:00:00.000Z'],
      [`q:{${TENANT}}:key:${ACTIVE_KEY_ID}:day:20261201`, 2, '2026-12-02T00:00:00.000Z'],
    ]);
  });

  it('answers 429 quota_exceeded, as the gateway does, once a window is used up', async () => {
    const snap = await metered(1000, 5);
    const answer = await explain(keyed, snap, await countedCounters(snap, 5));
    expect(answer.quota?.windows.map((window) => window.remaining)).toEqual([995, 0]);
    expect(answer.decision).toEqual({
      stage: 'quota',
      status: 429,
      code: 'quota_exceeded',
      message:
        "the API key's daily quota of 5 requests is used up (5 made); it resets at 2026-12-01T00:00:00.000Z",
    });
  });

  it('says the counts are unknown when the counters cannot be read, and still explains the request', async () => {
    const down: QuotaStore = {
      consume: () => Promise.reject(new Error('spent by explain')),
      read: () => Promise.reject(new Error('Redis is down')),
    };
    const answer = await explain(keyed, await metered(1000, 5), {
      store: down,
      keyPrefix: PREFIX,
      clock: () => NOW.getTime(),
    });
    expect(answer.quota).toMatchObject({ counts: 'unknown' });
    expect(answer.quota?.windows.map((window) => [window.key, window.used])).toEqual([
      [`q:{${TENANT}}:tenant:month:202611`, null],
      [`q:{${TENANT}}:key:${ACTIVE_KEY_ID}:day:20261130`, null],
    ]);
    expect(answer.decision).toMatchObject({ stage: 'origin', status: null });
  });

  it("counts a public route's request on the tenant's quota only, as the gateway reads no key there", async () => {
    const snap = await metered(1000, 5);
    const answer = await explain(
      { method: 'POST', path: '/api/orders', headers: { 'x-api-key': ACTIVE_KEY } },
      snap,
      await countedCounters(snap, 1),
    );
    expect(answer.route?.id).toBe(CATCH_ALL);
    expect(answer.quota?.windows.map((window) => [window.subject, window.used])).toEqual([['tenant', 1]]);
  });

  it('says no quota applies without one, and reads no counts without the counters or in another period', async () => {
    const none = await explain(keyed, await snapshot(), await countedCounters(await snapshot(), 0));
    expect(none.quota).toEqual({
      windows: [],
      counts: 'not_read',
      reason: 'no quota applies: neither the tenant nor the API key has one',
    });
    expect(none.decision.message).not.toContain('quota');
    const snap = await metered(1000, 5);
    expect((await explain(keyed, snap)).quota).toMatchObject({ counts: 'not_read' });
    const yesterday = { ...(await countedCounters(snap, 5)), clock: () => NOW.getTime() + 86_400_000 };
    const past = await explain(keyed, snap, yesterday);
    expect(past.quota?.counts).toBe('not_read');
    expect(past.decision).toMatchObject({ stage: 'origin', status: null });
  });
});

/**
 * A tenant whose OIDC issuer is the platform's Clerk instance (stored before the admin API refused it):
 * the gateways verify platform users' tokens there as Clerk tokens, and so does explain.
 */
describe("explaining a token of the platform's Clerk instance at a tenant whose OIDC issuer names it", () => {
  it('reads it as a Clerk token, refused to a user outside the tenant’s org', async () => {
    const keys = await createClerkTestKeys();
    const base = await clerkOrgSnapshot({ path_pattern: '/me', auth_mode: 'jwt_required' });
    const snap = tenantSnapshot.parse({
      ...base,
      tenant: {
        ...base.tenant,
        settings: {
          ...base.tenant.settings,
          oidc: { issuer: OFFLINE_CLERK_ISSUER, audience: 'api', jwks_url: `${OFFLINE_CLERK_ISSUER}/jwks` },
        },
      },
    });
    const token = await signClerkToken(keys, {
      userId: 'user_elsewhere',
      orgId: 'org_other',
      customClaims: { aud: 'api' },
    });
    const answer = await explainRequest(
      snap,
      {
        method: 'GET',
        host: 'acme.vantageedge.dev',
        path: '/me',
        query: '',
        headers: { authorization: `Bearer ${token}` },
      },
      {
        snapshot: snap,
        formerKeys: () => Promise.resolve({ key: undefined }),
        apiKeyPepper: PEPPER,
        baseDomains: ['vantageedge.dev'],
        encodedSlashes: 'reject',
        maxServiceTokenSeconds: 300,
        now: new Date(),
        clerk: {
          jwtKey: keys.publicKeyPem,
          authorizedParties: [],
          issuer: OFFLINE_CLERK_ISSUER,
          allowDevTokens: false,
        },
      },
    );
    expect(answer.auth?.credential).toMatchObject({ kind: 'jwt', verifier: 'clerk' });
    expect(answer.decision).toMatchObject({ stage: 'auth', status: 403, code: 'wrong_organization' });
  });
});
