// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} is the route policies' own value-template syntax
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';
import {
  EXAMPLE_CANARY_ORIGIN_ID,
  EXAMPLE_ORIGIN_ID,
  EXAMPLE_TENANT_ID,
  ROUTE_POLICY_EXAMPLES,
} from './route-policy-examples.js';

/**
 * The route policies through the admin API: a route with every policy is stored as sent (names
 * normalised) and served by the read models; bad input is a 400 naming the exact field and changes
 * nothing; maintenance mode goes on and off with PATCH; the OpenAPI document describes each policy.
 */
let cp: ControlPlaneHarness;
let tenantId = '';
let originId = '';
let canaryId = '';
let foreignOriginId = '';

beforeAll(async () => {
  cp = await startControlPlane({ withReadSide: true });
  const tenant = await cp.request('POST', '/api/v1/tenants', { body: { name: 'Pol', subdomain: 'pol' } });
  tenantId = json(tenant)['id'] as string;
  const other = await cp.request('POST', '/api/v1/tenants', { body: { name: 'Other', subdomain: 'other' } });
  const origin = (tenant: string, name: string) =>
    cp.request('POST', '/api/v1/origins', { body: { tenant_id: tenant, name, url: 'http://127.0.0.1:9' } });
  originId = json(await origin(tenantId, 'stable'))['id'] as string;
  canaryId = json(await origin(tenantId, 'canary'))['id'] as string;
  foreignOriginId = json(await origin(json(other)['id'] as string, 'theirs'))['id'] as string;
});
afterAll(async () => {
  await cp?.close();
});

const eventCount = async () => (await cp.allEvents()).length;

function everyPolicy() {
  return {
    tenant_id: tenantId,
    origin_id: originId,
    path_pattern: '/users/:id/*',
    auth_mode: 'jwt_required',
    match: { hosts: ['pol.localhost'], headers: [{ name: 'X-Api-Version', exact: '2' }], query: [] },
    cors: {
      allow_origins: ['https://app.example.com', 'https://*.example.org'],
      allow_headers: ['Authorization'],
    },
    ip_rules: { allow: ['198.51.100.0/24', '2001:db8::/32'], deny: ['198.51.100.66'] },
    request_headers: { set: { 'X-Caller': '${consumer_id}' }, add: { 'x-via': 'gw' }, remove: ['x-debug'] },
    response_headers: { set: { 'strict-transport-security': 'max-age=600' } },
    rewrite_path: { template: '/accounts/:id/*' },
    preserve_host: true,
    query: { add: { source: 'gateway' }, remove: ['debug'] },
    timeouts: { connect_ms: 500, response_headers_ms: 2000, idle_ms: 5000 },
    retries: { attempts: 3, on: ['connect_error', 'reset', '503'] },
    max_body_bytes: 65536,
    max_header_bytes: 8192,
    traffic_split: {
      origins: [
        { origin_id: originId, weight: 95 },
        { origin_id: canaryId, weight: 5 },
      ],
      sticky: { cookie: 'session' },
      overrides: [{ header: 'x-canary', value: 'always', origin_id: canaryId }],
    },
  };
}

