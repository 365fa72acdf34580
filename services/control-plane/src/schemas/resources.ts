import { USER_ROLES } from '@vantageedge/shared/domain/events';
import {
  authMode,
  cachePolicy,
  circuitBreaker,
  healthCheck,
  loadBalancing,
  originTarget,
  originTls,
  quotaPolicy,
  rateLimitPolicy,
  tenantSettings,
} from '@vantageedge/shared/domain/gateway-config';
import {
  corsPolicy,
  fixedResponse,
  ipRules,
  PRESERVE_HOST_DESCRIPTION,
  queryTransform,
  redirect,
  requestHeaderTransform,
  responseHeaderTransform,
  retryPolicy,
  rewritePath,
  routeMatch,
  routeTimeouts,
  trafficSplit,
} from '@vantageedge/shared/domain/route-policies';
import { z } from 'zod';

const resourceTagList = z
  .array(z.string())
  .meta({ description: 'the resource’s tags (filter lists with ?tags=, manage with select_tags)' });

/** The resources the admin API returns (commands and queries alike); documentation in /openapi.json. */

const timestamps = { created_at: z.iso.datetime(), updated_at: z.iso.datetime() };

export const tenantResource = z.object({
  id: z.uuid(),
  name: z.string(),
  subdomain: z.string(),
  clerk_org_id: z.string().nullable(),
  settings: tenantSettings,
  ...timestamps,
});

export const userResource = z.object({
  id: z.uuid(),
  tenant_id: z.uuid(),
  clerk_user_id: z.string(),
  email: z.string(),
  role: z.enum(USER_ROLES),
  ...timestamps,
});

export const originResource = z.object({
  id: z.uuid(),
  tenant_id: z.uuid(),
  name: z.string(),
  url: z.string().describe("the first target's url"),
  targets: z.array(originTarget),
  health_check_path: z.string(),
  timeout_seconds: z.number().int(),
  load_balancing: loadBalancing,
  health_check: healthCheck,
  circuit_breaker: circuitBreaker,
  tls: originTls,
  tags: resourceTagList,
  ...timestamps,
});

export const routeResource = z.object({
  id: z.uuid(),
  tenant_id: z.uuid(),
  origin_id: z.uuid().nullable(),
  path_pattern: z.string(),
  methods: z.array(z.string()),
  priority: z.number().int(),
  auth_mode: authMode,
  required_scopes: z.array(z.string()),
  require_tenant_org: z.boolean(),
  allow_any_authenticated_user: z.boolean(),
  websocket_token: z.enum(['header', 'query', 'subprotocol']),
  strip_prefix: z.string().nullable(),
  rate_limit: rateLimitPolicy.nullable(),
  cache_policy: cachePolicy.nullable(),
  match: routeMatch.nullable().meta({
    description:
      'exact/prefix values of header and query conditions are shown to callers who may change the route (write access); read-only callers (members, viewers) see "<redacted>", which is refused as a value',
  }),
  cors: corsPolicy.nullable(),
  ip_rules: ipRules.nullable(),
  request_headers: requestHeaderTransform.nullable().meta({
    description:
      'set/add values of credential headers (authorization, cookie, x-api-key, names containing token, secret, password, session, …) are write-only: every read shows "<redacted>"; written back, "<redacted>" keeps the stored value',
  }),
  response_headers: responseHeaderTransform.nullable(),
  rewrite_path: rewritePath.nullable(),
  preserve_host: z.boolean().meta({ description: PRESERVE_HOST_DESCRIPTION }),
  query: queryTransform.nullable().meta({
    description:
      'set/add values of credential query parameters (those of credential headers, e.g. api_key, access_token, client_secret, X-Amz-Signature, and key, sig, auth, hmac, jwt, code, access_key, subscription-key) are write-only: every read shows "<redacted>"; written back, "<redacted>" keeps the stored value',
  }),
  timeouts: routeTimeouts.nullable(),
  retries: retryPolicy.nullable(),
  max_body_bytes: z.number().int().nullable(),
  max_header_bytes: z.number().int().nullable(),
  traffic_split: trafficSplit.nullable().meta({
    description:
      'override values are shown to callers who may change the route (write access); read-only callers (members, viewers) see "<redacted>", which is refused as a value',
  }),
  fixed_response: fixedResponse.nullable(),
  redirect: redirect.nullable(),
  tags: resourceTagList,
  ...timestamps,
});

export const apiKeyResource = z.object({
  id: z.uuid(),
  tenant_id: z.uuid(),
  name: z.string(),
  key_prefix: z.string(),
  scopes: z.array(z.string()),
  expires_at: z.iso.datetime().nullable(),
  revoked_at: z.iso.datetime().nullable(),
  replaced_by: z.uuid().nullable(),
  quota: quotaPolicy.nullable(),
  tags: resourceTagList,
  ...timestamps,
});

/** One quota period of a key as the gateways count it (Redis), e.g. today so far. */
export const quotaWindowResource = z.object({
  period: z.enum(['day', 'month']),
  limit: z.number().int(),
  used: z.number().int(),
  remaining: z.number().int(),
  resets_at: z.iso.datetime(),
});

