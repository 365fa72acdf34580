import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { isIP } from 'node:net';
import { REDACTED_VALUE } from '@vantageedge/shared/domain/credential-headers';
import { USER_ROLES } from '@vantageedge/shared/domain/events';
import {
  authMode,
  cachePolicy,
  circuitBreaker,
  healthCheck,
  isCompleteResponseStatus,
  loadBalancing,
  MIN_HEALTH_CHECK_INTERVAL_SECONDS,
  oidcProvider,
  originTarget,
  originTls,
  quotaPolicy,
  RATE_LIMIT_BOUNDS,
  rateLimitPolicy,
  serviceAccountsInput,
  tenantSettings,
  verificationKeyRefusal,
  WEBSOCKET_TOKEN_SOURCES,
} from '@vantageedge/shared/domain/gateway-config';
import { canonicalCustomDomain } from '@vantageedge/shared/domain/hostname';
import { resourceTags } from '@vantageedge/shared/domain/resource-tags';
import {
  corsPolicyInput,
  fixedResponseInput,
  hasControlCharacter,
  ipRules,
  isFieldToken,
  MAX_ROUTE_BODY_BYTES,
  MAX_ROUTE_CONNECT_TIMEOUTS_PER_ORIGIN,
  MAX_ROUTE_HEADER_BYTES,
  MAX_TEMPLATE_VARIABLES,
  PRESERVE_HOST_DESCRIPTION,
  queryTransformInput,
  redirectInput,
  requestHeaderTransformInput,
  requestHeaderWrittenByGateway,
  responseHeaderTransformInput,
  retryPolicy,
  rewritePath,
  routeMatchInput,
  routeTimeouts,
  trafficSplitInput,
  unsentHeaderNameIssue,
} from '@vantageedge/shared/domain/route-policies';
import { uuidId } from '@vantageedge/shared/domain/uuid-id';
import { asOriginsReadIt } from '@vantageedge/shared/http/cgi-spellings';
import { caCertificatesIssue } from '@vantageedge/shared/tls/certificate-bundle';
import { z } from 'zod';
import { keySetUrlProblem, originTargetUrlProblem } from '../domain/configured-urls.js';
import {
  BIDI_CONTROL,
  CONTROL_CHARACTER,
  DISPLAY_NAME_SYNTAX,
  DISPLAY_TEXT_SYNTAX,
  NO_OUTER_WHITESPACE,
} from '../domain/display-text.js';
import {
  FORWARDED_PATH_SYNTAX,
  forwardedPathEscapeProblem,
  forwardedPathProblem,
  PATH_PATTERN_SYNTAX,
  pathPatternProblem,
  probePathProblem,
} from '../domain/path-pattern.js';

/**
 * The request bodies of the admin API's commands. These schemas validate requests (unknown fields are
 * rejected: every object is strict) and generate the OpenAPI document, so the two cannot drift.
 * Create schemas fill defaults; patch schemas have none, so an absent field means "unchanged".
 */

const uuid = uuidId();
const NO_CONTROL_CHARACTERS = 'must not contain control characters (U+0000–U+001F, U+007F–U+009F)';
const NO_BIDI_CONTROLS =
  'must not contain bidirectional formatting controls (U+202A–U+202E, U+2066–U+2069): they reorder what is shown';
/** Display text (a name, a reason): people read it in the console, the CLI and the audit log. */
const refuseControlCharacters = (value: string, ctx: z.RefinementCtx) => {
  if (CONTROL_CHARACTER.test(value)) ctx.addIssue({ code: 'custom', message: NO_CONTROL_CHARACTERS });
  if (BIDI_CONTROL.test(value)) ctx.addIssue({ code: 'custom', message: NO_BIDI_CONTROLS });
};
/** Tenant, origin and API key names: one line of display text. */
const name = z
  .string()
  .min(1, 'must not be empty')
  .max(100, 'must be at most 100 characters')
  .superRefine((value, ctx) => {
    if (!NO_OUTER_WHITESPACE.test(value))
      ctx.addIssue({ code: 'custom', message: 'must not start or end with whitespace' });
    refuseControlCharacters(value, ctx);
  })
  .meta({ pattern: DISPLAY_NAME_SYNTAX });

/** A lowercase DNS label: what goes in front of .vantageedge.dev. */
export const subdomain = z
  .string()
  .min(1, 'must not be empty')
  .max(63, 'must be at most 63 characters')
  .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, 'must be a lowercase DNS label (a-z, 0-9, inner hyphens)')
  .meta({
    description:
      'The tenant’s host label: <subdomain>.<base domain>. Names the platform reserves (www, api, admin, login, status, …: RESERVED_SUBDOMAINS) are refused with 409, labels with -- as 3rd and 4th characters (xn-- IDNs) with 400, unless the tenant holds it already',
  });