describe('route policies in the admin API', () => {
  it('stores a route with every policy, fills defaults, and serves it from the read models', async () => {
    const created = await cp.request('POST', '/api/v1/routes', { body: everyPolicy() });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const route = json(created);
    expect(route).toMatchObject({
      match: { hosts: ['pol.localhost'], headers: [{ name: 'x-api-version', exact: '2' }] },
      cors: { allow_headers: ['authorization'], allow_credentials: false, max_age_seconds: 600 },
      retries: {
        attempts: 3,
        methods: ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'],
        backoff: { base_ms: 25, max_ms: 250 },
        budget: { percent: 20, min_retries: 3 },
      },
      preserve_host: true,
      fixed_response: null,
      redirect: null,
    });
    const position = created.headers.get('x-event-position') ?? '0';
    const read = await cp.request('GET', `/api/v1/routes/${route['id']}`, {
      headers: { 'x-min-position': position },
    });
    expect(read.status).toBe(200);
    const { created_at: _c, updated_at: _u, ...stored } = json(read);
    const { created_at: _c2, updated_at: _u2, ...sent } = route;
    expect(stored).toEqual(sent);
  });

  it('turns maintenance mode on and off with PATCH, keeping the route’s origin and other policies', async () => {
    const created = json(
      await cp.request('POST', '/api/v1/routes', {
        body: { ...everyPolicy(), path_pattern: '/shop/*', rewrite_path: null },
      }),
    );
    const on = await cp.request('PATCH', `/api/v1/routes/${created['id']}`, {
      body: { fixed_response: { status: 503, headers: { 'Retry-After': '600' }, body: 'back soon' } },
    });
    expect(on.status, JSON.stringify(on.body)).toBe(200);
    expect(json(on)['fixed_response']).toMatchObject({
      status: 503,
      content_type: 'text/plain; charset=utf-8',
    });
    expect(json(on)['traffic_split']).toEqual(created['traffic_split']);
    const off = await cp.request('PATCH', `/api/v1/routes/${created['id']}`, {
      body: { fixed_response: null },
    });
    expect(json(off)['fixed_response']).toBeNull();
    expect(json(off)['origin_id']).toBe(originId);
  });

  it('sends the target’s Host unless preserve_host says otherwise; refuses a value that is not a boolean', async () => {
    const created = await cp.request('POST', '/api/v1/routes', {
      body: { tenant_id: tenantId, origin_id: originId, path_pattern: '/vhost/*', auth_mode: 'public' },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(json(created)['preserve_host']).toBe(false);
    const id = json(created)['id'] as string;
    const on = await cp.request('PATCH', `/api/v1/routes/${id}`, { body: { preserve_host: true } });
    expect(on.status, JSON.stringify(on.body)).toBe(200);
    expect(json(on)['preserve_host']).toBe(true);
    const before = await eventCount();
    for (const value of ['true', null, 1]) {
      const refused = await cp.request('PATCH', `/api/v1/routes/${id}`, { body: { preserve_host: value } });
      expect(refused.status, JSON.stringify(value)).toBe(400);
      expect(JSON.stringify(refused.body), JSON.stringify(value)).toContain('preserve_host');
    }
    expect(await eventCount()).toBe(before);
    const read = await cp.request('GET', `/api/v1/routes/${id}`, {
      headers: { 'x-min-position': on.headers.get('x-event-position') ?? '0' },
    });
    expect(json(read)['preserve_host']).toBe(true);
  });

  it('accepts a redirect route without an origin', async () => {
    const created = await cp.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        origin_id: null,
        path_pattern: '/moved/*',
        auth_mode: 'public',
        redirect: { status: 301, location: 'https://new.example.com${path}${query}' },
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(json(created)).toMatchObject({ origin_id: null, redirect: { status: 301 } });
  });

  it('accepts a value naming eight variables, the most a value may name', async () => {
    const created = await cp.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        origin_id: null,
        path_pattern: '/eight/*',
        auth_mode: 'public',
        redirect: { location: `https://\${host}${'${path}'.repeat(6)}\${query}` },
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
  });

  const base = () => ({
    tenant_id: tenantId,
    origin_id: originId,
    path_pattern: '/bad/:id/*',
    auth_mode: 'public',
  });
  it.each([
    [
      'a CORS origin that is not one',
      { cors: { allow_origins: ['ftp://files.example.com'] } },
      'cors.allow_origins.0',
    ],
    ['* with credentials', { cors: { allow_origins: ['*'], allow_credentials: true } }, 'cors.allow_origins'],
    // Regression: accepted as a header named `*` (Kong and APISIX read it as any header), so every
    // preflight asking for a header was refused 403 while the admin had meant to allow them all.
    [
      '* among the CORS allow_headers',
      { cors: { allow_origins: ['https://app.example.com'], allow_headers: ['content-type', '*'] } },
      'cors.allow_headers.1',
    ],
    // Browsers read `*` in Access-Control-Expose-Headers as a name, not a wildcard, on credentialed requests.
    [
      '* among the CORS expose_headers with credentials',
      {
        cors: { allow_origins: ['https://app.example.com'], expose_headers: ['*'], allow_credentials: true },
      },
      'cors.expose_headers.0',
    ],
    ['a malformed CIDR', { ip_rules: { deny: ['300.1.1.1/8'] } }, 'ip_rules.deny.0'],
    ['a prefix too long', { ip_rules: { allow: ['10.0.0.0/33'] } }, 'ip_rules.allow.0'],
    ['setting Host', { request_headers: { set: { Host: 'evil' } } }, 'request_headers.set.Host'],
    [
      'setting X-Real-IP',
      { request_headers: { set: { 'X-Real-IP': '1.2.3.4' } } },
      'request_headers.set.X-Real-IP',
    ],
    [
      'removing X-Forwarded-Prefix',
      { request_headers: { remove: ['x-forwarded-prefix'] } },
      'request_headers.remove.0',
    ],
    // The gateway appends its CDN-Loop entry to the client's (RFC 8586): a route removing or setting
    // it would hide a request's passes through the platform from the next replica.
    [
      'setting CDN-Loop',
      { request_headers: { set: { 'CDN-Loop': 'other-cdn' } } },
      'request_headers.set.CDN-Loop',
    ],
    ['adding to CDN-Loop', { request_headers: { add: { 'cdn-loop': 'x' } } }, 'request_headers.add.cdn-loop'],
    ['removing CDN-Loop', { request_headers: { remove: ['cdn-loop'] } }, 'request_headers.remove.0'],
    [
      'an identity header',
      { request_headers: { set: { 'x-vantageedge-user-id': 'admin' } } },
      'request_headers.set.x-vantageedge-user-id',
    ],
    // Regression: PHP, Rack and WSGI servers read `_` and `-` in a header name alike, so these reached
    // origins as the gateway's identity, address and routing headers.
    [
      'an identity header spelled with underscores',
      { request_headers: { set: { X_VantageEdge_User_Id: 'user_2victim' } } },
      'request_headers.set.X_VantageEdge_User_Id',
    ],
    [
      'X-Real-IP spelled with an underscore',
      { request_headers: { add: { 'x-real_ip': '198.51.100.1' } } },
      'request_headers.add.x-real_ip',
    ],
    [
      'X-Original-URL spelled with underscores',
      { request_headers: { set: { x_original_url: '/admin' } } },
      'request_headers.set.x_original_url',
    ],
    ['an unknown variable', { request_headers: { add: { 'x-a': '${secret}' } } }, 'request_headers.add.x-a'],
    [
      'a header value with a line break',
      { response_headers: { set: { 'x-a': 'a\r\nb' } } },
      'response_headers.set.x-a',
    ],
    [
      'a prefix rewrite without its target',
      { rewrite_path: { from_prefix: '/bad' } },
      'rewrite_path.to_prefix',
    ],
    [
      'a template parameter the pattern lacks',
      { rewrite_path: { template: '/x/:other' } },
      'rewrite_path.template',
    ],
    // Regression: a template could copy a segment the client chose 160 times into the origin's path.
    [
      'a template naming the pattern nine times',
      { rewrite_path: { template: `/x${'/:id'.repeat(8)}/*` } },
      'rewrite_path.template',
    ],
    [
      'strip_prefix with rewrite_path',
      { strip_prefix: '/bad', rewrite_path: { template: '/x/:id' } },
      'rewrite_path',
    ],
    ['too many attempts', { retries: { attempts: 9 } }, 'retries.attempts'],
    ['an unknown retry condition', { retries: { on: ['500'] } }, 'retries.on.0'],
    [
      'backoff max below base',
      { retries: { backoff: { base_ms: 100, max_ms: 10 } } },
      'retries.backoff.max_ms',
    ],
    ['a zero timeout', { timeouts: { connect_ms: 0 } }, 'timeouts.connect_ms'],
    ['a negative body limit', { max_body_bytes: -1 }, 'max_body_bytes'],
    ['a tiny header limit', { max_header_bytes: 10 }, 'max_header_bytes'],
    [
      'a split of one origin',
      { traffic_split: { origins: [{ origin_id: 'x', weight: 1 }] } },
      'traffic_split.origins',
    ],
    [
      'a condition with two tests',
      { match: { headers: [{ name: 'x-a', exact: '1', prefix: '1' }] } },
      'match.headers.0.exact',
    ],
    ['a host of no tenant of ours', { match: { hosts: ['other.localhost'] } }, 'match.hosts.0'],
    ['a scheme that is not http or https', { match: { scheme: 'ws' } }, 'match.scheme'],
    // Regression: the condition read the client's X-Real-IP while the origin got the gateway's: a route
    // meant for internal addresses was any client's that wrote one.
    [
      'a condition on a header the gateway writes for the origin',
      {
        match: {
          headers: [
            { name: 'x-api-version', exact: '2' },
            { name: 'X-Real-IP', prefix: '10.' },
          ],
        },
      },
      'match.headers.1.name',
    ],
    [
      'both fixed_response and redirect',
      { fixed_response: { status: 503 }, redirect: { location: '/x' } },
      'redirect',
    ],
    ['no origin and nothing to answer with', { origin_id: null }, 'origin_id'],
    ['a redirect status that is not one', { redirect: { status: 200, location: '/x' } }, 'redirect.status'],
    // Regression: cookies a route policy sets bypassed the guard that keeps an origin's Set-Cookie
    // Domain on the tenant's own hosts, so `Domain=vantageedge.dev` reached every tenant's host.
    [
      'a Set-Cookie from a response header transform',
      { response_headers: { set: { 'Set-Cookie': 'sid=1; Domain=vantageedge.dev' } } },
      'response_headers.set.Set-Cookie',
    ],
    [
      'a Set-Cookie added by a response header transform',
      { response_headers: { add: { 'set-cookie': 'sid=1' } } },
      'response_headers.add.set-cookie',
    ],
    [
      'a Set-Cookie in a fixed response',
      { fixed_response: { status: 503, headers: { 'set-cookie': 'sid=1; Domain=localhost' } } },
      'fixed_response.headers.set-cookie',
    ],
    ['an unknown location variable', { redirect: { location: 'https://x${user}' } }, 'redirect.location'],
    // Regression: a value could name a variable as often as its length allowed, and each answer then
    // carried the request's path (or address, or token subject) hundreds of times over.
    [
      'a location naming ${path} nine times',
      { redirect: { location: `https://x${'${path}'.repeat(9)}` } },
      'redirect.location',
    ],
    // Regression: a request for /evil.example was redirected to //evil.example, another site.
    ['a location whose host the path chooses', { redirect: { location: '/${path}' } }, 'redirect.location'],
    [
      'a header value naming nine variables',
      { response_headers: { set: { 'x-who': '${client_ip}'.repeat(9) } } },
      'response_headers.set.x-who',
    ],
    [
      'a query value naming nine variables',
      { query: { add: { who: '${consumer_id},'.repeat(9) } } },
      'query.add.who',
    ],
    // Regression: a fixed response replaced the request id the gateway gives every answer.
    [
      'an X-Request-Id in a fixed response',
      { fixed_response: { status: 503, headers: { 'X-Request-Id': 'maintenance' } } },
      'fixed_response.headers.X-Request-Id',
    ],
    // Regression: names that are no header or query parameter name were stored, and the snapshot
    // projector then skipped the route's every event: the gateways never served the route.
    [
      'a request header name with a space',
      { request_headers: { set: { 'x caller': '1' } } },
      'request_headers.set.x caller',
    ],
    ['an empty response header name', { response_headers: { add: { '': '1' } } }, 'response_headers.add.'],
    ['a query parameter name with a space', { query: { set: { 'a b': '1' } } }, 'query.set.a b'],
    // Origins read both names as one parameter: the origin would get two values of it.
    [
      'a query parameter set under two names origins read as one',
      { query: { set: { 'page.size': '50', 'page[size]': '1000' } } },
      'query.set.page[size]',
    ],
    [
      'a fixed response header name that is not one',
      { fixed_response: { status: 503, headers: { 'retry(after)': '5' } } },
      'fixed_response.headers.retry(after)',
    ],
    // Regression: the gateway cannot read these as a path, so it ignored the prefix and forwarded every
    // request unstripped.
    ['a strip_prefix with a bad escape', { strip_prefix: '/bad%zz' }, 'strip_prefix'],
    ['a strip_prefix with a backslash', { strip_prefix: '/bad\\v1' }, 'strip_prefix'],
    ['a strip_prefix in Unicode', { strip_prefix: '/日本' }, 'strip_prefix'],
    ['a strip_prefix with a dot segment parameter', { strip_prefix: '/bad/..;/x' }, 'strip_prefix'],
    // Regression: a from_prefix no normalised request path can start with never rewrote anything, and
    // a target with a bad escape or a `..;` segment went to the origin as written.
    [
      'a rewrite prefix with a bad escape',
      { rewrite_path: { from_prefix: '/bad%zz', to_prefix: '/x' } },
      'rewrite_path.from_prefix',
    ],
    [
      'a rewrite target with a bad escape',
      { rewrite_path: { from_prefix: '/bad', to_prefix: '/x%2' } },
      'rewrite_path.to_prefix',
    ],
    [
      'a rewrite template with a dot segment parameter',
      { rewrite_path: { template: '/x/..;/:id' } },
      'rewrite_path.template',
    ],
  ])('refuses %s with 400 naming the field, and changes nothing', async (_what, policy, field) => {
    const before = await eventCount();
    const response = await cp.request('POST', '/api/v1/routes', { body: { ...base(), ...policy } });
    expect(response.status, JSON.stringify(response.body)).toBe(400);
    const error = json(response)['error'] as { code: string; details: Array<{ field: string }> };
    expect(error.code).toBe('validation_failed');
    expect(error.details.map((detail) => detail.field)).toContain(field);
    expect(await eventCount()).toBe(before);
  });

  it('refuses a split naming an origin of another tenant, or leaving out the route’s own origin', async () => {
    const before = await eventCount();
    const foreign = await cp.request('POST', '/api/v1/routes', {
      body: {
        ...base(),
        traffic_split: {
          origins: [
            { origin_id: originId, weight: 1 },
            { origin_id: foreignOriginId, weight: 1 },
          ],
        },
      },
    });
    expect(foreign.status).toBe(400);
    expect(JSON.stringify(foreign.body)).toContain('traffic_split.origins.1.origin_id');
    const withoutOwn = await cp.request('POST', '/api/v1/routes', {
      body: {
        ...base(),
        traffic_split: {
          origins: [
            { origin_id: canaryId, weight: 1 },
            { origin_id: foreignOriginId, weight: 0 },
          ],
        },
      },
    });
    expect(withoutOwn.status).toBe(400);
    expect(await eventCount()).toBe(before);
  });

  // Regression: the split read the client's copy of a header the gateway writes for the origin, so an
  // override meant for service callers (or for internal addresses) was met by any client writing the value.
  it('refuses a split override or sticky key on a header the gateway writes for the origin', async () => {
    const split = (rule: object) => ({
      origins: [
        { origin_id: originId, weight: 100 },
        { origin_id: canaryId, weight: 0 },
      ],
      ...rule,
    });
    const cases: Array<[object, string]> = [
      [
        { overrides: [{ header: 'x-vantageedge-auth-kind', value: 'service', origin_id: canaryId }] },
        'traffic_split.overrides.0.header',
      ],
      [
        {
          overrides: [
            { cookie: 'beta', value: 'yes', origin_id: canaryId },
            { header: 'X-Real-IP', value: '10.0.0.5', origin_id: canaryId },
          ],
        },
        'traffic_split.overrides.1.header',
      ],
      [{ sticky: { header: 'X_VantageEdge_User_Id' } }, 'traffic_split.sticky.header'],
      [{ sticky: { header: 'x-forwarded-for' } }, 'traffic_split.sticky.header'],
    ];
    const created = json(
      await cp.request('POST', '/api/v1/routes', { body: { ...base(), path_pattern: '/split' } }),
    );
    for (const [rule, field] of cases) {
      const before = await eventCount();
      const response = await cp.request('POST', '/api/v1/routes', {
        body: { ...base(), path_pattern: '/split/*', traffic_split: split(rule) },
      });
      expect(response.status, JSON.stringify(response.body)).toBe(400);
      const patched = await cp.request('PATCH', `/api/v1/routes/${created['id']}`, {
        body: { traffic_split: split(rule) },
      });
      expect(patched.status, JSON.stringify(patched.body)).toBe(400);
      for (const answer of [response, patched]) {
        const error = json(answer)['error'] as { code: string; details: Array<{ field: string }> };
        expect(error.code).toBe('validation_failed');
        expect(error.details.map((detail) => detail.field)).toContain(field);
      }
      expect(await eventCount()).toBe(before);
    }
    // The client's own headers and cookies still pick the origin.
    const ordinary = await cp.request('POST', '/api/v1/routes', {
      body: {
        ...base(),
        path_pattern: '/split/*',
        traffic_split: split({
          sticky: { header: 'x-session' },
          overrides: [{ header: 'x-canary', value: 'always', origin_id: canaryId }],
        }),
      },
    });
    expect(ordinary.status, JSON.stringify(ordinary.body)).toBe(201);
  });

  it('checks a PATCH against the whole route: a template needs the parameters of the new pattern', async () => {
    const created = json(
      await cp.request('POST', '/api/v1/routes', {
        body: { ...base(), path_pattern: '/p/:id', rewrite_path: { template: '/q/:id' } },
      }),
    );
    const before = await eventCount();
    const patched = await cp.request('PATCH', `/api/v1/routes/${created['id']}`, {
      body: { path_pattern: '/p/:name' },
    });
    expect(patched.status).toBe(400);
    expect(JSON.stringify(patched.body)).toContain('rewrite_path.template');
    expect(await eventCount()).toBe(before);
  });

  it('keeps tenant-wide IP rules in the settings, validated like a route’s', async () => {
    const ok = await cp.request('PATCH', `/api/v1/tenants/${tenantId}`, {
      body: { settings: { ip_rules: { deny: ['203.0.113.0/24'] } } },
    });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(json(ok)['settings']).toMatchObject({ ip_rules: { allow: [], deny: ['203.0.113.0/24'] } });
    const bad = await cp.request('PATCH', `/api/v1/tenants/${tenantId}`, {
      body: { settings: { ip_rules: { allow: ['not-an-address'] } } },
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('settings.ip_rules.allow.0');
  });

  it('accepts every route policy example the OpenAPI document shows (the README curl bodies)', async () => {
    const doc = json(await cp.request('GET', '/openapi.json', { token: null }));
    interface CreateOperation {
      requestBody: { content: { 'application/json': { examples: Record<string, { value: object }> } } };
    }
    const paths = doc['paths'] as Record<string, { post: CreateOperation }>;
    const examples = paths['/api/v1/routes']?.post.requestBody.content['application/json'].examples ?? {};
    expect(Object.keys(examples).sort()).toEqual(Object.keys(ROUTE_POLICY_EXAMPLES).sort());
    for (const [name, example] of Object.entries(examples)) {
      // The placeholder ids become this tenant's own; the shown JSON is otherwise sent as is.
      const body = JSON.parse(
        JSON.stringify(example.value)
          .replaceAll(EXAMPLE_TENANT_ID, tenantId)
          .replaceAll(EXAMPLE_ORIGIN_ID, originId)
          .replaceAll(EXAMPLE_CANARY_ORIGIN_ID, canaryId),
      );
      const created = await cp.request('POST', '/api/v1/routes', { body });
      expect(created.status, `${name}: ${JSON.stringify(created.body)}`).toBe(201);
      const { tenant_id: _tenant, ...fields } = body;
      expect(json(created), name).toMatchObject(fields);
      await cp.request('DELETE', `/api/v1/routes/${json(created)['id']}`);
    }
  });

  it('describes every policy in the OpenAPI document', async () => {
    const doc = json(await cp.request('GET', '/openapi.json', { token: null }));
    const schemas = (
      doc['components'] as { schemas: Record<string, { properties: Record<string, unknown> }> }
    ).schemas;
    for (const schema of ['CreateRoute', 'UpdateRoute', 'Route']) {
      for (const field of [
        'match',
        'cors',
        'ip_rules',
        'request_headers',
        'response_headers',
        'rewrite_path',
        'preserve_host',
        'query',
        'timeouts',
        'retries',
        'max_body_bytes',
        'max_header_bytes',
        'traffic_split',
        'fixed_response',
        'redirect',
      ]) {
        expect(schemas[schema]?.properties[field], `${schema}.${field}`).toBeDefined();
      }
    }
  });
});
