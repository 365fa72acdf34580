import { isIP } from 'node:net';
import { eventStoreSettings } from '@vantageedge/shared/event-store/settings';
import { cidrListSetting } from '@vantageedge/shared/net/address-ranges';
import { originBlockedCidrsSetting } from '@vantageedge/shared/net/origin-address-policy';
import { postgresLivenessSettings } from '@vantageedge/shared/postgres/connection-liveness';
import { cacheRedisSettings } from '@vantageedge/shared/redis/cache-redis';
import { redisSettings } from '@vantageedge/shared/redis/client';
import { clerkIssuerOf } from '@vantageedge/shared/settings/clerk-issuer';
import {
  booleanFlag,
  clerkAuthorizedParties,
  clerkIssuer,
  clerkJwtKey,
  commaList,
  LOCAL_DEFAULTS,
  observabilitySettings,
  platformBaseDomainSettings,
  port,
  postgresUrl,
  redisKeyPrefix,
} from '@vantageedge/shared/settings/common-settings';
import { developmentSecretProblems } from '@vantageedge/shared/settings/development-secrets';
import { assertDistinctListeners } from '@vantageedge/shared/settings/listener-addresses';
import { SettingsError } from '@vantageedge/shared/settings/load-settings';
import { rolloutSettings, snapshotBusSettings } from '@vantageedge/shared/snapshot-bus/settings';
import { certificateEncryptionSettings } from '@vantageedge/shared/tls/settings';
import { quotaStoreSettings } from '@vantageedge/shared/usage/quota-store';
import { z } from 'zod';
import { DEFAULT_POOL_WAIT_MS } from './admin-pool.js';
import { adminRateLimitSettings } from './admin-rate-limit/admin-rate-limits.js';
import { DEFAULT_DOCUMENT_BYTES_IN_FLIGHT } from './admin-rate-limit/document-bytes-in-flight.js';
import { DEFAULT_ORG_REQUESTS_IN_FLIGHT } from './admin-rate-limit/org-requests-in-flight.js';
import { DEFAULT_REQUESTS_IN_FLIGHT } from './admin-rate-limit/platform-reserve.js';
import { DEFAULT_USER_REQUESTS_IN_FLIGHT } from './admin-rate-limit/requests-in-flight.js';
import { DEFAULT_TENANT_REQUESTS_IN_FLIGHT } from './admin-rate-limit/tenant-requests-in-flight.js';
import { DEFAULT_AUTH_FAILURES_PER_MINUTE } from './auth/auth-failure-limiter.js';
import { snapshotBudgetSettings } from './commands/snapshot-guard.js';
import { tenantLimitSettings } from './commands/tenant-limits.js';
import { CONFIG_CHANGE_WAIT_MS } from './config-history/config-change-lock.js';
import { DEFAULT_CONFIG_READ_BYTES_PER_MINUTE } from './config-history/config-read-budget.js';
import { DEFAULT_RESERVED_SUBDOMAINS } from './domain/reserved-subdomains.js';
import { subdomain } from './schemas/requests.js';

/** In RESERVED_SUBDOMAINS, stands for DEFAULT_RESERVED_SUBDOMAINS: `default,shop` reserves one more. */
const DEFAULT_RESERVED_ENTRY = 'default';

/** RESERVED_SUBDOMAINS: comma-separated DNS labels, lower-cased; without `default` they replace the defaults. */
const reservedSubdomainsSetting = commaList
  .transform((entries) =>
    entries.flatMap((entry) => {
      const label = entry.toLowerCase();
      return label === DEFAULT_RESERVED_ENTRY ? DEFAULT_RESERVED_SUBDOMAINS : [label];
    }),
  )
  .pipe(z.array(subdomain))
  .default([...DEFAULT_RESERVED_SUBDOMAINS]);

