import { z } from 'zod';
import { authMode, loadBalancing } from './gateway-config.js';
import {
  queryTransform,
  requestHeaderTransform,
  responseHeaderTransform,
  retryPolicy,
  rewritePath,
} from './route-policies.js';

/**
 * The answer of POST /api/v1/tenants/:id/explain: what the gateways would do with one request, step
 * by step (host → method → path → route → IP rules, CORS → auth → rate limit → quota → cache → origin), and
 * the first step that answers it. The control plane builds it, /openapi.json documents it, and the CLI and the
 * console read it with this schema.
 */

export const explainStage = z.enum([
  'host',
  'method',
  'path',
  'route',
  'ip_rules',
  'cors',
  'auth',
  'fixed_response',
  'redirect',
  'rewrite_path',
  'rate_limit',
  'quota',
  'cache',
  'origin',
]);
export type ExplainStage = z.infer<typeof explainStage>;

export const explainDecision = z
  .object({
    stage: explainStage,
    status: z.number().int().nullable(),
    code: z.string().nullable(),
    message: z.string(),
  })
  .meta({ description: 'the first step that answers the request; status null: the origin answers' });
export type ExplainDecision = z.infer<typeof explainDecision>;

export const routeVerdict = z.object({
  id: z.uuid(),
  path_pattern: z.string(),
  methods: z.array(z.string()),
  priority: z.number().int(),
  rank: z
    .number()
    .int()
    .nullable()
    .meta({ description: 'position in match order; null: a route the gateways skip (invalid pattern)' }),
  method_matches: z.boolean(),
  path_matches: z.boolean(),
  selected: z.boolean(),
  reason: z.string().meta({ description: 'why it does (not) handle the request' }),
});
export type RouteVerdict = z.infer<typeof routeVerdict>;

const headerOrCookie = { header: z.string().optional(), cookie: z.string().optional() };

export const policiesExplanation = z.object({
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
      answered_by_gateway: z
        .boolean()
        .meta({ description: 'whether the gateway answers the request itself (a preflight: 204 or 403)' }),
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
      rewritten: z.boolean().meta({
        description:
          'false: the rule leaves this path as it is, or would make it longer than 32 KiB (the gateways answer 414 uri_too_long, and so does the decision)',
      }),
    })
    .nullable(),
  timeouts: z.object({
    connect_ms: z.number().nullable(),
    response_headers_ms: z.number().nullable(),
    idle_ms: z.number().nullable(),
    source: z
      .enum(['route', 'origin'])
      .meta({ description: "route: the route's timeouts override the origin's timeout_seconds where set" }),
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
      chosen_by: z
        .string()
        .meta({ description: 'the origin an override or the sticky key picks for this request, when known' }),
    })
    .nullable(),
  fixed_response: z
    .object({
      status: z.number().int(),
      content_type: z.string(),
      headers: z.record(z.string(), z.string()),
    })
    .nullable(),
  redirect: z
    .object({
      status: z.number().int(),
      location: z.string().meta({
        description:
          'the Location for this request; the template as stored when the request would make it longer than 32 KiB (the gateways answer 414 uri_too_long, and so does the decision)',
      }),
    })
    .nullable(),
});
export type PoliciesExplanation = z.infer<typeof policiesExplanation>;

export const credentialReport = z
  .discriminatedUnion('kind', [
    z.object({ kind: z.literal('none') }),
    z.object({
      kind: z.literal('api_key'),
      status: z.enum(['valid', 'expired', 'revoked', 'unknown']).meta({
        description:
          'revoked: issued to this tenant by the explained position, no longer active then (revoked, rotated out, or expired and dropped from the config); unknown: not issued to it by then (the read models not yet at the position miss a key issued since: a note says so)',
      }),
      api_key_id: z.uuid().optional(),
      name: z.string().optional(),
      scopes: z.array(z.string()).optional(),
      expires_at: z.string().nullable().optional(),
    }),
    z.object({
      kind: z.literal('jwt'),
      verifier: z.enum(['clerk', 'oidc', 'service', 'none']),
      signature_checked: z.boolean().meta({
        description: "true: the signature was verified here; false: it needs the issuer's remote keys",
      }),
      claims: z
        .object({
          iss: z.string().optional(),
          sub: z.string().optional(),
          exp: z.number().optional(),
          org_id: z.string().optional(),
        })
        .optional(),
      scopes: z.array(z.string()).optional(),
    }),
  ])
  .meta({ description: 'what the credentials are; the key or token itself is never returned' });
