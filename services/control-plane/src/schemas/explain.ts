import { loadBalancing } from '@vantageedge/shared/domain/gateway-config';
import {
  queryTransform,
  requestHeaderTransform,
  responseHeaderTransform,
  retryPolicy,
  rewritePath,
} from '@vantageedge/shared/domain/route-policies';
import { z } from 'zod';

/** POST /api/v1/tenants/:id/explain: the request to explain, and the answer (for /openapi.json). */

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,100}$/;
const METHOD = /^[A-Za-z]{1,20}$/;

export const explainBody = z.strictObject({
  method: z
    .string()
    .regex(METHOD, 'must be an HTTP method such as GET or POST')
    .transform((method) => method.toUpperCase()),
  host: z
    .string()
    .min(1, 'must not be empty')
    .max(300, 'must be at most 300 characters')
    .meta({ description: 'the Host the request is sent to (port and trailing dot allowed)' }),
  path: z
    .string()
    .min(1, 'must not be empty')
    .max(8192, 'must be at most 8192 characters')
    .startsWith('/', 'must start with /')
    .meta({ description: 'the request target as sent (may carry ?query)' }),
  headers: z
    .record(
      z.string().regex(HEADER_NAME, 'must be a header name'),
      z.union([z.string().max(8192), z.array(z.string().max(8192)).max(20)]),
    )
    .refine((headers) => Object.keys(headers).length <= 100, 'at most 100 headers')
    .optional()
    .meta({ description: 'request headers (credentials are read, never returned)' }),
  query: z
    .string()
    .max(8192, 'must be at most 8192 characters')
    .optional()
    .meta({ description: 'the query string without ?, when not in path' }),
  at_position: z
    .union([z.string().regex(/^\d{1,19}$/), z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)], {
      error: 'must be an event position (a non-negative integer)',
    })
    .transform((value) => BigInt(value))
    .optional()
    .meta({ description: 'explain with the config as it was after this event (default: now)' }),
  at_time: z.iso
    .datetime({ offset: true, error: 'must be an ISO 8601 date-time with an offset' })
    .optional()
    .meta({
      description:
        'when the request is (was) made: API-key and token expiry are judged at this moment (default: now)',
    }),
  client_ip: z
    .union([z.ipv4(), z.ipv6()])
    .optional()
    .meta({ description: 'the client address the gateways would see (limits keyed on the IP)' }),
});

const stage = z.enum([
  'host',
  'path',
  'route',
  'ip_rules',
  'cors',
  'auth',
  'fixed_response',
  'redirect',
  'rate_limit',
  'cache',
  'origin',
]);

const headerOrCookie = { header: z.string().optional(), cookie: z.string().optional() };

const policies = z
  .object({
    ip_rules: z
      .object({
        source: z.enum(['route', 'tenant']),
        allow: z.array(z.string()),
        deny: z.array(z.string()),
        client_ip: z.string().nullable(),
        verdict: z.enum(['allowed', 'denied', 'depends_on_client_address']),
        reason: z.string(),
      })
      .nullable(),
    cors: z
      .object({
        preflight: z.boolean(),
        origin: z.string().nullable(),
        origin_allowed: z.boolean().nullable(),
        answered_by_gateway: z.boolean(),
        status: z.number().int().nullable(),
        reason: z.string(),
        allow_methods: z.array(z.string()),
        allow_headers: z.array(z.string()),
        allow_credentials: z.boolean(),
      })
      .nullable(),
    request_headers: requestHeaderTransform.nullable(),
    response_headers: responseHeaderTransform.nullable(),
    query: queryTransform.nullable(),
    rewrite_path: z
      .object({
        rule: rewritePath,
        path: z.string().meta({ description: 'the path the origin receives' }),
        rewritten: z.boolean(),
      })
      .nullable(),
    timeouts: z.object({
      connect_ms: z.number().nullable(),
      response_headers_ms: z.number().nullable(),
      idle_ms: z.number().nullable(),
      source: z.enum(['route', 'origin']),
    }),
    retries: retryPolicy.nullable(),
    traffic_split: z
      .object({
        origins: z.array(
          z.object({
            origin_id: z.uuid(),
            origin_name: z.string().nullable(),
            weight: z.number(),
            percent: z.number(),
          }),
        ),
        sticky: z.object(headerOrCookie).nullable(),
        overrides: z.array(z.object({ ...headerOrCookie, value: z.string(), origin_id: z.uuid() })),
        chosen_by: z.string(),
      })
      .nullable(),
    fixed_response: z
      .object({
        status: z.number().int(),
        content_type: z.string(),
        headers: z.record(z.string(), z.string()),
      })
      .nullable(),
    redirect: z.object({ status: z.number().int(), location: z.string() }).nullable(),
  })
  .nullable()
  .meta({ description: 'the route policies that apply to the request; null without a route' });