/** The control plane's settings, keyed by environment variable (documented in .env.example). */
export const controlPlaneSettings = {
  ...observabilitySettings,
  // Seals tenant certificates' private keys (shared with the gateways, which open them).
  ...certificateEncryptionSettings,
  ...eventStoreSettings,
  // Redis: gateway rollout heartbeats (GET /tenants/:id/rollout, ?wait_for_rollout=), quota reads, admin
  // rate limits, and cache purges unless the gateways' cache has its own Redis (the same setting as theirs).
  ...redisSettings,
  ...cacheRedisSettings,
  ...rolloutSettings,
  /** The gateways' %2F policy (same value as theirs), so POST …/explain normalises paths as they do. */
  GATEWAY_ENCODED_SLASHES: z.enum(['reject', 'keep']).default('reject'),
  /**
   * The gateways' Redis key prefix (same value as theirs), so cache purges reach their keys; the admin
   * rate limits' keys live under it too (`<prefix>cp:admin-rate:…`).
   */
  GATEWAY_REDIS_KEY_PREFIX: redisKeyPrefix,
  ...quotaStoreSettings,
  CONTROL_PLANE_PORT: port.default(8080),
  CONTROL_PLANE_HOST: z.string().min(1).default('0.0.0.0'),
  /** A request head not complete in time is answered 408 and its connection closed (slow-loris clients). */
  CONTROL_PLANE_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
  /** Time a client has to send the whole request, body included; not less than the headers timeout. */
  CONTROL_PLANE_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(60_000),
  /** How long an idle keep-alive connection is kept open (0: node never closes it). */
  CONTROL_PLANE_KEEP_ALIVE_TIMEOUT_MS: z.coerce.number().int().min(0).max(600_000).default(5_000),
  /**
   * A connection whose client takes none of the bytes of its answer this long is closed (nginx's
   * send_timeout): no other timer runs while an answer is in flight; 0: never.
   */
  CONTROL_PLANE_SEND_TIMEOUT_MS: z.coerce.number().int().min(0).max(3_600_000).default(60_000),
  /** Open connections to the admin API listener; more are closed on arrival. */
  CONTROL_PLANE_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
  /**
   * Open admin API connections of one client address (an IPv6 client by its network,
   * CONTROL_PLANE_CLIENT_IPV6_PREFIX); 0: no limit.
   */
  CONTROL_PLANE_MAX_CONNECTIONS_PER_CLIENT: z.coerce.number().int().min(0).max(1_000_000).default(1_000),
  /**
   * CIDR ranges of the load balancers in front of the admin API: from them the client is the address
   * X-Forwarded-For names (auth-failure limit), and they are not held to the per-client connection cap.
   */
  CONTROL_PLANE_TRUSTED_PROXIES: cidrListSetting.default([]),
  /**
   * The network an IPv6 client is counted by in the per-client counts (rejected credentials, connections),
   * as the gateway's GATEWAY_CLIENT_IPV6_PREFIX: 64, one subscriber's; 56 or 48 when clients are handed
   * those (each /64 of a /48 would be a client of its own), 128 each address.
   */
  CONTROL_PLANE_CLIENT_IPV6_PREFIX: z.coerce.number().int().min(32).max(128).default(64),
  /**
   * Rejected credentials per client address (IPv6: its network, CONTROL_PLANE_CLIENT_IPV6_PREFIX) and
   * minute before 429 too_many_auth_failures; 0: off.
   */
  CONTROL_PLANE_AUTH_FAILURES_PER_MINUTE: z.coerce
    .number()
    .int()
    .min(0)
    .max(1_000_000)
    .default(DEFAULT_AUTH_FAILURES_PER_MINUTE),
  /** A caller's /api/v1 requests running at once before 429 (they share the pool's 20 connections); 0: off. */
  CONTROL_PLANE_USER_REQUESTS_IN_FLIGHT: z.coerce
    .number()
    .int()
    .min(0)
    .max(1_000_000)
    .default(DEFAULT_USER_REQUESTS_IN_FLIGHT),
  /**
   * /api/v1 requests acting on one tenant (those its members, org admins and platform admins are granted
   * access to it) running at once before 429, whoever sends them, its read-only callers all but a
   * quarter of them; 0: off.
   */
  CONTROL_PLANE_TENANT_REQUESTS_IN_FLIGHT: z.coerce
    .number()
    .int()
    .min(0)
    .max(1_000_000)
    .default(DEFAULT_TENANT_REQUESTS_IN_FLIGHT),
  /**
   * /api/v1 requests of the callers acting as one Clerk organisation (their token's active org) running
   * at once before 429, whichever tenants they act on, its members without the admin role (nor an admin
   * of its tenant's user list) all but a quarter of them; platform admins are not counted; 0: off.
   */
  CONTROL_PLANE_ORG_REQUESTS_IN_FLIGHT: z.coerce
    .number()
    .int()
    .min(0)
    .max(1_000_000)
    .default(DEFAULT_ORG_REQUESTS_IN_FLIGHT),
  /**
   * /api/v1 requests of every caller but the platform admins, together, running at once before 429: the
   * rest of the pool's 20 connections is kept for platform admins and /readyz, the last quarter of these
   * for callers with nothing running, nor their organisation; 0: off.
   */
  CONTROL_PLANE_REQUESTS_IN_FLIGHT: z.coerce
    .number()
    .int()
    .min(0)
    .max(1_000_000)
    .default(DEFAULT_REQUESTS_IN_FLIGHT),
  /**
   * Bytes of tenant documents (POST …/config/plan and …/config/apply, as announced) all tenants' requests
   * may hold at once on a replica, one tenant half of it, its read-only callers a quarter, before 429;
   * 0: off.
   */
  CONTROL_PLANE_DOCUMENT_BYTES_IN_FLIGHT: z.coerce
    .number()
    .int()
    .min(0)
    .max(1_073_741_824)
    .default(DEFAULT_DOCUMENT_BYTES_IN_FLIGHT),
  /**
   * Prometheus `/metrics` and `/healthz` on a listener of their own, apart from the admin API that
   * tenant admins reach (0: off).
   */
  CONTROL_PLANE_METRICS_PORT: port.default(9466),
  CONTROL_PLANE_METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  /**
   * After SIGTERM: /readyz answers 503 and the listener keeps accepting (and serving, each answer closing
   * its connection) this long, so load balancers take the replica out before it refuses connections.
   */
  CONTROL_PLANE_DRAIN_SECONDS: z.coerce.number().min(0).max(300).default(5),
  /** After the drain: how long commands and queries in flight may take before their connections are closed. */
  CONTROL_PLANE_SHUTDOWN_TIMEOUT_SECONDS: z.coerce.number().min(0).max(600).default(20),
  CONTROL_PLANE_BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).max(10_485_760).default(65_536),
  /** Tenant documents (POST …/config/plan and …/config/apply) hold a whole config. */
  CONTROL_PLANE_DOCUMENT_LIMIT_BYTES: z.coerce.number().int().min(1024).max(67_108_864).default(4_194_304),
  /** Folded tenant configs kept for explain and GET …/config (approximate JSON bytes, LRU; 0: none). */
  CONTROL_PLANE_CONFIG_CACHE_BYTES: z.coerce.number().int().min(0).max(17_179_869_184).default(67_108_864),
  /**
   * Events of the event log one admin read of a config (…/config, …/config/document, each side of
   * …/config/diff, explain) may read; past it 503 read_limit_exceeded, the fold so far kept for the
   * request sent again. 0: no limit.
   */
  CONTROL_PLANE_CONFIG_READ_MAX_EVENTS: z.coerce.number().int().min(0).max(100_000_000).default(50_000),
  DATABASE_URL: postgresUrl.default(LOCAL_DEFAULTS.DATABASE_URL),
  API_KEY_PEPPER: z.string().min(32, 'must be at least 32 characters of secret'),
  API_KEY_ROTATION_GRACE_SECONDS: z.coerce.number().int().min(0).max(2_592_000).default(86_400),
  CLERK_JWT_KEY: clerkJwtKey.optional(),
  CLERK_SECRET_KEY: z
    .string()
    .regex(/^sk_(test|live)_/, 'must start with sk_test_ or sk_live_')
    .optional(),
  CLERK_PUBLISHABLE_KEY: z
    .string()
    .regex(/^pk_(test|live)_/, 'must start with pk_test_ or pk_live_')
    .optional(),
  /**
   * Origins of the web apps whose Clerk session tokens the admin API takes (the console's): a token's
   * `azp` (the Origin of the page it was minted for) must be one of them, so a token the browser holds
   * for another app of the same Clerk instance is refused, and so is a token without azp. Empty: any.
   */
  CONTROL_PLANE_AUTHORIZED_PARTIES: clerkAuthorizedParties.default([]),
  /**
   * The gateways' list (the tenants' apps, whose pages run the tenants' scripts): explain checks a
   * route's Clerk tokens against it as the gateways do. The admin API never takes a token for them.
   */
  CLERK_AUTHORIZED_PARTIES: clerkAuthorizedParties.default([]),
  /**
   * The `iss` of the Clerk instance's session tokens (its Frontend API URL): a token signed with the key
   * but naming another issuer is refused. Default: the one CLERK_PUBLISHABLE_KEY names; with neither
   * set the control plane does not start, rather than take any issuer.
   */
  CLERK_ISSUER: clerkIssuer.optional(),
  PLATFORM_ADMIN_USER_IDS: commaList.default([]),
  VANTAGEEDGE_DEV_MODE: booleanFlag.default(false),
  /** The built web console the control plane serves at /console (relative to the working directory). */
  CONSOLE_DIR: z.string().min(1).default('dist/console'),
  /** Origin targets and OIDC jwks_url naming a literal address in these ranges are refused (400). */
  ORIGIN_BLOCKED_CIDRS: originBlockedCidrsSetting,
  /** PLATFORM_BASE_DOMAINS (or GATEWAY_BASE_DOMAINS): read with platformBaseDomains(). */
  ...platformBaseDomainSettings,
  /**
   * Labels no tenant may take as its subdomain on create or rename (409); tenants that hold one keep it.
   * `default` in the list stands for the built-in list (domain/reserved-subdomains.ts).
   */
  RESERVED_SUBDOMAINS: reservedSubdomainsSetting,
  /** DNS servers for custom-domain ownership proofs; unset: the system's resolvers. */
  DNS_RESOLVER: commaList
    .pipe(
      z
        .array(
          z
            .string()
            .refine(isDnsServer, 'must be comma-separated ip or ip:port (e.g. 127.0.0.1:5353, [::1]:53)'),
        )
        .min(1),
    )
    .optional(),
  ...tenantLimitSettings,
  /**
   * How long each statement of a GET /api/v1/usage read may run; past it the read is a 422
   * limit_exceeded asking for a shorter range (a tenant's counts can be millions of rows a month).
   */
  USAGE_QUERY_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(5_000),
  /**
   * How long each statement of an admin read (lists, audit log, config history, the event-store reads of
   * a config at a position and of explain) may run; 0: no limit.
   */
  CONTROL_PLANE_READ_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(0).max(600_000).default(5_000),
  /**
   * How long a request waits for a connection of the PostgreSQL pool (every one busy: PostgreSQL slow
   * or stalled) or for a new one to connect; past it 503 store_unavailable.
   */
  CONTROL_PLANE_POOL_WAIT_MS: z.coerce.number().int().min(1).max(600_000).default(DEFAULT_POOL_WAIT_MS),
  ...postgresLivenessSettings,
  /**
   * Bytes of config one tenant's whole-config reads (…/config, …/config/document, …/config/diff,
   * explain, plan and apply, whose document counts 20 times its bytes) may go through per minute in one
   * process (0: no limit): config-read-budget.ts.
   */
  CONTROL_PLANE_TENANT_CONFIG_READ_BYTES_PER_MINUTE: z.coerce
    .number()
    .int()
    .min(0)
    .max(2 ** 40)
    .default(DEFAULT_CONFIG_READ_BYTES_PER_MINUTE),
  /**
   * The snapshot budget: a command that would take a tenant's gateway snapshot over this percent of the
   * snapshot bus's limits is refused (commands/snapshot-guard.ts). The bus's limit is the projector's
   * and the gateways' SNAPSHOT_MAX_MESSAGE_BYTES: set the same value here.
   */
  ...snapshotBudgetSettings,
  SNAPSHOT_MAX_MESSAGE_BYTES: snapshotBusSettings.SNAPSHOT_MAX_MESSAGE_BYTES,
  /**
   * Admin API rate limits (token buckets; a per-minute rate of 0 turns one off): commands per tenant,
   * requests per caller. Shared in Redis by every replica, per replica in memory while Redis fails.
   */
  ...adminRateLimitSettings,
};