export type CredentialReport = z.infer<typeof credentialReport>;

export const authOutcome = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), status: z.null(), code: z.null(), message: z.string() }),
  z.object({
    ok: z.literal(false),
    status: z.union([z.literal(401), z.literal(403)]),
    code: z.string(),
    message: z.string(),
  }),
]);
export type AuthOutcome = z.infer<typeof authOutcome>;

export const authExplanation = z.object({
  mode: authMode,
  required_scopes: z.array(z.string()),
  credential: credentialReport,
  identity: z
    .object({
      kind: z.enum(['anonymous', 'user', 'api_key', 'service']),
      user_id: z.string().optional(),
      api_key_id: z.string().optional(),
      service_id: z.string().optional(),
    })
    .meta({ description: 'the identity the route sees (what rate limits and a per-caller cache key on)' }),
  outcome: authOutcome,
  notes: z.array(z.string()),
});
export type AuthExplanation = z.infer<typeof authExplanation>;

export const rateLimitsExplanation = z.object({
  policy_header: z
    .string()
    .nullable()
    .meta({ description: 'RateLimit-Policy as the gateways send it (null without limits)' }),
  limits: z.array(
    z.object({
      name: z.string(),
      level: z.enum(['tenant', 'route']),
      scope: z.string(),
      algorithm: z.enum(['token_bucket', 'sliding_window']),
      capacity: z.number().meta({
        description:
          'token_bucket: the burst; sliding_window: requests per aligned window of window_seconds (a sliding-window counter: a request is judged on the current window plus the previous one, weighted by the share of it the last window_seconds cover)',
      }),
      refill_per_second: z.number().nullable(),
      window_seconds: z.number().nullable(),
      accuracy: z.enum(['exact', 'fast']),
      on_store_failure: z.enum(['open', 'closed']),
      key: z
        .string()
        .meta({ description: "the counter the request is charged to (before the store's prefix)" }),
    }),
  ),
});
export type RateLimitsExplanation = z.infer<typeof rateLimitsExplanation>;

export const quotaExplanation = z.object({
  windows: z
    .array(
      z.object({
        subject: z
          .enum(['tenant', 'api_key'])
          .meta({ description: "whose quota: the tenant's or the API key's" }),
        api_key_id: z.uuid().nullable(),
        period: z.enum(['day', 'month']).meta({ description: 'a UTC calendar day or month' }),
        limit: z.number().int(),
        key: z.string().meta({
          description:
            "the counter the request spends (before the store's prefix); a key that calls once the tenant's ledger of keys for the period is full (GATEWAY_QUOTA_TENANT_MAX_KEYS) counts on the period's shared overflow counter (…:key:*:…) instead, which used then reads",
        }),
        resets_at: z.string().meta({ description: 'when the period ends and the next starts at zero' }),
        used: z
          .number()
          .int()
          .nullable()
          .meta({ description: 'requests counted in the period so far; null unless counts is read' }),
        remaining: z.number().int().nullable(),
      }),
    )
    .meta({
      description:
        "the windows the request is checked against and counted in, in the gateways' order (the tenant's, then its API key's); empty: no quota applies",
    }),
  counts: z.enum(['read', 'unknown', 'not_read']).meta({
    description:
      "read: used and remaining are the gateways' counters now (read, never spent); unknown: the counters could not be read (the gateways then serve uncounted too, quotas fail open); not_read: no quota applies, the period is over, or the control plane has no access to the counters",
  }),
  reason: z.string(),
});
export type QuotaExplanation = z.infer<typeof quotaExplanation>;

