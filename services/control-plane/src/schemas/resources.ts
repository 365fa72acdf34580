import { USER_ROLES } from '@vantageedge/shared/domain/events';
import {
  authMode,
  cachePolicy,
  circuitBreaker,
  healthCheck,
  loadBalancing,
  originTarget,
  rateLimitPolicy,
  tenantSettings,
} from '@vantageedge/shared/domain/gateway-config';
import { z } from 'zod';

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
  ...timestamps,
});

export const routeResource = z.object({
  id: z.uuid(),
  tenant_id: z.uuid(),
  origin_id: z.uuid(),
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
  ...timestamps,
});

export const issuedApiKeyResource = apiKeyResource.extend({
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

export type TenantResource = z.infer<typeof tenantResource>;
export type UserResource = z.infer<typeof userResource>;
export type OriginResource = z.infer<typeof originResource>;
export type RouteResource = z.infer<typeof routeResource>;
export type ApiKeyResource = z.infer<typeof apiKeyResource>;
export type CertificateResource = z.infer<typeof certificateResource>;
export type CustomDomainResource = z.infer<typeof customDomainResource>;