/** `1.2.3.4`, `1.2.3.4:53`, `::1` or `[::1]:53`: the server forms node:dns accepts. */
function isDnsServer(value: string): boolean {
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(value);
  if (bracketed) return isIP(bracketed[1] ?? '') === 6 && validPort(bracketed[2]);
  if (isIP(value) !== 0) return true;
  const hostPort = /^([^:]+):(\d{1,5})$/.exec(value);
  return hostPort !== null && isIP(hostPort[1] ?? '') === 4 && validPort(hostPort[2]);
}

function validPort(port: string | undefined): boolean {
  return port === undefined || (Number(port) >= 1 && Number(port) <= 65_535);
}

export type ControlPlaneSettings = z.infer<z.ZodObject<typeof controlPlaneSettings>>;

/**
 * A statement that waits on purpose (a read up to its statement timeout, a config change for the one
 * before it) must not meet the deadline of a dead connection first: it would be answered 503
 * store_unavailable instead of its own answer.
 */
function assertStatementDeadline(settings: ControlPlaneSettings): void {
  const deadline = settings.POSTGRES_STATEMENT_DEADLINE_MS;
  if (deadline === 0) return;
  const waits = {
    CONTROL_PLANE_READ_STATEMENT_TIMEOUT_MS: settings.CONTROL_PLANE_READ_STATEMENT_TIMEOUT_MS,
    USAGE_QUERY_TIMEOUT_MS: settings.USAGE_QUERY_TIMEOUT_MS,
    'the config change lock wait': CONFIG_CHANGE_WAIT_MS,
  };
  for (const [name, waitMs] of Object.entries(waits)) {
    if (waitMs >= deadline) {
      throw new SettingsError([
        { setting: 'POSTGRES_STATEMENT_DEADLINE_MS', issue: `must be 0 or more than ${name} (${waitMs} ms)` },
      ]);
    }
  }
}