const clerkOrgId = z
  .string()
  .max(100, 'must be at most 100 characters')
  .regex(/^org_[A-Za-z0-9_]+$/, 'must be a Clerk organization id (org_...)');
const clerkUserId = z
  .string()
  .max(100, 'must be at most 100 characters')
  .regex(/^user_[A-Za-z0-9_]+$/, 'must be a Clerk user id (user_...)');
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http or https URL' });
/** An origin target as a command gives it: only the parts of its URL a gateway uses. */
const originTargetUrl = httpUrl.superRefine((url, ctx) => {
  const problem = originTargetUrlProblem(url);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
const originTargetRequest = originTarget.extend({ url: originTargetUrl });
const healthCheckPath = z
  .string()
  .max(200, 'must be at most 200 characters')
  .superRefine((value, ctx) => {
    const problem = probePathProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .meta({
    pattern: FORWARDED_PATH_SYNTAX,
    description:
      'probed as GET <target URL><health_check_path>: a path as sent (percent-encode other characters as UTF-8), without . or .. segments, no query',
  });
const timeoutSeconds = z
  .number()
  .int('must be an integer')
  .min(1, 'must be at least 1')
  .max(300, 'must be at most 300');
const scope = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9:._/-]+$/, 'must be letters, digits or :._/-');
const scopes = z.array(scope).max(50, 'at most 50 scopes');
/** A route's scopes: checked on a credential, so refused on a public route (domain/route.ts). */
const routeScopes = scopes.meta({
  description:
    'scopes a caller’s key or token must carry; a public route reads no credential, so scopes on one are refused (400)',
});

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
const methods = z
  .array(z.enum(HTTP_METHODS))
  .max(HTTP_METHODS.length)
  .refine((list) => new Set(list).size === list.length, 'must not repeat a method');
const pathPattern = z
  .string()
  .superRefine((value, ctx) => {
    const problem = pathPatternProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .meta({ pattern: PATH_PATTERN_SYNTAX, maxLength: 512 });
const stripPrefix = z
  .string()
  .max(200)
  .superRefine((value, ctx) => {
    const problem = forwardedPathProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .meta({
    pattern: FORWARDED_PATH_SYNTAX,
    description:
      "removed from the front of the path before forwarding (whole segments); one that no path of the route's path_pattern starts with (compared normalised, letters as written, a :param taking any segment, a trailing * any rest) is refused (400), as it would never apply",
  })
  .nullable();
/** A path rewrite as a command gives it: every path in it one the gateway reads as a request path. */
const rewritePathRequest = rewritePath.superRefine((rewrite, ctx) => {
  for (const field of ['from_prefix', 'to_prefix', 'template'] as const) {
    const path = rewrite[field];
    const problem = path === undefined ? null : forwardedPathEscapeProblem(path);
    if (problem) ctx.addIssue({ code: 'custom', path: [field], message: problem });
  }
  // What the pattern matched is the client's: a template copying it hundreds of times would make the
  // origin's path hundreds of times what the client sent (gateways refuse past 32 KiB, 414).
  const named = (rewrite.template ?? '')
    .split('/')
    .filter((segment) => segment === '*' || segment.startsWith(':'));
  if (named.length > MAX_TEMPLATE_VARIABLES) {
    ctx.addIssue({
      code: 'custom',
      path: ['template'],
      message: `names ${named.length} parameters; a template may name at most ${MAX_TEMPLATE_VARIABLES} (:param segments and *)`,
    });
  }
});
const priority = z.number().int('must be an integer').min(-10_000).max(10_000);

// ---- tenants ----
// ---- rate limits ----
const {
  minRequestsPerSecond,
  maxRequestsPerSecond,
  maxBurst,
  maxWindowSeconds,
  maxWindowLimit,
  maxRefillSeconds,
} = RATE_LIMIT_BOUNDS;
/**
 * The widest network a rate limit may count an IPv6 client by: an ISP's allocation is a /32, so a wider
 * one would put unrelated networks' clients in one allowance.
 */
const MIN_CLIENT_IPV6_PREFIX = 32;

/** Which algorithm each field belongs to: the other one never reads it. */
const ALGORITHM_FIELDS = {
  burst: 'token_bucket',
  window_seconds: 'sliding_window',
  limit: 'sliding_window',
} as const;

/**
 * A field of the other algorithm is refused, not stored and ignored: `{ requests_per_second: 100,
 * window_seconds: 60, limit: 1000 }` (no algorithm: a token bucket) meant 1,000 a minute and would let
 * 100 a second through.
 */
function refuseOtherAlgorithmFields(
  policy: Pick<z.infer<typeof rateLimitPolicy>, 'algorithm' | keyof typeof ALGORITHM_FIELDS>,
  ctx: z.RefinementCtx,
): void {
  for (const field of ['burst', 'window_seconds', 'limit'] as const) {
    const algorithm = ALGORITHM_FIELDS[field];
    if (policy[field] === undefined || policy.algorithm === algorithm) continue;
    ctx.addIssue({
      code: 'custom',
      path: [field],
      message: `applies only to algorithm ${algorithm}; this limit is a ${policy.algorithm} (set algorithm: ${algorithm}, or remove ${field})`,
    });
  }
}

/**
 * A rate limit as a tenant admin may set it (route or tenant-wide): within RATE_LIMIT_BOUNDS, so one
 * tenant's limit cannot hand the shared Redis values it refuses (a TTL beyond its range) or numbers
 * the gateways' arithmetic was not meant for. Events keep the looser stored shape (rateLimitPolicy).
 */
export const rateLimitRequest = rateLimitPolicy
  .extend({
    requests_per_second: z
      .number()
      .min(minRequestsPerSecond, `must be at least ${minRequestsPerSecond} (use a quota for slower budgets)`)
      .max(maxRequestsPerSecond, `must be at most ${maxRequestsPerSecond}`)
      .describe(
        `token_bucket: the refill rate; sliding_window: without limit, the window admits requests_per_second × window_seconds (at most ${maxWindowLimit})`,
      ),
    burst: z
      .number()
      .int()
      .min(1)
      .max(maxBurst, `must be at most ${maxBurst}`)
      .describe(
        `token_bucket capacity (default: requests_per_second rounded up); burst / requests_per_second, the time an empty bucket takes to refill, is at most ${maxRefillSeconds} s (30 days)`,
      )
      .optional(),
    window_seconds: z
      .number()
      .int()
      .min(1)
      .max(maxWindowSeconds, `must be at most ${maxWindowSeconds}`)
      .describe('sliding_window: the window length (default 1)')
      .optional(),
    limit: z
      .number()
      .int()
      .min(1)
      .max(maxWindowLimit, `must be at most ${maxWindowLimit}`)
      .describe(
        "sliding_window: the requests a window admits (default requests_per_second × window_seconds). A sliding-window counter: at most limit per aligned window of window_seconds; a request is judged on the current window's count plus the previous window's, weighted by the share of it the last window_seconds still cover (within one request of the true count for evenly spread traffic; a full window's worth at the end of one window, then more in the next, can reach just under twice limit within window_seconds)",
      )
      .optional(),
    ipv6_prefix: z
      .number()
      .int('must be an integer')
      .min(MIN_CLIENT_IPV6_PREFIX, `must be at least ${MIN_CLIENT_IPV6_PREFIX}`)
      .max(128, 'must be at most 128')
      .describe(
        'scope ip (and the anonymous callers of scope user or api_key, counted by address): the prefix length an IPv6 client is counted by, default 64 (one subscriber’s network; 56 or 48 when your clients are handed those, so rotating through them earns no fresh allowance; 128: each address). IPv4 clients, and IPv6 addresses carrying one (NAT64, 6to4, IPv4-mapped), are counted by their IPv4 address',
      )
      .optional(),
  })
  .superRefine((policy, ctx) => {
    refuseOtherAlgorithmFields(policy, ctx);
    if (policy.ipv6_prefix !== undefined && (policy.scope === 'tenant' || policy.scope === 'route')) {
      ctx.addIssue({
        code: 'custom',
        path: ['ipv6_prefix'],
        message: `applies only to limits that count callers (scope ip, user or api_key); a ${policy.scope} limit counts every caller together`,
      });
    }
    const rate = policy.requests_per_second;
    if (!(rate >= minRequestsPerSecond && rate <= maxRequestsPerSecond)) return; // reported on the field
    if (policy.algorithm === 'sliding_window') {
      const implied = Math.round(rate * (policy.window_seconds ?? 1));
      if (policy.limit === undefined && implied > maxWindowLimit) {
        ctx.addIssue({
          code: 'custom',
          path: ['requests_per_second'],
          message: `requests_per_second × window_seconds (the window's default limit, ${implied}) must be at most ${maxWindowLimit}`,
        });
      }
      return;
    }
    const burst = policy.burst ?? Math.ceil(rate);
    if (burst / rate > maxRefillSeconds) {
      ctx.addIssue({
        code: 'custom',
        path: [policy.burst === undefined ? 'requests_per_second' : 'burst'],
        message: `burst / requests_per_second (the time an empty bucket takes to refill, ${Math.ceil(burst / rate)} s) must be at most ${maxRefillSeconds} s`,
      });
    }
  });

/** Settings fields that no longer exist, with where their job went (a 400 says so). */
const RETIRED_SETTINGS = {
  custom_domains:
    'custom domains are managed with POST /api/v1/tenants/{id}/domains: each is claimed once platform-wide and serves only after its ownership is verified',
  service_jwks:
    'replaced by service_accounts: [{ "id", "keys": [public JWKs with kid], "scopes" }]: a key signs only for its own service, within its scopes',
} as const;

/** Every service key must load as a public key (a malformed one would only fail at the gateways). */
function requireLoadableServiceKeys(settings: z.infer<typeof tenantSettings>, ctx: z.RefinementCtx): void {
  settings.service_accounts.forEach((account, index) => {
    account.keys.forEach((jwk, keyIndex) => {
      try {
        const key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
        if (key.type !== 'public') throw new Error('not a public key');
        const refusal = verificationKeyRefusal(jwk);
        if (refusal !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['service_accounts', index, 'keys', keyIndex, refusal.member],
            message: refusal.issue,
          });
        }
      } catch (error) {
        ctx.addIssue({
          code: 'custom',
          path: ['service_accounts', index, 'keys', keyIndex],
          message: `is not a usable public key: ${(error as Error).message}`,
        });
      }
    });
  });
}

/** Bounded as a command gives them: nothing else bounds them below the body and snapshot limits. */
const OIDC_TEXT_MAX = 2048;
/**
 * An issuer or audience as a token names it: no identity provider puts control characters there, and
 * admins read the value back (console, CLI, audit log).
 */
const oidcText = z
  .string()
  .min(1, 'must not be empty')
  .max(OIDC_TEXT_MAX, `must be at most ${OIDC_TEXT_MAX} characters`)
  .refine((value) => !hasControlCharacter(value, true), 'must not contain control characters');
const oidcProviderInput = oidcProvider.extend({
  issuer: oidcText,
  audience: oidcText,
  jwks_url: oidcProvider.shape.jwks_url
    .refine((url) => url.length <= OIDC_TEXT_MAX, {
      error: `must be at most ${OIDC_TEXT_MAX} characters`,
    })
    .superRefine((url, ctx) => {
      const problem = keySetUrlProblem(url);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
});

const settingsBody = tenantSettings
  .extend({
    rate_limit: rateLimitRequest.nullable().default(null),
    oidc: oidcProviderInput.nullable().default(null).meta({
      description:
        "the tenant's own identity provider, whose tokens its jwt routes take: not the platform's Clerk instance (an issuer or jwks_url on its host is 400 oidc_provider_is_platform)",
    }),
    service_accounts: serviceAccountsInput.default([]),
    custom_domains: z.never({ error: RETIRED_SETTINGS.custom_domains }).optional(),
    service_jwks: z.never({ error: RETIRED_SETTINGS.service_jwks }).optional(),
  })
  .superRefine(requireLoadableServiceKeys)
  .transform(({ custom_domains: _domains, service_jwks: _jwks, ...settings }) => settings);

export const createTenantBody = z.strictObject({
  name,
  subdomain,
  clerk_org_id: clerkOrgId.nullable().optional(),
  settings: settingsBody.optional(),
});
export const updateTenantBody = z.strictObject({
  name: name.optional(),
  subdomain: subdomain.optional(),
  clerk_org_id: clerkOrgId.nullable().optional(),
  settings: settingsBody.optional(),
});

// ---- custom domains ----
/** A host name in any case or in Unicode; stored in its canonical form (lower-case, punycode). */
export const customDomainName = z
  .string({ error: 'must be a host name such as api.example.com' })
  .max(1000, 'is too long')
  .transform((value, ctx) => {
    const result = canonicalCustomDomain(value);
    if (result.ok) return result.hostname;
    ctx.addIssue({ code: 'custom', message: result.issue });
    return z.NEVER;
  })
  .describe('a host name (lower-case ASCII or Unicode; stored as lower-case punycode), no port, no wildcard');
export const createCustomDomainBody = z.strictObject({
  domain: customDomainName,
  /** Platform admins only: assign the domain without a DNS proof (it serves at once). */
  verified: z.boolean().default(false),
});

// ---- users ----
export const createUserBody = z.strictObject({
  tenant_id: uuid,
  clerk_user_id: clerkUserId,
  email: z.email('must be an email address').max(254),
  role: z.enum(USER_ROLES),
});
export const updateUserBody = z.strictObject({ role: z.enum(USER_ROLES) });

// ---- origins ----
const hashKeyRule = (
  lb: z.infer<typeof loadBalancing> | undefined,
  ctx: z.RefinementCtx,
  path: Array<string | number>,
) => {
  // A name kept while unused is read once the origin switches to hashing on it (and shown to admins).
  if (lb?.hash_key && !isFieldToken(lb.hash_key)) {
    const kind = lb.hash_on === 'header' || lb.hash_on === 'cookie' ? lb.hash_on : 'header or cookie';
    ctx.addIssue({
      code: 'custom',
      path: [...path, 'hash_key'],
      message: `must be a ${kind} name (letters, digits and !#$%&'*+-.^_\`|~)`,
    });
    return;
  }
  if (lb?.algorithm !== 'consistent_hash' || (lb.hash_on !== 'header' && lb.hash_on !== 'cookie')) return;
  const unsent = lb.hash_on === 'header' && lb.hash_key ? unsentHeaderNameIssue(lb.hash_key) : undefined;
  if (!lb.hash_key) {
    ctx.addIssue({
      code: 'custom',
      path: [...path, 'hash_key'],
      message: `is required when hash_on is ${lb.hash_on}`,
    });
  } else if (unsent !== undefined) {
    ctx.addIssue({ code: 'custom', path: [...path, 'hash_key'], message: unsent });
  } else if (lb.hash_on === 'header' && requestHeaderWrittenByGateway(asOriginsReadIt(lb.hash_key))) {
    // The hash reads the client's copy, any value it wrote; the origin sees the gateway's.
    ctx.addIssue({
      code: 'custom',
      path: [...path, 'hash_key'],
      message: `${lb.hash_key} is written by the gateway for the origin: the hash reads the client's request, which may carry any value (hash_on client_ip hashes on the client's address)`,
    });
  }
};
/**
 * A cache policy as a tenant may set it: only complete responses are cacheable (no 1xx, 206, 304, 412,
 * 416: answers to one request's Range or preconditions, which the key does not hold), and the key reads
 * no header the gateway writes for the origin (the key would read the client's value, the origin the
 * gateway's: one client's answer served to the others). Each header and cookie it names is a field name.
 */
const cachePolicyRequest = cachePolicy.superRefine((value, ctx) => {
  // A name no message carries is never met: the key would not vary, the bypass or tag never apply.
  const names = [
    [['vary_headers'], value.vary_headers, 'header'],
    [['bypass', 'headers'], value.bypass.headers, 'header'],
    [['bypass', 'cookies'], value.bypass.cookies, 'cookie'],
    [['tag_headers'], value.tag_headers, 'header'],
  ] as const;
  for (const [path, list, kind] of names) {
    list.forEach((name, index) => {
      const issue = !isFieldToken(name)
        ? `must be a ${kind} name (letters, digits and !#$%&'*+-.^_\`|~)`
        : kind === 'header'
          ? unsentHeaderNameIssue(name)
          : undefined;
      if (issue !== undefined) ctx.addIssue({ code: 'custom', path: [...path, index], message: issue });
    });
  }
  // Only path+query+headers puts them in the key: with another pattern every variant would share one entry.
  if (value.vary_headers.length > 0 && value.cache_key_pattern !== 'path+query+headers') {
    ctx.addIssue({
      code: 'custom',
      path: ['vary_headers'],
      message: `are part of the key only with cache_key_pattern path+query+headers, not ${value.cache_key_pattern}: set it, or remove vary_headers`,
    });
  }
  value.vary_headers.forEach((name, index) => {
    // In any spelling CGI-style origins read as one: X_Real_IP is their X-Real-IP, the gateway's.
    if (!requestHeaderWrittenByGateway(asOriginsReadIt(name))) return;
    ctx.addIssue({
      code: 'custom',
      path: ['vary_headers', index],
      message: `${name} is written by the gateway for the origin: the cache key cannot read its value`,
    });
  });
  value.cacheable_statuses.forEach((status, index) => {
    if (isCompleteResponseStatus(status)) return;
    ctx.addIssue({
      code: 'custom',
      path: ['cacheable_statuses', index],
      message: `${status} is not a complete response: a cache never stores 1xx, 206, 304, 412 or 416`,
    });
  });
});
const routeCachePolicy = cachePolicyRequest.meta({
  description:
    "the route's response cache (docs/cache.md); vary_headers are part of the key only with cache_key_pattern path+query+headers, and refused (400) with another pattern",
});
/** Health checks as a tenant may set them: every replica probes every target at this interval. */
const healthCheckRequest = healthCheck.superRefine((value, ctx) => {
  if (value.active.interval_seconds < MIN_HEALTH_CHECK_INTERVAL_SECONDS) {
    ctx.addIssue({
      code: 'custom',
      path: ['active', 'interval_seconds'],
      message: `must be at least ${MIN_HEALTH_CHECK_INTERVAL_SECONDS}`,
    });
  }
});
/** A lower-case DNS name (one label or more) or an IP address: what a certificate can be verified for. */
const SERVER_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
/** An origin's TLS settings as a command gives them: its CA certificates parsed, its server name a host name. */
const originTlsRequest = originTls.superRefine((tls, ctx) => {
  if (tls.ca_certificates !== null) {
    const issue = caCertificatesIssue(tls.ca_certificates, new Date());
    if (issue !== undefined) ctx.addIssue({ code: 'custom', path: ['ca_certificates'], message: issue });
  }
  if (tls.server_name !== null && isIP(tls.server_name) === 0 && !SERVER_NAME.test(tls.server_name)) {
    ctx.addIssue({
      code: 'custom',
      path: ['server_name'],
      message: 'must be a lower-case host name (letters, digits, inner hyphens, dots) or an IP address',
    });
  }
});
const originFields = {
  name,
  /** The single-upstream shape (`url`): becomes one target of weight 1. */
  url: originTargetUrl,
  targets: z
    .array(originTargetRequest)
    .min(1, 'needs at least one target')
    .max(100)
    .superRefine((targets, ctx) => {
      // Weight 0 drains a target: an origin with every target drained could serve nothing.
      if (targets.length > 0 && targets.every((target) => target.weight === 0)) {
        ctx.addIssue({ code: 'custom', message: 'needs at least one weight above 0' });
      }
    }),
  health_check_path: healthCheckPath,
  timeout_seconds: timeoutSeconds,
  load_balancing: loadBalancing,
  health_check: healthCheckRequest,
  circuit_breaker: circuitBreaker,
  tls: originTlsRequest,
};
export const createOriginBody = z
  .strictObject({
    tenant_id: uuid,
    name: originFields.name,
    url: originFields.url.optional(),
    targets: originFields.targets.optional(),
    health_check_path: originFields.health_check_path.default('/health'),
    timeout_seconds: originFields.timeout_seconds.default(30),
    load_balancing: originFields.load_balancing.optional(),
    health_check: originFields.health_check.optional(),
    circuit_breaker: originFields.circuit_breaker.optional(),
    tls: originFields.tls.optional(),
    tags: resourceTags.default([]),
  })
  .superRefine(newOriginRules);
/** A new origin names its upstream once (url or targets) and a hash key when it hashes on one. */
export function newOriginRules(
  body: {
    url?: string | undefined;
    targets?: unknown;
    load_balancing?: z.infer<typeof loadBalancing> | undefined;
  },
  ctx: z.RefinementCtx,
): void {
  if (body.url === undefined && body.targets === undefined) {
    ctx.addIssue({ code: 'custom', path: ['url'], message: 'is required (or give targets)' });
  }
  if (body.url !== undefined && body.targets !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['targets'], message: 'give either url or targets, not both' });
  }
  hashKeyRule(body.load_balancing, ctx, ['load_balancing']);
}
export const updateOriginBody = z
  .strictObject({
    name: originFields.name.optional(),
    url: originFields.url.optional(),
    targets: originFields.targets.optional(),
    health_check_path: originFields.health_check_path.optional(),
    timeout_seconds: originFields.timeout_seconds.optional(),
    load_balancing: originFields.load_balancing.optional(),
    health_check: originFields.health_check.optional(),
    circuit_breaker: originFields.circuit_breaker.optional(),
    tls: originFields.tls.optional(),
    tags: resourceTags.optional(),
  })
  .superRefine((body, ctx) => {
    if (body.url !== undefined && body.targets !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['targets'], message: 'give either url or targets, not both' });
    }
    hashKeyRule(body.load_balancing, ctx, ['load_balancing']);
  });

// ---- routes ----
const PLACEHOLDER_REFUSED = `is the placeholder reads show to read-only callers (${REDACTED_VALUE}): give the value itself`;

/**
 * Match condition and split override values read as REDACTED_VALUE to read-only callers: written
 * back (a reader's document applied), the placeholder would become the value that unlocks the route.
 */
const matchWithoutPlaceholders = routeMatchInput.superRefine((match, ctx) => {
  for (const list of ['headers', 'query'] as const) {
    match[list].forEach((condition, index) => {
      for (const kind of ['exact', 'prefix'] as const) {
        if (condition[kind] !== REDACTED_VALUE) continue;
        ctx.addIssue({ code: 'custom', path: [list, index, kind], message: PLACEHOLDER_REFUSED });
      }
    });
  }
});
const splitWithoutPlaceholders = trafficSplitInput.superRefine((split, ctx) => {
  split.overrides.forEach((override, index) => {
    if (override.value !== REDACTED_VALUE) return;
    ctx.addIssue({ code: 'custom', path: ['overrides', index, 'value'], message: PLACEHOLDER_REFUSED });
  });
});

/** The route policies (docs: README "Route policies"); null = off. Shapes in shared/route-policies. */
const routePolicyFields = {
  match: matchWithoutPlaceholders,
  cors: corsPolicyInput,
  ip_rules: ipRules,
  request_headers: requestHeaderTransformInput,
  response_headers: responseHeaderTransformInput,
  rewrite_path: rewritePathRequest.meta({
    description: `from_prefix → to_prefix (whole segments), or a template of the path_pattern's :params and trailing *; a from_prefix no path of the path_pattern starts with, or a template naming a :param or * the pattern lacks, is refused (400); a template names at most ${MAX_TEMPLATE_VARIABLES} :params and * in all (a :param may be named more than once), and a request whose rewritten path would be longer than 32 KiB is answered 414 uri_too_long`,
  }),
  preserve_host: z.boolean().meta({ description: PRESERVE_HOST_DESCRIPTION }),
  query: queryTransformInput,
  timeouts: routeTimeouts.meta({
    description: `connect_ms, response_headers_ms and idle_ms override the origin's timeout_seconds for this route (a WebSocket upgrade takes connect_ms and response_headers_ms); the routes sending to one origin use at most ${MAX_ROUTE_CONNECT_TIMEOUTS_PER_ORIGIN} different connect_ms values (a gateway keeps a connection pool per target for each): one that would bring another is refused (400 naming timeouts.connect_ms)`,
  }),
  retries: retryPolicy.meta({
    description:
      'retries on another target; a route whose methods include none of retries.methods (default: the idempotent ones) would never retry, and is refused (400 naming retries.methods)',
  }),
  max_body_bytes: z.number().int().min(0).max(MAX_ROUTE_BODY_BYTES),
  max_header_bytes: z.number().int().min(256).max(MAX_ROUTE_HEADER_BYTES),
  traffic_split: splitWithoutPlaceholders,
  fixed_response: fixedResponseInput,
  redirect: redirectInput,
};
export const createRouteBody = z.strictObject({
  tenant_id: uuid,
  /** null only for a route that answers itself (fixed_response or redirect). */
  origin_id: uuid.nullable(),
  path_pattern: pathPattern,
  methods: methods.default([]),
  priority: priority.default(0),
  auth_mode: authMode,
  required_scopes: routeScopes.default([]),
  require_tenant_org: z.boolean().default(true),
  allow_any_authenticated_user: z.boolean().default(false),
  websocket_token: z.enum(WEBSOCKET_TOKEN_SOURCES).default('header'),
  strip_prefix: stripPrefix.default(null),
  rate_limit: rateLimitRequest.nullable().default(null),
  cache_policy: routeCachePolicy.nullable().default(null),
  match: routePolicyFields.match.nullable().default(null),
  cors: routePolicyFields.cors.nullable().default(null),
  ip_rules: routePolicyFields.ip_rules.nullable().default(null),
  request_headers: routePolicyFields.request_headers.nullable().default(null),
  response_headers: routePolicyFields.response_headers.nullable().default(null),
  rewrite_path: routePolicyFields.rewrite_path.nullable().default(null),
  preserve_host: routePolicyFields.preserve_host.default(false),
  query: routePolicyFields.query.nullable().default(null),
  timeouts: routePolicyFields.timeouts.nullable().default(null),
  retries: routePolicyFields.retries.nullable().default(null),
  max_body_bytes: routePolicyFields.max_body_bytes.nullable().default(null),
  max_header_bytes: routePolicyFields.max_header_bytes.nullable().default(null),
  traffic_split: routePolicyFields.traffic_split.nullable().default(null),
  fixed_response: routePolicyFields.fixed_response.nullable().default(null),
  redirect: routePolicyFields.redirect.nullable().default(null),
  tags: resourceTags.default([]),
});
export const updateRouteBody = z.strictObject({
  origin_id: uuid.nullable().optional(),
  path_pattern: pathPattern.optional(),
  methods: methods.optional(),
  priority: priority.optional(),
  auth_mode: authMode.optional(),
  required_scopes: routeScopes.optional(),
  require_tenant_org: z.boolean().optional(),
  allow_any_authenticated_user: z.boolean().optional(),
  websocket_token: z.enum(WEBSOCKET_TOKEN_SOURCES).optional(),
  strip_prefix: stripPrefix.optional(),
  rate_limit: rateLimitRequest.nullable().optional(),
  cache_policy: routeCachePolicy.nullable().optional(),
  match: routePolicyFields.match.nullable().optional(),
  cors: routePolicyFields.cors.nullable().optional(),
  ip_rules: routePolicyFields.ip_rules.nullable().optional(),
  request_headers: routePolicyFields.request_headers.nullable().optional(),
  response_headers: routePolicyFields.response_headers.nullable().optional(),
  rewrite_path: routePolicyFields.rewrite_path.nullable().optional(),
  preserve_host: routePolicyFields.preserve_host.optional(),
  query: routePolicyFields.query.nullable().optional(),
  timeouts: routePolicyFields.timeouts.nullable().optional(),
  retries: routePolicyFields.retries.nullable().optional(),
  max_body_bytes: routePolicyFields.max_body_bytes.nullable().optional(),
  max_header_bytes: routePolicyFields.max_header_bytes.nullable().optional(),
  traffic_split: routePolicyFields.traffic_split.nullable().optional(),
  fixed_response: routePolicyFields.fixed_response.nullable().optional(),
  redirect: routePolicyFields.redirect.nullable().optional(),
  tags: resourceTags.optional(),
});

// ---- api keys ----
const EARLIEST_INSTANT_MS = Date.UTC(1970, 0, 1);
const LATEST_INSTANT_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
/** The instant a date-time names (its offset applied) is in the years 1970–9999. */
function withinStorableYears(value: string): boolean {
  const ms = Date.parse(value);
  return ms >= EARLIEST_INSTANT_MS && ms <= LATEST_INSTANT_MS;
}

export const MAX_ROTATION_GRACE_SECONDS = 30 * 24 * 3600;
export const createApiKeyBody = z.strictObject({
  tenant_id: uuid,
  name,
  scopes: scopes.default([]),
  /**
   * A past time is accepted (the key is born expired), as the documented example's date is; the
   * instant must fall in the years 1970–9999 (UTC), which every store and client can hold.
   */
  expires_at: z.iso
    .datetime({ offset: true, error: 'must be an ISO-8601 date-time' })
    .refine(withinStorableYears, { error: 'must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z' })
    .nullable()
    .default(null),
  /** Requests the key may make per UTC day and/or month (429 quota_exceeded beyond); null: none. */
  quota: quotaPolicy.nullable().default(null),
  tags: resourceTags.default([]),
});
/**
 * PATCH /api/v1/api-keys/{id}: the key's quota (null removes it) and/or its tags (replaced whole); an
 * absent field keeps its value. The key itself never changes (a new one: rotate).
 */
export const updateApiKeyBody = z.strictObject({
  quota: quotaPolicy.nullable().optional(),
  tags: resourceTags.optional(),
});
export const rotateApiKeyBody = z.strictObject({
  /** How long the old key keeps working; default API_KEY_ROTATION_GRACE_SECONDS. */
  grace_period_seconds: z.number().int().min(0).max(MAX_ROTATION_GRACE_SECONDS).optional(),
});
export const revokeApiKeyBody = z.strictObject({
  reason: z
    .string()
    .max(500)
    .superRefine(refuseControlCharacters)
    .meta({ pattern: DISPLAY_TEXT_SYNTAX })
    .optional(),
});

export type CreateTenantBody = z.infer<typeof createTenantBody>;
export type UpdateTenantBody = z.infer<typeof updateTenantBody>;
export type CreateUserBody = z.infer<typeof createUserBody>;
export type CreateCustomDomainBody = z.infer<typeof createCustomDomainBody>;
export type UpdateUserBody = z.infer<typeof updateUserBody>;
export type CreateOriginBody = z.infer<typeof createOriginBody>;
export type UpdateOriginBody = z.infer<typeof updateOriginBody>;
export type CreateRouteBody = z.infer<typeof createRouteBody>;
export type UpdateRouteBody = z.infer<typeof updateRouteBody>;
export const uploadCertificateBody = z.strictObject({
  tenant_id: uuid,
  /**
   * The tenant's custom domains the certificate is served for; its SANs must cover each, and its usages
   * must allow a TLS server's (server authentication, digitalSignature). None: it is
   * never served, only presented to origins that ask for a client certificate (tls.client_certificate_id).
   */
  domains: z
    .array(customDomainName)
    .max(50, 'at most 50 domains')
    .default([])
    .transform((list) => [...new Set(list)]),
  /** PEM chain: the certificate first, then its intermediates. */
  certificate_pem: z.string().min(1).max(32_768, 'must be at most 32 KiB'),
  /** PEM private key of the certificate (unencrypted PKCS#8, PKCS#1 or SEC1); stored sealed, never returned. */
  private_key_pem: z.string().min(1).max(16_384, 'must be at most 16 KiB'),
});

export type CreateApiKeyBody = z.infer<typeof createApiKeyBody>;
export type UpdateApiKeyBody = z.infer<typeof updateApiKeyBody>;
export type UploadCertificateBody = z.infer<typeof uploadCertificateBody>;
export type RotateApiKeyBody = z.infer<typeof rotateApiKeyBody>;
export type RevokeApiKeyBody = z.infer<typeof revokeApiKeyBody>;
