import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from './cli.js';
import { formatExplanation, parseHeaders, splitRequestUrl } from './commands/explain.js';
import { EXIT } from './exit-codes.js';

const TENANT = '7b0c2c52-9e42-4a43-9a5c-3c2f4f7b8e11';
const ROUTE = 'c1b5d4a2-1111-4b4b-8c8c-222233334444';
const OTHER_ROUTE = 'd2c6e5b3-2222-4c5c-9d9d-333344445555';
const ORIGIN = 'e3d7f6c4-3333-4d6d-8e8e-444455556666';

const answer = {
  tenant_id: TENANT,
  position: '57',
  version: '42',
  request: { method: 'GET', host: 'acme.vantageedge.dev', path: '/api/users/1', query: '' },
  host: {
    resolves: true,
    kind: 'subdomain',
    host: 'acme.vantageedge.dev',
    reason: 'the subdomain host of this tenant (acme)',
  },
  path: { normalized: '/api/users/1', reason: null },
  route: {
    id: ROUTE,
    path_pattern: '/api/users/:id',
    methods: ['GET'],
    priority: 0,
    rank: 0,
    method_matches: true,
    path_matches: true,
    selected: true,
    reason: 'the first route in match order whose method and path match',
  },
  routes: [
    {
      id: ROUTE,
      path_pattern: '/api/users/:id',
      methods: ['GET'],
      priority: 0,
      rank: 0,
      method_matches: true,
      path_matches: true,
      selected: true,
      reason: '',
    },
    {
      id: OTHER_ROUTE,
      path_pattern: '/api/*',
      methods: ['POST'],
      priority: 0,
      rank: 1,
      method_matches: false,
      path_matches: true,
      selected: false,
      reason: 'method GET is not accepted (POST)',
    },
  ],
  auth: {
    mode: 'apikey_required',
    required_scopes: [],
    credential: { kind: 'api_key', status: 'revoked', name: 'old laptop' },
    identity: { kind: 'anonymous' },
    outcome: { ok: false, status: 401, code: 'invalid_api_key', message: 'the API key is not valid' },
    notes: [],
  },
  rate_limits: {
    policy_header: '"route";q=2;w=60',
    limits: [
      {
        name: 'route',
        level: 'route',
        scope: 'ip',
        algorithm: 'sliding_window',
        capacity: 2,
        refill_per_second: null,
        window_seconds: 60,
        accuracy: 'exact',
        on_store_failure: 'open',
        key: 'rl:{t}:r:x:sw:',
      },
    ],
  },
  cache: {
    enabled: true,
    decision: 'lookup',
    reason: null,
    ttl_seconds: 30,
    key: {
      pattern: 'path+query',
      vary_headers: [],
      per_caller: true,
      path_digest: 'p1',
      variant_digest: null,
    },
  },
  upstream: {
    origin_id: ORIGIN,
    origin_name: 'users-service',
    targets: [{ url: 'http://10.0.0.1:8080', weight: 1 }],
    load_balancing: { algorithm: 'round_robin' },
    timeout_seconds: 30,
    strip_prefix: '/api',
    forwarded_path: '/users/1',
  },
  policies: null,
  decision: { stage: 'auth', status: 401, code: 'invalid_api_key', message: 'the API key is not valid' },
};

const servers: Array<{ close(): void }> = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.close();
});

async function body(req: IncomingMessage): Promise<unknown> {
  let text = '';
  for await (const chunk of req) text += chunk;
  return text === '' ? null : JSON.parse(text);
}

const SHOP = '8c1d3d63-af53-4b54-8b6d-4d3a5a8c9f22';
const TENANTS = [
  { id: TENANT, name: 'Acme', subdomain: 'acme' },
  { id: SHOP, name: 'Shop', subdomain: 'shop' },
];

