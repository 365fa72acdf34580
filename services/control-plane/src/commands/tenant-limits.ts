import {
  DEFAULT_TENANT_CACHE_MAX_BYTES,
  type OriginConfig,
  type RouteConfig,
  TENANT_CACHE_MAX_BYTES_LIMIT,
  TENANT_CACHE_MIN_BYTES,
} from '@vantageedge/shared/domain/gateway-config';
import { z } from 'zod';
import type { Caller } from '../auth/caller.js';
import type { HeldLock } from '../config-history/config-change-lock.js';
import { DomainError, forbidden, notFound } from '../domain/errors.js';
import { addMatchConditions, distinctMatchConditions } from '../domain/route-match.js';
import { type CommandDeps, requireAccess } from './context.js';
import { requireLiveTenant } from './lookups.js';

/**
 * How much configuration one tenant may create. Every gateway replica compiles every tenant's whole
 * config on each snapshot, and probes every target, so one tenant's size is every replica's cost.
 * Defaults below; each is overridable per deployment by its setting (TENANT_MAX_*).
 */
export interface TenantLimits {
  routes: number;
  origins: number;
  targetsPerOrigin: number;
  /**
   * Targets across all of a tenant's origins: each is a connection pool, health state, metric series
   * and POINTS_PER_TARGET hash-ring points on every replica.
   */
  targets: number;
  /** Active API keys (not revoked, not expired), a rotated key still in its grace period included. */
  apiKeys: number;
  /** Members (users) of the tenant, removed ones not counted. */
  members: number;
  customDomains: number;
  /**
   * TLS certificates (each up to 32 KiB of chain plus its sealed key): every one is in the tenant's
   * snapshot, which every replica decodes, so their number bounds the snapshot's size.
   */
  certificates: number;
  /** Longest string anywhere in a tenant's configuration (path patterns, URLs, domains, JWK fields, …). */
  stringLength: number;
  /** Largest tenant `settings` object, as JSON bytes (service JWKs, OIDC, custom domains, limits). */
  settingsBytes: number;
  /** Largest route, as JSON bytes: its policies' lists (CIDRs, headers, CORS origins, a fixed body, …). */
  routeBytes: number;
  /**
   * Distinct header and query `match` conditions across the tenant's routes (one shared by several
   * routes counts once): a gateway replica may test each of them for one request, on its event loop.
   */
  matchConditions: number;
  /**
   * The largest `settings.cache.max_bytes` a tenant's own admins may set: the bound is the tenant's
   * share of the shared Redis, so more than this is the platform admins' decision.
   */
  cacheBytes: number;
}

export const DEFAULT_TENANT_LIMITS: TenantLimits = {
  routes: 1000,
  origins: 100,
  targetsPerOrigin: 100,
  targets: 1000,
  apiKeys: 1000,
  members: 1000,
  customDomains: 10,
  certificates: 20,
  stringLength: 2048,
  settingsBytes: 32 * 1024,
  routeBytes: 32 * 1024,
  matchConditions: 500,
  cacheBytes: DEFAULT_TENANT_CACHE_MAX_BYTES,
};

const count = (max: number, fallback: number) => z.coerce.number().int().min(1).max(max).default(fallback);

/** The settings that override the defaults (validated where the control plane loads its settings). */
export const tenantLimitSettings = {
  TENANT_MAX_ROUTES: count(1_000_000, DEFAULT_TENANT_LIMITS.routes),
  TENANT_MAX_ORIGINS: count(100_000, DEFAULT_TENANT_LIMITS.origins),
  /** At most 100: the snapshot format's own bound. */
  TENANT_MAX_TARGETS_PER_ORIGIN: count(100, DEFAULT_TENANT_LIMITS.targetsPerOrigin),
  TENANT_MAX_TARGETS: count(1_000_000, DEFAULT_TENANT_LIMITS.targets),
  TENANT_MAX_API_KEYS: count(1_000_000, DEFAULT_TENANT_LIMITS.apiKeys),
  TENANT_MAX_MEMBERS: count(100_000, DEFAULT_TENANT_LIMITS.members),
  /** At most 50: the snapshot format's own bound. */
  TENANT_MAX_CUSTOM_DOMAINS: count(50, DEFAULT_TENANT_LIMITS.customDomains),
  /**
   * At most 100 (two per custom domain at its maximum, for renewals): 100 certificates of the largest
   * size keep a snapshot far under what gateways inflate (MAX_DECODED_SNAPSHOT_BYTES).
   */
  TENANT_MAX_CERTIFICATES: count(100, DEFAULT_TENANT_LIMITS.certificates),
  TENANT_MAX_STRING_LENGTH: count(65_536, DEFAULT_TENANT_LIMITS.stringLength),
  TENANT_MAX_SETTINGS_BYTES: count(1_048_576, DEFAULT_TENANT_LIMITS.settingsBytes),
  TENANT_MAX_ROUTE_BYTES: count(1_048_576, DEFAULT_TENANT_LIMITS.routeBytes),
  TENANT_MAX_MATCH_CONDITIONS: count(100_000, DEFAULT_TENANT_LIMITS.matchConditions),
  /** Within the range of `settings.cache.max_bytes` itself (1 KiB–4 GiB). */
  TENANT_MAX_CACHE_BYTES: z.coerce
    .number()
    .int()
    .min(TENANT_CACHE_MIN_BYTES)
    .max(TENANT_CACHE_MAX_BYTES_LIMIT)
    .default(DEFAULT_TENANT_LIMITS.cacheBytes),
};