export const cacheExplanation = z.object({
  enabled: z.boolean(),
  decision: z.enum(['lookup', 'bypass', 'not_cached']).meta({
    description: 'lookup: served from the cache when an entry is fresh (HIT), else fetched and maybe stored',
  }),
  reason: z.string().nullable().meta({
    description:
      "bypass: why the cache is not used (method, request_no_cache, bypass_header, …); lookup in standard mode: what the client's Cache-Control asks of a stored entry (request_no_cache: it is never served as it is, the origin is asked again; request_cache_control: only when fresh enough for the client's max-age, min-fresh or max-stale), else null",
  }),
  ttl_seconds: z.number().optional(),
  key: z
    .object({
      pattern: z.string(),
      vary_headers: z.array(z.string()),
      per_caller: z.boolean(),
      path_digest: z.string(),
      variant_digest: z.string().nullable().meta({
        description:
          "null: the caller is anonymous on a per-caller route (not cached), or the route's traffic split sends the request to one of several origins by its weights (split_variants)",
      }),
      split_variants: z
        .array(z.object({ origin_id: z.uuid(), variant_digest: z.string().nullable() }))
        .optional()
        .meta({
          description:
            "on a route with a traffic split: the key for each origin its weights may send the request to (each origin's answers are stored apart); which one a request gets is each gateway replica's round robin. A request a split's override or sticky key sends bypasses the cache",
        }),
    })
    .optional(),
});
export type CacheExplanation = z.infer<typeof cacheExplanation>;

export const upstreamExplanation = z.object({
  origin_id: z
    .uuid()
    .nullable()
    .meta({ description: 'null for a route that answers itself (fixed_response, redirect)' }),
  origin_name: z.string().nullable(),
  targets: z
    .array(
      z.object({
        url: z.string(),
        weight: z.number().meta({ description: '0: drained, the gateways send the target no new request' }),
      }),
    )
    .nullable()
    .meta({ description: 'null when the config has no such origin (the gateways answer 503)' }),
  load_balancing: loadBalancing.nullable(),
  timeout_seconds: z.number().nullable(),
  tls: z
    .object({
      verify: z.boolean(),
      server_name: z.string().nullable(),
      verify_depth: z.number().nullable().optional().meta({
        description: 'the most intermediate CA certificates allowed in its chain; null: no limit of its own',
      }),
      own_ca_certificates: z.boolean().meta({
        description: "true: only the origin's ca_certificates are trusted, not the gateways' store",
      }),
      client_certificate_id: z.string().nullable().optional().meta({
        description: 'the certificate the gateways present when the origin asks for one (mTLS); null: none',
      }),
    })
    .nullable()
    .optional()
    .meta({
      description: "how an https target's certificate is verified; null when the config has no such origin",
    }),
  strip_prefix: z.string().nullable(),
  host_header: z.string().nullable().optional().meta({
    description:
      "the Host the origin receives with the route's preserve_host (the client's host, lower case, without a trailing dot); null: each target's own host[:port] (absent from the answers of older control planes)",
  }),
  forwarded_path: z.string().meta({
    description:
      "the path and query the origin receives (after rewrite_path or strip_prefix, and the route's query transform; the values of credential parameters the transform writes read <redacted>, as in policies.query)",
  }),
});
export type UpstreamExplanation = z.infer<typeof upstreamExplanation>;

export const requestExplanation = z.object({
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
  auth: authExplanation.nullable(),
  rate_limits: rateLimitsExplanation.nullable(),
  quota: quotaExplanation
    .nullable()
    .optional()
    .meta({ description: 'the request quotas that apply (absent from the answers of older control planes)' }),
  cache: cacheExplanation.nullable(),
  upstream: upstreamExplanation.nullable(),
  policies: policiesExplanation
    .nullable()
    .meta({ description: 'the route policies that apply to the request; null without a route' }),
  decision: explainDecision,
});
export type RequestExplanation = z.infer<typeof requestExplanation>;

/**
 * Header lines (name and value, in the order sent) as an explain request's `headers` carries them:
 * names in lower case, a name sent on several lines as the list of its values, which the control plane
 * reads as the gateways read repeated lines. Gathered in a Map: a header may be named like a member
 * every object has (Constructor, __proto__), which assigning into a plain object would lose.
 */
export function explainRequestHeaders(
  lines: Iterable<readonly [name: string, value: string]>,
): Record<string, string | string[]> {
  const headers = new Map<string, string | string[]>();
  for (const [name, value] of lines) {
    const lower = name.toLowerCase();
    const previous = headers.get(lower);
    headers.set(
      lower,
      previous === undefined ? value : [...(Array.isArray(previous) ? previous : [previous]), value],
    );
  }
  return Object.fromEntries(headers);
}