/** GET /api/v1/api-keys/{id}: the key with what is left of its quota (null: no quota, or unknown). */
export const apiKeyWithQuotaResource = apiKeyResource.extend({
  quota_usage: z
    .array(quotaWindowResource)
    .nullable()
    .describe(
      "what is left of the quota now, per period: the UTC day and month Redis's clock is in, as the gateways count; null without a quota or when Redis is unreachable",
    ),
});

export const issuedApiKeyResource = apiKeyWithQuotaResource.extend({
  key: z.string().describe('the plaintext key; shown only in this response'),
});

export const customDomainResource = z.object({
  id: z.uuid(),
  tenant_id: z.uuid(),
  domain: z.string().describe('canonical host name: lower-case, punycode, no port'),
  status: z
    .enum(['pending', 'verified'])
    .describe('pending: the name is reserved for this tenant but serves nothing; verified: it serves'),
  verification: z.object({
    type: z.literal('dns-txt'),
    name: z.string().describe('the TXT record to create: _vantageedge-challenge.<domain>'),
    value: z.string().describe('the value it must hold'),
    expires_at: z.iso
      .datetime()
      .nullable()
      .describe(
        'pending: when the value stops proving the claim (7 days after it; then remove the domain and claim it again); verified: null',
      ),
  }),
  verified_at: z.iso.datetime().nullable(),
  verification_method: z.enum(['dns_txt', 'platform_admin']).nullable(),
  ...timestamps,
});

export const certificateResource = z.object({
  id: z.uuid(),
  tenant_id: z.uuid(),
  domains: z.array(z.string()),
  certificate_pem: z.string().describe('the chain as served (public); the private key is never returned'),
  fingerprint_sha256: z.string(),
  subject: z.string(),
  issuer: z.string(),
  serial_number: z.string(),
  dns_names: z.array(z.string()),
  key_type: z.string(),
  not_before: z.iso.datetime(),
  not_after: z.iso.datetime(),
  ...timestamps,
});

export const errorResource = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.array(z.object({ field: z.string(), issue: z.string() })),
  }),
});

/**
 * An item of a list answer: the resource and its revision, the number its own GET's ETag quotes, so a
 * client can act on what the list showed it (If-Match: `"<revision>"`) without reading the item again.
 */
export const listItem = <Resource extends z.ZodObject>(resource: Resource) =>
  resource.extend({
    revision: z
      .string()
      .regex(/^[0-9]+$/)
      .describe(
        'the revision the item was listed at: send it as If-Match `"<revision>"` to change or delete it only as listed',
      ),
  });

/** A resource as a list answer holds it (`listItem`). */
export type Listed<Resource> = Resource & { revision: string };

export type TenantResource = z.infer<typeof tenantResource>;
export type UserResource = z.infer<typeof userResource>;
export type OriginResource = z.infer<typeof originResource>;
export type RouteResource = z.infer<typeof routeResource>;
export type ApiKeyResource = z.infer<typeof apiKeyResource>;
export type QuotaWindowResource = z.infer<typeof quotaWindowResource>;
export type CertificateResource = z.infer<typeof certificateResource>;
export type CustomDomainResource = z.infer<typeof customDomainResource>;

const byStatusClass = z
  .object({
    '1xx': z.number().int(),
    '2xx': z.number().int(),
    '3xx': z.number().int(),
    '4xx': z.number().int(),
    '5xx': z.number().int(),
  })
  .describe('requests by the class of the status the gateway answered');
const usageBreakdown = z.object({
  id: z
    .string()
    .nullable()
    .describe(
      'null: requests without one (no route matched, no key, no user); `*`: the overflow (see `overflow`)',
    ),
  overflow: z
    .boolean()
    .describe(
      'true for id `*`: no single route, key or user but the requests the gateways counted together past their cardinality limits (a tenant’s users beyond GATEWAY_USAGE_MAX_USERS_PER_TENANT, or its cells beyond its share of GATEWAY_USAGE_MAX_CELLS, in one flush interval); they are in every total',
    ),
  requests: z.number().int(),
  by_status_class: byStatusClass,
});

/** GET /api/v1/usage. */
export const usageReportResource = z.object({
  tenant_id: z.uuid(),
  api_key_id: z.uuid().nullable(),
  route_id: z.uuid().nullable(),
  user_id: z.string().nullable(),
  granularity: z.enum(['hour', 'day']),
  from: z.iso.datetime().describe('start of the first period (UTC)'),
  to: z.iso.datetime().describe('end of the last period (exclusive)'),
  requests: z.number().int(),
  by_status_class: byStatusClass,
  data: z
    .array(z.object({ start: z.iso.datetime(), requests: z.number().int(), by_status_class: byStatusClass }))
    .describe('one point per period from `from` to `to`, zeros included'),
  by_route: z.array(usageBreakdown).describe('the 20 routes with most requests in the range'),
  by_api_key: z.array(usageBreakdown),
  by_user: z.array(usageBreakdown),
});