type TenantLimitSettings = z.infer<z.ZodObject<typeof tenantLimitSettings>>;

export function tenantLimitsFromSettings(settings: TenantLimitSettings): TenantLimits {
  return {
    routes: settings.TENANT_MAX_ROUTES,
    origins: settings.TENANT_MAX_ORIGINS,
    targetsPerOrigin: settings.TENANT_MAX_TARGETS_PER_ORIGIN,
    targets: settings.TENANT_MAX_TARGETS,
    apiKeys: settings.TENANT_MAX_API_KEYS,
    members: settings.TENANT_MAX_MEMBERS,
    customDomains: settings.TENANT_MAX_CUSTOM_DOMAINS,
    certificates: settings.TENANT_MAX_CERTIFICATES,
    stringLength: settings.TENANT_MAX_STRING_LENGTH,
    settingsBytes: settings.TENANT_MAX_SETTINGS_BYTES,
    routeBytes: settings.TENANT_MAX_ROUTE_BYTES,
    matchConditions: settings.TENANT_MAX_MATCH_CONDITIONS,
    cacheBytes: settings.TENANT_MAX_CACHE_BYTES,
  };
}

/** `limit_exceeded` (422), naming the field (or the collection) that is over its limit. */
export function limitExceeded(field: string, issue: string): DomainError {
  return new DomainError('unprocessable', `a tenant limit is exceeded: ${field} ${issue}`, field, {
    issue,
    code: 'limit_exceeded',
  });
}

const limitsOf = (deps: Pick<CommandDeps, 'tenantLimits'>): TenantLimits =>
  deps.tenantLimits ?? DEFAULT_TENANT_LIMITS;

export type LimitedCollection = 'routes' | 'origins' | 'api_keys' | 'certificates';

/**
 * How many live routes / origins / active API keys / certificates a tenant has, from the event log
 * (tenant-resource-counts.ts). Counted inside `withCountedCreate`, so a count and the create's append
 * are one decision.
 */
export interface TenantResourceCounts {
  count(collection: LimitedCollection, tenantId: string): Promise<number>;
  /** Targets of the tenant's live origins, `exceptOriginId`'s not counted. */
  targets(tenantId: string, exceptOriginId?: string): Promise<number>;
  /** The tenant's live routes (what a new route's match is compared with). */
  routes(tenantId: string): Promise<readonly RouteConfig[]>;
  /** The tenant's live origins (what a certificate's deletion is checked against). */
  origins(tenantId: string): Promise<readonly OriginConfig[]>;
}

const SETTING: Record<LimitedCollection, [keyof TenantLimits, string]> = {
  routes: ['routes', 'TENANT_MAX_ROUTES'],
  origins: ['origins', 'TENANT_MAX_ORIGINS'],
  api_keys: ['apiKeys', 'TENANT_MAX_API_KEYS'],
  certificates: ['certificates', 'TENANT_MAX_CERTIFICATES'],
};

/** The tenant's config change lock (config-change-lock.ts), across every control-plane process. */
export interface TenantLock {
  exclusively<T>(tenantId: string, work: (lock: HeldLock) => Promise<T>): Promise<T>;
}

/**
 * Runs `work` as the tenant's only config change, create a counted limit bounds, or deletion in every
 * control-plane process (the lock config applies and rollbacks hold); a custom domain claim, counted in
 * the tenant's own stream, takes it too, so claims sent at once are not raced on that stream's
 * revision. Without a lock (tests of single commands) it simply runs.
 */