const routeVerdict = z.object({
  id: z.uuid(),
  path_pattern: z.string(),
  methods: z.array(z.string()),
  priority: z.number().int(),
  rank: z.number().int().nullable().meta({ description: 'position in match order; null: skipped' }),
  method_matches: z.boolean(),
  path_matches: z.boolean(),
  selected: z.boolean(),
  reason: z.string(),
});

const outcome = z.object({
  ok: z.boolean(),
  status: z.number().int().nullable(),
  code: z.string().nullable(),
  message: z.string(),
});

export const explanationResource = z.object({
  tenant_id: z.uuid(),
  position: z.string().meta({ description: 'the event position explained at' }),
  version: z.string().meta({ description: 'the config (snapshot) version the gateways had then' }),
  request: z.object({ method: z.string(), host: z.string(), path: z.string(), query: z.string() }),
  host: z.object({
    resolves: z.boolean(),
    kind: z.enum(['subdomain', 'custom_domain']).nullable(),
    host: z.string(),
    reason: z.string(),
  }),
  path: z.object({ normalized: z.string().nullable(), reason: z.string().nullable() }),
  route: routeVerdict.nullable(),
  routes: z
    .array(routeVerdict)
    .meta({ description: 'every route, in match order, and why it (does not) match' }),
  auth: z
    .object({
      mode: z.string(),
      required_scopes: z.array(z.string()),
      credential: z
        .object({
          kind: z.enum(['none', 'api_key', 'jwt']),
          status: z.enum(['valid', 'expired', 'revoked', 'unknown']).optional(),
          api_key_id: z.uuid().optional(),
          name: z.string().optional(),
          scopes: z.array(z.string()).optional(),
          verifier: z.enum(['clerk', 'oidc', 'service', 'none']).optional(),
          signature_checked: z.boolean().optional(),
          claims: z.record(z.string(), z.unknown()).optional(),
        })
        .meta({ description: 'what the credentials are; the key or token itself is never returned' }),
      identity: z.object({
        kind: z.enum(['anonymous', 'user', 'api_key', 'service']),
        user_id: z.string().optional(),
        api_key_id: z.string().optional(),
        service_id: z.string().optional(),
      }),
      outcome,
      notes: z.array(z.string()),
    })
    .nullable(),
  rate_limits: z
    .object({
      policy_header: z.string().nullable().meta({ description: 'RateLimit-Policy as the gateways send it' }),
      limits: z.array(
        z.object({
          name: z.string(),
          level: z.enum(['tenant', 'route']),
          scope: z.string(),
          algorithm: z.enum(['token_bucket', 'sliding_window']),
          capacity: z.number(),
          refill_per_second: z.number().nullable(),
          window_seconds: z.number().nullable(),
          accuracy: z.enum(['exact', 'fast']),
          on_store_failure: z.enum(['open', 'closed']),
          key: z.string().meta({ description: 'the counter the request is charged to' }),
        }),
      ),
    })
    .nullable(),
  cache: z
    .object({
      enabled: z.boolean(),
      decision: z.enum(['lookup', 'bypass', 'not_cached']),
      reason: z.string().nullable(),
      ttl_seconds: z.number().optional(),
      key: z
        .object({
          pattern: z.string(),
          vary_headers: z.array(z.string()),
          per_caller: z.boolean(),
          path_digest: z.string(),
          variant_digest: z.string().nullable(),
        })
        .optional(),
    })
    .nullable(),
  upstream: z
    .object({
      origin_id: z.uuid().nullable(),
      origin_name: z.string().nullable(),
      targets: z.array(z.object({ url: z.string(), weight: z.number() })).nullable(),
      load_balancing: loadBalancing.nullable(),
      timeout_seconds: z.number().nullable(),
      strip_prefix: z.string().nullable(),
      forwarded_path: z.string(),
    })
    .nullable(),
  policies,
  decision: z
    .object({ stage, status: z.number().int().nullable(), code: z.string().nullable(), message: z.string() })
    .meta({ description: 'the first step that answers the request; status null: the origin answers' }),
});
