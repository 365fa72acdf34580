// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} is the route policies' own value-template syntax

/**
 * One POST /api/v1/routes body per route policy: the OpenAPI document shows them as the request's
 * examples and the README's "Route policies" section uses the same bodies in its curl examples (a test
 * holds the two together and another sends every example to the real API). The ids are placeholders.
 */
export const EXAMPLE_TENANT_ID = '11111111-1111-4111-8111-111111111111';
export const EXAMPLE_ORIGIN_ID = '22222222-2222-4222-8222-222222222222';
export const EXAMPLE_CANARY_ORIGIN_ID = '33333333-3333-4333-8333-333333333333';

export interface RoutePolicyExample {
  summary: string;
  value: Record<string, unknown>;
}

const route = (fields: Record<string, unknown>) => ({
  tenant_id: EXAMPLE_TENANT_ID,
  origin_id: EXAMPLE_ORIGIN_ID,
  auth_mode: 'public',
  ...fields,
});

export const ROUTE_POLICY_EXAMPLES: Record<string, RoutePolicyExample> = {
  cors: {
    summary:
      'CORS on a JWT route: preflights answered by the gateway before auth, WebSockets opened by other sites refused',
    value: route({
      path_pattern: '/api/*',
      auth_mode: 'jwt_required',
      cors: {
        allow_origins: ['https://app.example.com', 'https://*.example.com'],
        allow_methods: ['GET', 'POST'],
        allow_headers: ['authorization', 'content-type'],
        expose_headers: ['x-request-id'],
        allow_credentials: true,
        max_age_seconds: 600,
      },
    }),
  },
  ip_rules: {
    summary: 'IP allow and deny lists (IPv4 and IPv6 CIDRs; deny wins; 403 ip_denied)',
    value: route({
      path_pattern: '/admin/*',
      ip_rules: { allow: ['10.0.0.0/8', '2001:db8::/32'], deny: ['10.0.13.0/24'] },
    }),
  },
  transforms: {
    summary: 'Header, path and query transforms',
    value: route({
      path_pattern: '/v1/*',
      request_headers: {
        set: { 'x-client-ip': '${client_ip}' },
        add: { 'x-tenant': '${tenant_id}' },
        remove: ['cookie'],
      },
      response_headers: { set: { 'cache-control': 'no-store' }, remove: ['server'] },
      rewrite_path: { from_prefix: '/v1', to_prefix: '/api/v1' },
      query: { add: { source: 'gateway' }, remove: ['debug'] },
    }),
  },
  preserve_host: {
    summary: "The client's Host to the origin (name-based virtual hosting, absolute URLs), not the target's",
    value: route({ path_pattern: '/site/*', preserve_host: true }),
  },
  path_template: {
    summary: 'Path rewrite by :param segments (no regex)',
    value: route({
      path_pattern: '/users/:id/orders/*',
      rewrite_path: { template: '/v2/customers/:id/orders/*' },
    }),
  },
  timeouts_and_retries: {
    summary: 'Timeouts that override the origin’s, and retries on another target',
    value: route({
      path_pattern: '/catalog/*',
      timeouts: { connect_ms: 1000, response_headers_ms: 5000, idle_ms: 10000 },
      retries: {
        attempts: 3,
        on: ['connect_error', 'reset', '502', '503', '504'],
        methods: ['GET', 'HEAD', 'PUT'],
        backoff: { base_ms: 25, max_ms: 250 },
        budget: { percent: 20, min_retries: 3 },
      },
    }),
  },
  limits: {
    summary: 'Body and header size limits for one route (below the global ones)',
    value: route({
      path_pattern: '/upload',
      methods: ['POST'],
      max_body_bytes: 1048576,
      max_header_bytes: 8192,
    }),
  },
  traffic_split: {
    summary: 'Canary 95/5, sticky by cookie, x-canary: always forces the canary',
    value: route({
      path_pattern: '/shop/*',
      traffic_split: {
        origins: [
          { origin_id: EXAMPLE_ORIGIN_ID, weight: 95 },
          { origin_id: EXAMPLE_CANARY_ORIGIN_ID, weight: 5 },
        ],
        sticky: { cookie: 'session' },
        overrides: [{ header: 'x-canary', value: 'always', origin_id: EXAMPLE_CANARY_ORIGIN_ID }],
      },
    }),
  },
  match: {
    summary: 'Matching on headers and query beyond path and method',
    value: route({
      path_pattern: '/api/*',
      match: {
        headers: [{ name: 'x-api-version', exact: '2' }],
        query: [{ name: 'beta', present: true }],
      },
    }),
  },
  maintenance: {
    summary: 'Maintenance mode: a fixed 503 with Retry-After; the origin is never called',
    value: route({
      origin_id: null,
      path_pattern: '/*',
      priority: 100,
      fixed_response: {
        status: 503,
        headers: { 'retry-after': '3600' },
        body: '{"message":"down for maintenance"}',
        content_type: 'application/json',
      },
    }),
  },
  redirect: {
    summary: 'A redirect with a location template; the origin is never called',
    value: route({
      origin_id: null,
      path_pattern: '/old/*',
      redirect: { status: 308, location: 'https://new.example.com${path}${query}' },
    }),
  },
  https_redirect: {
    summary: 'Plain HTTP redirected to HTTPS (match.scheme); HTTPS requests go on to the routes below it',
    value: route({
      origin_id: null,
      path_pattern: '/*',
      priority: 10000,
      match: { scheme: 'http' },
      redirect: { status: 301, location: 'https://${host}${path}${query}' },
    }),
  },
};