export function underTenantLock<T>(
  deps: Pick<CommandDeps, 'tenantLock'>,
  tenantId: string,
  work: () => Promise<T>,
): Promise<T> {
  if (deps.tenantLock === undefined) return work();
  return deps.tenantLock.exclusively(tenantId, () => work());
}

/**
 * Runs a command that a counted limit bounds — its count and its append — as the tenant's only one in
 * every control-plane process, under the lock config applies and rollbacks hold: creates sent at once,
 * or beside an apply, are each counted with the ones before them. Besides these the tenant's deletion
 * and every command on an existing resource of the tenant take it (change-resource.ts), and one waits
 * at most as long as an apply waits (409 `conflict`). The tenant is found live under the lock, so a resource in a stream
 * of its own is never created after its tenant's deletion; a deleted one is `not_found` naming
 * `tenantField`, the part of the request that named the tenant (an update's: the path's resource id).
 * The caller's write access, granted before the wait, is asked again once the lock is held: a removal
 * or demotion recorded while the create waited counts (404 `not_found`, or 403 for a demotion), as it
 * does for the commands that change a resource (change-resource.ts).
 */
export function withCountedCreate<T>(
  deps: Pick<CommandDeps, 'tenantLock' | 'countedByPlan' | 'store' | 'streamFolds' | 'authorizer'>,
  caller: Caller,
  tenantId: string,
  create: () => Promise<T>,
  tenantField: 'tenant_id' | 'id' = 'tenant_id',
): Promise<T> {
  // A config apply's or rollback's steps run under the lock already, their access just checked.
  if (deps.countedByPlan) {
    return requireLiveTenant(deps, tenantId, tenantField).then(() => create());
  }
  return underTenantLock(deps, tenantId, async () => {
    // Charged once already, when access was first granted.
    await requireAccess({ ...deps, commandBudget: undefined }, caller, tenantId, 'write', () =>
      notFound('tenant', tenantField),
    );
    return create();
  });
}

/**
 * Before creating one more route / origin / API key / certificate: 422 when the tenant already has its
 * maximum (`advice`, if given, ends the message: what the caller can do instead).
 */
export async function requireRoomFor(
  deps: Pick<CommandDeps, 'resourceCounts' | 'tenantLimits' | 'countedByPlan'>,
  collection: LimitedCollection,
  tenantId: string,
  advice?: string,
): Promise<void> {
  // A config apply's or rollback's origins and routes were counted from its document.
  if (deps.countedByPlan && (collection === 'origins' || collection === 'routes')) return;
  const [limitName, setting] = SETTING[collection];
  const max = limitsOf(deps)[limitName];
  const existing = await deps.resourceCounts.count(collection, tenantId);
  if (existing >= max) {
    const issue = `the tenant has ${existing}, the most allowed is ${max} (${setting})`;
    throw limitExceeded(collection, advice === undefined ? issue : `${issue}; ${advice}`);
  }
}

/**
 * Strings with a bound of their own, longer than a path or a URL: a fixed response's body (a maintenance
 * page, 64 KiB by its schema, and the route's TENANT_MAX_ROUTE_BYTES as a whole) and an origin's CA
 * certificates (64 KiB and 10 certificates by its schema).
 */
const STRINGS_BOUNDED_ELSEWHERE: ReadonlySet<string> = new Set([
  'fixed_response.body',
  'tls.ca_certificates',
]);

/** Every string in a request body within TENANT_MAX_STRING_LENGTH (field named by its JSON path). */
export function requireShortStrings(deps: Pick<CommandDeps, 'tenantLimits'>, body: unknown): void {
  const max = limitsOf(deps).stringLength;
  const visit = (value: unknown, path: string): void => {
    if (typeof value === 'string') {
      if (value.length > max && !STRINGS_BOUNDED_ELSEWHERE.has(path)) {
        throw limitExceeded(path || 'body', `is longer than ${max} characters (TENANT_MAX_STRING_LENGTH)`);
      }
    } else if (Array.isArray(value)) {
      for (const [i, item] of value.entries()) visit(item, path ? `${path}.${i}` : String(i));
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) {
        if (key.length > max) throw limitExceeded(path || 'body', `has a key longer than ${max} characters`);
        visit(item, path ? `${path}.${key}` : key);
      }
    }
  };
  visit(body, '');
}