/** A stand-in admin API that records what the CLI sent: two tenants, acme with `domains` claimed. */
async function adminApi(
  explanation: unknown = answer,
  domains: Array<{ domain: string; status: 'pending' | 'verified' }> = [],
): Promise<{
  url: string;
  received: Array<{ method: string; url: string; body: unknown }>;
}> {
  const received: Array<{ method: string; url: string; body: unknown }> = [];
  const server = createServer(async (req, res) => {
    received.push({ method: req.method ?? '', url: req.url ?? '', body: await body(req) });
    res.setHeader('content-type', 'application/json');
    if (req.url?.startsWith('/api/v1/tenants?')) {
      res.end(JSON.stringify({ data: TENANTS, next_cursor: null }));
      return;
    }
    const listing = /^\/api\/v1\/tenants\/([0-9a-f-]+)\/domains$/.exec(req.url ?? '');
    if (listing) {
      const claimed = listing[1] === TENANT ? domains : [];
      const data = claimed.map((claim) => ({ ...claim, tenant_id: listing[1] }));
      res.end(JSON.stringify({ data, next_cursor: null }));
      return;
    }
    res.end(JSON.stringify(explanation));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received };
}

const explained = (api: { received: Array<{ method: string; url: string }> }) =>
  api.received.filter((request) => request.method === 'POST').map((request) => request.url);

async function run(argv: string[], env: NodeJS.ProcessEnv) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, {
    env,
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
    stdin: async () => '',
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('vantageedge explain', () => {
  // The host and the rest of the URL were read by two overlapping patterns: a URL the pattern refused
  // was retried with every shorter host, each time rescanning the rest (a 16 KiB host: over a second).
  it('refuses a URL with a long host and a space in it in one pass', () => {
    const url = `http://${'a'.repeat(150_000)} x`;
    expect(() => splitRequestUrl(url)).toThrow(/not an http\(s\) URL/);
  });

  it('splits a URL without normalising its path, and reads curl-style headers', () => {
    expect(splitRequestUrl('https://acme.vantageedge.dev:8443/a/../b//c?x=1')).toEqual({
      scheme: 'https',
      host: 'acme.vantageedge.dev:8443',
      path: '/a/../b//c?x=1',
    });
    expect(splitRequestUrl('http://acme.test')).toEqual({ scheme: 'http', host: 'acme.test', path: '/' });
    expect(() => splitRequestUrl('acme.test/x')).toThrow(/not an http\(s\) URL/);
    expect(parseHeaders(['X-API-Key: ve_live_abc', 'Accept: a', 'accept: b'])).toEqual({
      'x-api-key': 've_live_abc',
      accept: ['a', 'b'],
    });
    expect(() => parseHeaders(['no colon'])).toThrow(/Name: value/);
  });

  it('reads a header named like a member every object has (Constructor, __proto__) as any other', () => {
    // A traffic split may be sticky on such a header: explain must send it as typed.
    expect(JSON.stringify(parseHeaders(['Constructor: u1']))).toBe('{"constructor":"u1"}');
    expect(JSON.stringify(parseHeaders(['Constructor: a', 'constructor: b']))).toBe(
      '{"constructor":["a","b"]}',
    );
    expect(JSON.stringify(parseHeaders(['__proto__: a', '__proto__: b', 'X-A: 1']))).toBe(
      '{"__proto__":["a","b"],"x-a":"1"}',
    );
  });

  it('prints the decision first, then every step in the gateway order', () => {
    const text = formatExplanation('GET', 'https://acme.vantageedge.dev/api/users/1', answer as never);
    const lines = text.split('\n');
    expect(lines[0]).toBe('GET https://acme.vantageedge.dev/api/users/1');
    expect(text).toContain('Decision  401 invalid_api_key (at auth): the API key is not valid');
    expect(text).toContain('Route     GET /api/users/:id (priority 0');
    expect(text).toContain('    POST /api/*: method GET is not accepted (POST)');
    expect(text).toContain('Auth      apikey_required: API key "old laptop" revoked → 401 invalid_api_key');
    expect(text).toContain('    route: sliding_window 2 per 60s (exact), counter rl:{t}:r:x:sw:');
    expect(text).toContain('Cache     lookup, ttl 30s, key path+query per caller');
    expect(text).toContain(
      'Upstream  users-service: http://10.0.0.1:8080 (weight 1), round_robin; the origin sees /users/1',
    );
    expect(text.indexOf('Host')).toBeLessThan(text.indexOf('Route'));
    expect(text.indexOf('Route')).toBeLessThan(text.indexOf('Auth'));
  });

  it('prints the quotas a request spends between the limits and the cache, with what is left of each', () => {
    const quota = (counts: string, used: number | null) => ({
      windows: [
        {
          subject: 'tenant',
          api_key_id: null,
          period: 'month',
          limit: 1000,
          key: `q:{${TENANT}}:tenant:month:202611`,
          resets_at: '2026-12-01T00:00:00.000Z',
          used,
          remaining: used === null ? null : 1000 - used,
        },
      ],
      counts,
      reason: "the tenant's quota applies",
    });
    const text = formatExplanation('GET', 'https://acme.vantageedge.dev/api/users/1', {
      ...answer,
      quota: quota('read', 998),
    } as never);
    expect(text).toContain("Quota     the tenant's quota applies");
    expect(text).toContain(
      `    tenant: 998 of 1000 a month used, 2 left until 2026-12-01T00:00:00.000Z, counter q:{${TENANT}}:tenant:month:202611`,
    );
    expect(text.indexOf('Limits')).toBeLessThan(text.indexOf('Quota'));
    expect(text.indexOf('Quota')).toBeLessThan(text.indexOf('Cache'));
    const unknown = formatExplanation('GET', 'https://acme.vantageedge.dev/api/users/1', {
      ...answer,
      quota: quota('unknown', null),
    } as never);
    expect(unknown).toContain('    tenant: 1000 a month, used unknown, until 2026-12-01T00:00:00.000Z');
    const none = formatExplanation('GET', 'https://acme.vantageedge.dev/api/users/1', {
      ...answer,
      quota: { windows: [], counts: 'not_read', reason: 'no quota applies: the tenant has none' },
    } as never);
    expect(none).toContain('Quota     none (no quota applies: the tenant has none)');
  });

  it('says how an origin’s https certificates are verified when it is not the default', () => {
    const upstream = (tls: unknown) =>
      formatExplanation('GET', 'https://acme.vantageedge.dev/api/users/1', {
        ...answer,
        upstream: { ...answer.upstream, tls },
      } as never);
    const verified = { verify: true, server_name: null, own_ca_certificates: false };
    expect(upstream(verified)).not.toContain('certificates');
    expect(upstream({ ...verified, verify: false })).toContain('https certificates NOT verified');
    expect(upstream({ ...verified, server_name: 'backend.internal', own_ca_certificates: true })).toContain(
      "https certificates verified for backend.internal against the origin's own CAs",
    );
    expect(upstream({ ...verified, verify_depth: 1 })).toContain(
      'https certificates verified, at most 1 intermediate CAs',
    );
    const certificateId = '5b0c1a64-8d5e-4d2b-9f3e-2a7f1c9e0b11';
    expect(upstream({ ...verified, client_certificate_id: certificateId })).toContain(
      `presents client certificate ${certificateId} to the origin`,
    );
  });

  it('names the Host the origin gets when the route preserves the client’s', () => {
    const upstream = (hostHeader: unknown) =>
      formatExplanation('GET', 'https://ACME.vantageedge.dev/api/users/1', {
        ...answer,
        upstream: { ...answer.upstream, host_header: hostHeader },
      } as never);
    expect(upstream('acme.vantageedge.dev')).toContain(
      'the origin sees /users/1 with Host acme.vantageedge.dev (preserve_host)',
    );
    expect(upstream(null)).not.toContain('preserve_host');
    expect(upstream(undefined)).not.toContain('preserve_host');
  });

  it('prints the route policies in the gateway order: IP rules and CORS before auth, the rest after it', () => {
    const withPolicies = {
      ...answer,
      policies: {
        ip_rules: {
          source: 'route',
          allow: [],
          deny: ['203.0.113.0/24'],
          client_ip: null,
          verdict: 'depends_on_client_address',
          reason: 'depends on the client address (give client_ip to judge it)',
        },
        cors: {
          preflight: false,
          origin: 'https://app.example.com',
          origin_allowed: true,
          answered_by_gateway: false,
          status: null,
          reason: 'an allowed origin: the answer carries Access-Control-Allow-Origin',
        },
        request_headers: { set: { 'x-tenant': 'acme' }, add: {}, remove: ['cookie'] },
        response_headers: null,
        query: null,
        rewrite_path: { path: '/internal/users/1', rewritten: true },
        timeouts: { connect_ms: 200, response_headers_ms: 30000, idle_ms: 30000, source: 'route' },
        retries: { attempts: 3, on: ['connect_error', '503'], methods: ['GET'] },
        traffic_split: {
          origins: [
            { origin_id: 'o', origin_name: 'stable', weight: 95, percent: 95 },
            { origin_id: 'c', origin_name: 'canary', weight: 5, percent: 5 },
          ],
          sticky: { cookie: 'session' },
          chosen_by: 'weights: round robin by weight on each gateway replica',
        },
        fixed_response: null,
        redirect: null,
      },
    };
    const text = formatExplanation('GET', 'https://acme.vantageedge.dev/api/users/1', withPolicies as never);
    expect(text).toContain(
      'IP rules  route: deny 203.0.113.0/24 → depends_on_client_address (depends on the client address (give client_ip to judge it))',
    );
    expect(text).toContain('CORS      actual request: an allowed origin');
    expect(text).toContain('Headers   request: set x-tenant=acme, remove cookie');
    expect(text).toContain('Rewrite   the origin sees /internal/users/1');
    expect(text).toContain('Timeouts  connect 200 ms, response headers 30000 ms, idle 30000 ms (route)');
    expect(text).toContain('Retries   3 attempts in all, on connect_error, 503, for GET');
    expect(text).toContain(
      'Split     stable 95% (weight 95), canary 5% (weight 5); sticky on cookie session; weights: round robin by weight on each gateway replica',
    );
    expect(text.indexOf('IP rules')).toBeLessThan(text.indexOf('Auth'));
    expect(text.indexOf('CORS')).toBeLessThan(text.indexOf('Auth'));
    expect(text.indexOf('Auth')).toBeLessThan(text.indexOf('Timeouts'));
    expect(text.indexOf('Timeouts')).toBeLessThan(text.indexOf('Upstream'));

    const redirected = {
      ...withPolicies,
      policies: {
        ...withPolicies.policies,
        ip_rules: null,
        cors: null,
        traffic_split: null,
        redirect: { status: 308, location: 'https://new.example.com/api/users/1' },
      },
    };
    expect(
      formatExplanation('GET', 'https://acme.vantageedge.dev/api/users/1', redirected as never),
    ).toContain('Answer    redirect 308 to https://new.example.com/api/users/1 from the gateway');
  });

  it('finds the tenant by the URL host and posts the request, the headers and --at to the admin API', async () => {
    const api = await adminApi();
    const env = { VANTAGEEDGE_URL: api.url, VANTAGEEDGE_TOKEN: 'admin-token' };
    const result = await run(
      [
        'explain',
        'get',
        'https://acme.vantageedge.dev/api/users/1?b=2',
        '-H',
        'x-api-key: ve_live_k',
        '--at',
        '12',
        '--json',
      ],
      env,
    );
    expect(result.code).toBe(EXIT.ok);
    expect(JSON.parse(result.out)).toEqual(answer);
    const posted = api.received.find((request) => request.method === 'POST');
    expect(posted).toEqual({
      method: 'POST',
      url: `/api/v1/tenants/${TENANT}/explain`,
      body: {
        method: 'GET',
        scheme: 'https',
        host: 'acme.vantageedge.dev',
        path: '/api/users/1?b=2',
        headers: { 'x-api-key': 've_live_k' },
        at_position: '12',
      },
    });
    const human = await run(['explain', 'GET', 'https://acme.vantageedge.dev/api/users/1'], env);
    expect(human.out).toContain('Decision  401 invalid_api_key');
  });

  // A route's match.scheme (an http→https redirect) and the cache key read the scheme: an http:// URL
  // explained as https showed the route HTTPS requests reach, not the redirect plain ones get.
  it('explains the URL with its scheme: an http:// URL as a plain-HTTP request', async () => {
    const api = await adminApi();
    const env = { VANTAGEEDGE_URL: api.url, VANTAGEEDGE_TOKEN: 'admin-token' };
    expect((await run(['explain', 'GET', 'HTTP://acme.vantageedge.dev/a', '--json'], env)).code).toBe(
      EXIT.ok,
    );
    expect((await run(['explain', 'GET', 'https://acme.vantageedge.dev/a', '--json'], env)).code).toBe(
      EXIT.ok,
    );
    const posted = api.received.filter((request) => request.method === 'POST');
    expect(posted.map((request) => (request.body as { scheme?: string }).scheme)).toEqual(['http', 'https']);
  });

  it('refuses an answer that is not an explanation, naming what is wrong, instead of printing half of it', async () => {
    const { decision: _, ...withoutDecision } = answer;
    const api = await adminApi({ ...withoutDecision, routes: 'none' });
    const env = { VANTAGEEDGE_URL: api.url, VANTAGEEDGE_TOKEN: 'admin-token' };
    for (const argv of [
      ['explain', 'GET', 'https://acme.vantageedge.dev/api/users/1'],
      ['explain', 'GET', 'https://acme.vantageedge.dev/api/users/1', '--json'],
    ]) {
      const result = await run(argv, env);
      expect(result.code).toBe(EXIT.unavailable);
      expect(result.out).toBe('');
      expect(result.err).toContain('the admin API answered explain with something this CLI cannot read');
      expect(result.err).toMatch(/^ {2}routes: .*array/m);
      expect(result.err).toMatch(/^ {2}decision: /m);
    }
  });

  // Regression: a tenant was picked by the URL's first label alone, so acme's custom domain
  // api.acme-corp.com was explained with the config of the tenant whose subdomain is `api`.
  it('refuses a guessed tenant that does not serve the URL host, asking for -t', async () => {
    const notServed = {
      ...answer,
      host: { resolves: false, kind: null, host: 'acme.acme-corp.com', reason: 'no tenant serves this host' },
    };
    const api = await adminApi(notServed, [{ domain: 'acme.acme-corp.com', status: 'pending' }]);
    const env = { VANTAGEEDGE_URL: api.url, VANTAGEEDGE_TOKEN: 't' };
    const guessed = await run(['explain', 'GET', 'https://acme.acme-corp.com/api/users/1'], env);
    expect(guessed.code).toBe(EXIT.notFound);
    expect(guessed.out).toBe('');
    expect(guessed.err).toContain('acme does not serve acme.acme-corp.com');
    expect(guessed.err).toContain('-t');
    const named = await run(['explain', 'GET', 'https://acme.acme-corp.com/api/users/1', '-t', 'acme'], env);
    expect(named.code).toBe(EXIT.ok);
    expect(named.out).toContain('Host      acme.acme-corp.com: no tenant serves this host');
  });

  // Regression: the tenant of a host was looked for in settings.custom_domains, which the admin API
  // does not return, so a custom domain never matched and the tenant whose subdomain was the host's
  // first label was explained instead (shop.example.com: tenant shop, not the domain's tenant acme).
  it("finds a custom domain's tenant in the tenants' domain listings, whatever its first label", async () => {
    const api = await adminApi(answer, [{ domain: 'shop.example.com', status: 'verified' }]);
    const env = { VANTAGEEDGE_URL: api.url, VANTAGEEDGE_TOKEN: 't' };
    const result = await run(['explain', 'GET', 'https://Shop.Example.com:8443/api/users/1'], env);
    expect(result.err).toBe('');
    expect(result.code).toBe(EXIT.ok);
    expect(explained(api)).toEqual([`/api/v1/tenants/${TENANT}/explain`]);
  });

  it('takes a subdomain host only under a platform base domain, as the gateways do', async () => {
    const api = await adminApi();
    const env = { VANTAGEEDGE_URL: api.url, VANTAGEEDGE_TOKEN: 't' };
    expect((await run(['explain', 'GET', 'http://shop.localhost:8080/'], env)).code).toBe(EXIT.ok);
    const ownBase = { ...env, PLATFORM_BASE_DOMAINS: 'edge.example.net' };
    expect((await run(['explain', 'GET', 'https://shop.edge.example.net/'], ownBase)).code).toBe(EXIT.ok);
    expect(explained(api)).toEqual([`/api/v1/tenants/${SHOP}/explain`, `/api/v1/tenants/${SHOP}/explain`]);

    for (const [host, why] of [
      ['shop.example.com', 'no tenant has claimed the custom domain shop.example.com'],
      ['shop.localhost', 'no tenant has claimed the custom domain shop.localhost'],
      ['nobody.edge.example.net', 'no tenant has the subdomain nobody'],
      ['a.shop.edge.example.net', 'no tenant is served on a.shop.edge.example.net'],
    ] as const) {
      const result = await run(['explain', 'GET', `https://${host}/`], ownBase);
      expect(result.code, host).toBe(EXIT.notFound);
      expect(result.err, host).toContain(why);
      expect(result.err, host).toContain('-t');
    }
    expect(explained(api)).toHaveLength(2);
  });

  it('refuses base domains it cannot read, naming the variable', async () => {
    const api = await adminApi();
    const env = { VANTAGEEDGE_URL: api.url, VANTAGEEDGE_TOKEN: 't', PLATFORM_BASE_DOMAINS: 'bad domain' };
    const result = await run(['explain', 'GET', 'https://shop.localhost/'], env);
    expect(result.code).toBe(EXIT.usage);
    expect(result.err).toContain('PLATFORM_BASE_DOMAINS');
    expect(explained(api)).toEqual([]);
  });

  it('exits 2 for a URL it cannot read', async () => {
    const api = await adminApi();
    const result = await run(['explain', 'GET', 'ftp://x'], {
      VANTAGEEDGE_URL: api.url,
      VANTAGEEDGE_TOKEN: 't',
    });
    expect(result.code).toBe(EXIT.usage);
    expect(result.err).toContain('not an http(s) URL');
  });
});