/**
 * How long after SIGTERM the control plane exits whatever its stop is doing: the drain, the shutdown
 * timeout for requests in flight, then up to 10 s to close the event store, pools, Redis and telemetry. A
 * supervisor's grace period must be longer (docker-compose.yml).
 */
export function controlPlaneStopDeadlineSeconds(
  settings: Pick<
    ControlPlaneSettings,
    'CONTROL_PLANE_DRAIN_SECONDS' | 'CONTROL_PLANE_SHUTDOWN_TIMEOUT_SECONDS'
  >,
): number {
  return settings.CONTROL_PLANE_DRAIN_SECONDS + settings.CONTROL_PLANE_SHUTDOWN_TIMEOUT_SECONDS + 10;
}

/** Rules across settings that a flat shape cannot express. */
export function assertControlPlaneSettings(settings: ControlPlaneSettings): void {
  const devSecrets = developmentSecretProblems(settings);
  if (devSecrets.length > 0) throw new SettingsError(devSecrets);
  if (settings.CONTROL_PLANE_REQUEST_TIMEOUT_MS < settings.CONTROL_PLANE_HEADERS_TIMEOUT_MS) {
    throw new SettingsError([
      {
        setting: 'CONTROL_PLANE_REQUEST_TIMEOUT_MS',
        issue: 'must not be less than CONTROL_PLANE_HEADERS_TIMEOUT_MS',
      },
    ]);
  }
  assertStatementDeadline(settings);
  assertDistinctListeners([
    {
      host: settings.CONTROL_PLANE_HOST,
      port: settings.CONTROL_PLANE_PORT,
      portSetting: 'CONTROL_PLANE_PORT',
    },
    {
      host: settings.CONTROL_PLANE_METRICS_HOST,
      port: settings.CONTROL_PLANE_METRICS_PORT,
      portSetting: 'CONTROL_PLANE_METRICS_PORT',
    },
  ]);
  if (!settings.CLERK_JWT_KEY && !settings.CLERK_SECRET_KEY) {
    throw new SettingsError([
      { setting: 'CLERK_JWT_KEY', issue: 'is required (or CLERK_SECRET_KEY to verify through Clerk’s JWKS)' },
    ]);
  }
  if (!settings.CLERK_JWT_KEY && !settings.CLERK_PUBLISHABLE_KEY) {
    throw new SettingsError([
      { setting: 'CLERK_PUBLISHABLE_KEY', issue: 'is required with CLERK_SECRET_KEY' },
    ]);
  }
  if (
    settings.CLERK_AUTHORIZED_PARTIES.length > 0 &&
    settings.CONTROL_PLANE_AUTHORIZED_PARTIES.length === 0
  ) {
    // The deployment's environment names the tenants' apps for the gateways: left without a list of its
    // own, the admin API would take any azp, a token a tenant's page obtained for its visitor included.
    throw new SettingsError([
      {
        setting: 'CONTROL_PLANE_AUTHORIZED_PARTIES',
        issue:
          "is required when CLERK_AUTHORIZED_PARTIES is set: the console's origins (CLERK_AUTHORIZED_PARTIES lists the apps whose tokens the gateways take, never the admin API)",
      },
    ]);
  }
  if (clerkIssuerOf(settings) === undefined) {
    throw new SettingsError([
      {
        setting: 'CLERK_ISSUER',
        issue:
          'is required: the Frontend API URL of your Clerk instance (the iss of its tokens, e.g. https://clerk.example.com), or set CLERK_PUBLISHABLE_KEY, which names it',
      },
    ]);
  }
}