/** Before claiming one more custom domain: 422 when the tenant already has TENANT_MAX_CUSTOM_DOMAINS. */
export function requireRoomForCustomDomain(deps: Pick<CommandDeps, 'tenantLimits'>, existing: number): void {
  const max = limitsOf(deps).customDomains;
  if (existing >= max) {
    throw limitExceeded(
      'custom_domains',
      `the tenant has ${existing}, the most allowed is ${max} (TENANT_MAX_CUSTOM_DOMAINS)`,
    );
  }
}

/**
 * Before adding one more member: 422 when the tenant already has TENANT_MAX_MEMBERS. `existing` is
 * counted from the tenant's stream the member is appended to, under the tenant's lock.
 */
export function requireRoomForMember(deps: Pick<CommandDeps, 'tenantLimits'>, existing: number): void {
  const max = limitsOf(deps).members;
  if (existing >= max) {
    throw limitExceeded(
      'members',
      `the tenant has ${existing}, the most allowed is ${max} (TENANT_MAX_MEMBERS)`,
    );
  }
}

/** An origin's targets within TENANT_MAX_TARGETS_PER_ORIGIN. */
export function requireTargetCount(
  deps: Pick<CommandDeps, 'tenantLimits'>,
  targets: readonly unknown[] | undefined,
): void {
  const max = limitsOf(deps).targetsPerOrigin;
  if (targets !== undefined && targets.length > max) {
    throw limitExceeded(
      'targets',
      `has ${targets.length} targets, the most allowed is ${max} (TENANT_MAX_TARGETS_PER_ORIGIN)`,
    );
  }
}

/**
 * An origin's `targets` (its new list, on create, update or restore) within TENANT_MAX_TARGETS with
 * the tenant's other origins' targets (from the event log, like the counts above). An update that
 * does not add targets (`currentTargets`: the origin's count now) is always allowed, so a tenant over
 * the limit from older events can trim its origins.
 */
export async function requireRoomForTargets(
  deps: Pick<CommandDeps, 'resourceCounts' | 'tenantLimits' | 'countedByPlan'>,
  tenantId: string,
  targets: number,
  originId?: string,
  currentTargets?: number,
): Promise<void> {
  if (deps.countedByPlan) return;
  if (currentTargets !== undefined && targets <= currentTargets) return;
  const max = limitsOf(deps).targets;
  const others = await deps.resourceCounts.targets(tenantId, originId);
  if (others + targets > max) {
    throw limitExceeded(
      'targets',
      `the tenant's origins would have ${others + targets} targets (${others} in its other origins), the most allowed is ${max} (TENANT_MAX_TARGETS)`,
    );
  }
}

/**
 * Tenant settings within TENANT_MAX_SETTINGS_BYTES. (Custom domains are no longer settings: the
 * domains endpoint counts them against TENANT_MAX_CUSTOM_DOMAINS, see requireRoomForCustomDomain.)
 */
export function requireSettingsWithinLimits(
  deps: Pick<CommandDeps, 'tenantLimits'>,
  settings: object | undefined,
): void {
  if (settings === undefined) return;
  const limits = limitsOf(deps);
  const bytes = Buffer.byteLength(JSON.stringify(settings));
  if (bytes > limits.settingsBytes) {
    throw limitExceeded(
      'settings',
      `is ${bytes} bytes as JSON, the most allowed is ${limits.settingsBytes} (TENANT_MAX_SETTINGS_BYTES)`,
    );
  }
}

/**
 * A tenant's cache bound (`settings.cache.max_bytes`, its share of the shared Redis) set by one of its
 * own admins: 403 above TENANT_MAX_CACHE_BYTES, unless the tenant already had at least as much (given
 * by a platform admin, or before the limit), so a tenant over it keeps or lowers what it has.
 */
export function requireCacheBoundAllowed(
  deps: Pick<CommandDeps, 'tenantLimits'>,
  caller: Caller,
  current: number | undefined,
  next: number | undefined,
): void {
  if (caller.isPlatformAdmin || next === undefined || next <= (current ?? 0)) return;
  const max = limitsOf(deps).cacheBytes;
  if (next > max) {
    throw forbidden(
      `only platform admins may set settings.cache.max_bytes above ${max} bytes (TENANT_MAX_CACHE_BYTES)`,
      'settings.cache.max_bytes',
      'platform admins only',
    );
  }
}

/**
 * A route (the whole route after an update, policies included) within TENANT_MAX_ROUTE_BYTES: every
 * replica compiles every route of every tenant, so a route's lists are bounded as a whole too.
 */
export function requireRouteWithinLimits(deps: Pick<CommandDeps, 'tenantLimits'>, route: object): void {
  const max = limitsOf(deps).routeBytes;
  const bytes = Buffer.byteLength(JSON.stringify(route));
  if (bytes > max) {
    throw limitExceeded(
      'route',
      `is ${bytes} bytes as JSON, the most allowed is ${max} (TENANT_MAX_ROUTE_BYTES)`,
    );
  }
}

/**
 * The tenant's distinct match conditions (`next`, once the change is made) within
 * TENANT_MAX_MATCH_CONDITIONS; only growing past it is refused (`now`: the tenant's count before), so a
 * tenant over it from before can still change its routes.
 */
export function requireMatchConditionsWithinLimit(
  deps: Pick<CommandDeps, 'tenantLimits'>,
  field: string,
  next: number,
  now: number,
): void {
  const max = limitsOf(deps).matchConditions;
  if (next > max && next > now) {
    throw limitExceeded(
      field,
      `the tenant's routes would have ${next} distinct header and query conditions, the most allowed is ${max} (TENANT_MAX_MATCH_CONDITIONS); share conditions between routes, or route by path`,
    );
  }
}

/**
 * A config document's routes (every route the tenant will have) within TENANT_MAX_MATCH_CONDITIONS,
 * given the routes it has now (`current`); the field is the entry that takes the count past the limit.
 */
export function requireDocumentMatchConditionsWithinLimit(
  deps: Pick<CommandDeps, 'tenantLimits'>,
  routes: ReadonlyArray<{ readonly match?: RouteConfig['match'] }>,
  current: ReadonlyArray<{ readonly match?: RouteConfig['match'] }>,
  /** The live routes the document leaves as they are (those outside its select_tags). */
  kept: ReadonlyArray<{ readonly match?: RouteConfig['match'] }> = [],
): void {
  const now = distinctMatchConditions(current).size;
  const conditions = distinctMatchConditions(kept);
  for (const [index, route] of routes.entries()) {
    addMatchConditions(conditions, route.match);
    requireMatchConditionsWithinLimit(deps, `routes.${index}.match`, conditions.size, now);
  }
}

/** How many origins, routes and targets (of all origins together) a tenant has, or a document gives it. */
export interface EntryCounts {
  origins: number;
  routes: number;
  targets: number;
}

/**
 * A config document's entry counts, read from the document as sent (validated or not): its entries are
 * counted before they are validated, whatever they are. An origin without a `targets` list has one (its url).
 */
export function documentEntryCounts(document: unknown): EntryCounts {
  const list = (value: unknown, key: string): readonly unknown[] => {
    const item =
      typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
    return Array.isArray(item) ? item : [];
  };
  const origins = list(document, 'origins');
  let targets = 0;
  for (const origin of origins) targets += list(origin, 'targets').length || 1;
  return { origins: origins.length, routes: list(document, 'routes').length, targets };
}

/**
 * A config document (every origin and route the tenant will have once it is applied, with those it
 * leaves as they are: `kept`, outside its select_tags) within TENANT_MAX_ORIGINS, TENANT_MAX_ROUTES and
 * TENANT_MAX_TARGETS, counted once before the plan's first step; only growing past a limit is refused,
 * so a document of a tenant over one from before applies.
 */
export function requireDocumentWithinLimits(
  deps: Pick<CommandDeps, 'tenantLimits'>,
  document: EntryCounts,
  current: EntryCounts,
  kept: EntryCounts = { origins: 0, routes: 0, targets: 0 },
): void {
  const limits = limitsOf(deps);
  const counts: Array<[field: string, key: keyof EntryCounts, max: number, setting: string, what: string]> = [
    ['origins', 'origins', limits.origins, 'TENANT_MAX_ORIGINS', 'origins'],
    ['routes', 'routes', limits.routes, 'TENANT_MAX_ROUTES', 'routes'],
    ['origins', 'targets', limits.targets, 'TENANT_MAX_TARGETS', 'targets in its origins'],
  ];
  for (const [field, key, max, setting, what] of counts) {
    const count = document[key] + kept[key];
    if (count > max && count > current[key]) {
      const others = kept[key] === 0 ? '' : ` and leaves ${kept[key]} outside its select_tags`;
      throw limitExceeded(
        field,
        `the document has ${document[key]} ${what}${others}, the most allowed is ${max} (${setting})`,
      );
    }
  }
}
