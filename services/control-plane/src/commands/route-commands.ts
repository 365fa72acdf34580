import { randomUUID } from 'node:crypto';
import { type RouteState, streamName } from '@vantageedge/shared/domain/events';
import type { RouteMatchFields } from '@vantageedge/shared/routing/route-match-key';
import { DEFAULT_PLATFORM_BASE_DOMAINS } from '@vantageedge/shared/settings/common-settings';
import { withStoredRouteCredentials } from '../domain/credential-headers.js';
import { tenantDomainsDecider } from '../domain/custom-domain.js';
import { DomainError, invalid } from '../domain/errors.js';
import { type RouteCommand, routeDecider } from '../domain/route.js';
import {
  type RouteConnects,
  requireAppliedConnectTimeout,
  routeOriginIds,
} from '../domain/route-connect-timeouts.js';
import { distinctMatchConditions, duplicateRoute, sameMatchAs } from '../domain/route-match.js';
import type { CreateRouteBody, UpdateRouteBody } from '../schemas/requests.js';
import type { RouteResource } from '../schemas/resources.js';
import { changeResource } from './change-resource.js';
import {
  type CommandContext,
  type CommandDeps,
  type CommandOutcome,
  eventMetadata,
  requireAccess,
  tenantOf,
} from './context.js';
import { handleCommand } from './handle-command.js';
import { requireLiveTenant, requireOriginOfTenant } from './lookups.js';
import { outcomeOf } from './outcome.js';
import { foldStream } from './stream-folds.js';
import {
  requireMatchConditionsWithinLimit,
  requireRoomFor,
  requireRouteWithinLimits,
  requireShortStrings,
  withCountedCreate,
} from './tenant-limits.js';
import { routeView } from './views.js';

export async function createRoute(
  deps: CommandDeps,
  ctx: CommandContext,
  body: CreateRouteBody,
): Promise<CommandOutcome<RouteResource>> {
  await requireAccess(deps, ctx.caller, body.tenant_id, 'write');
  await requireLiveTenant(deps, body.tenant_id);
  // A new route has no stored credential: the <redacted> placeholder is a 400 naming the header or
  // query parameter.
  withStoredRouteCredentials(body, null);
  return withCountedCreate(deps, ctx.caller, body.tenant_id, async () => {
    await requireNewRouteFits(deps, ctx, body);
    const routeId = randomUUID();
    const { tenant_id, ...config } = body;
    const result = await handleCommand({
      store: deps.store,
      snapshotGuard: deps.snapshotGuard,
      commandBudget: deps.commandBudget,
      stream: streamName.route(routeId),
      decider: routeDecider,
      metadata: () => eventMetadata(deps, ctx, tenant_id),
      command: (): RouteCommand => ({ type: 'Create', data: { route_id: routeId, tenant_id, ...config } }),
    });
    return outcomeOf('route', result, routeView);
  });
}

export async function updateRoute(
  deps: CommandDeps,
  ctx: CommandContext,
  routeId: string,
  patch: UpdateRouteBody,
): Promise<CommandOutcome<RouteResource>> {
  // A new match is compared with the tenant's other routes, which live in streams of their own: under
  // the tenant's lock (changeResource takes it), as a create's is, so routes changed at once are each
  // compared with the others.
  const result = await changeResource(deps, ctx, {
    stream: streamName.route(routeId),
    decider: routeDecider,
    what: 'route',
    command: async (route): Promise<RouteCommand> => {
      // The <redacted> placeholder of a credential header or query parameter keeps the value this
      // route has for it.
      const body = withStoredRouteCredentials(patch, route);
      requireShortStrings(deps, body);
      requireRouteWithinLimits(deps, { ...route, ...body });
      if (body.origin_id != null && body.origin_id !== route.origin_id) {
        await requireOriginOfTenant(deps, ctx, body.origin_id, route.tenant_id);
      }
      if (body.traffic_split != null) {
        await requireSplitOriginsOfTenant(deps, ctx, body.traffic_split, route.tenant_id);
      }
      if (body.match?.hosts !== undefined)
        await requireHostsOfTenant(deps, body.match.hosts, route.tenant_id);
      if (MATCH_FIELDS.some((field) => body[field] !== undefined)) {
        const next: RouteMatchFields = {
          path_pattern: body.path_pattern ?? route.path_pattern,
          methods: body.methods ?? route.methods,
          priority: body.priority ?? route.priority,
          match: body.match === undefined ? route.match : body.match,
        };
        await requireMatchOfItsOwn(deps, route.tenant_id, next, route.route_id);
      }
      if (CONNECT_FIELDS.some((field) => body[field] !== undefined)) {
        const next: RouteConnects = {
          origin_id: body.origin_id === undefined ? route.origin_id : body.origin_id,
          timeouts: body.timeouts === undefined ? route.timeouts : body.timeouts,
          traffic_split: body.traffic_split === undefined ? route.traffic_split : body.traffic_split,
        };
        await requireConnectTimeoutApplied(deps, route.tenant_id, next, route.route_id);
      }
      return { type: 'Update', changes: body };
    },
  });
  return outcomeOf('route', result, routeView);
}

export async function deleteRoute(
  deps: CommandDeps,
  ctx: CommandContext,
  routeId: string,
): Promise<CommandOutcome<RouteResource>> {
  const result = await changeResource(deps, ctx, {
    stream: streamName.route(routeId),
    decider: routeDecider,
    what: 'route',
    command: (): RouteCommand => ({ type: 'Delete' }),
  });
  const tenantId = tenantOf(result.state);
  // After the delete is recorded (a refused delete keeps its generation). Best effort: the route is
  // deleted either way, a store outage only leaves its one field behind.
  if (tenantId !== null) await deps.cachePurger?.forgetRoute?.(tenantId, routeId).catch(() => {});
  return outcomeOf('route', result, routeView);
}

/**
 * The checks a route that comes into being makes (created, or restored under its old id): its origins
 * and hosts are the tenant's own, and it fits the tenant's limits.
 */
export async function requireNewRouteFits(
  deps: CommandDeps,
  ctx: CommandContext,
  route: Omit<RouteState, 'route_id'>,
): Promise<void> {
  if (route.origin_id !== null) await requireOriginOfTenant(deps, ctx, route.origin_id, route.tenant_id);
  requireShortStrings(deps, route);
  requireRouteWithinLimits(deps, route);
  await requireSplitOriginsOfTenant(deps, ctx, route.traffic_split, route.tenant_id);
  await requireHostsOfTenant(deps, route.match?.hosts ?? [], route.tenant_id);
  await requireRoomFor(deps, 'routes', route.tenant_id);
  await requireMatchOfItsOwn(deps, route.tenant_id, route);
  await requireConnectTimeoutApplied(deps, route.tenant_id, route);
}

const MATCH_FIELDS = ['path_pattern', 'methods', 'priority', 'match'] as const;
/** What decides which origins a route's connect_ms applies to. */
const CONNECT_FIELDS = ['timeouts', 'origin_id', 'traffic_split'] as const;

/**
 * The route's connect_ms is one a gateway applies: its origins' routes (`routeId`: the route itself, as
 * it was) keep within MAX_ROUTE_CONNECT_TIMEOUTS_PER_ORIGIN values. A config apply's or rollback's routes
 * are checked as a whole document.
 */
async function requireConnectTimeoutApplied(
  deps: Pick<CommandDeps, 'resourceCounts' | 'countedByPlan'>,
  tenantId: string,
  route: RouteConnects,
  routeId?: string,
): Promise<void> {
  if (deps.countedByPlan || route.timeouts?.connect_ms === undefined) return;
  const live = await deps.resourceCounts.routes(tenantId);
  const others: RouteConnects[] = live.filter((other) => other.id !== routeId);
  requireAppliedConnectTimeout(live, [...others, route], route, 'timeouts.connect_ms', routeOriginIds);
}

/**
 * No other live route of the tenant (`routeId`: the route itself) is matched as `route` is: the
 * gateway would always choose one of them and never the other (409 `duplicate_route`, naming it); and
 * the tenant's routes stay within TENANT_MAX_MATCH_CONDITIONS. A config apply's or rollback's routes
 * are checked as a whole document, not step by step (a step may pass through a duplicate that a later
 * step removes).
 */
async function requireMatchOfItsOwn(
  deps: Pick<CommandDeps, 'resourceCounts' | 'countedByPlan' | 'tenantLimits'>,
  tenantId: string,
  route: RouteMatchFields,
  routeId?: string,
): Promise<void> {
  if (deps.countedByPlan) return;
  const live = await deps.resourceCounts.routes(tenantId);
  const others = live.filter((other) => other.id !== routeId);
  const same = sameMatchAs(others, route);
  if (same !== undefined) throw duplicateRoute(`route ${same.id}`, 'path_pattern');
  const next = distinctMatchConditions([...others, route]).size;
  requireMatchConditionsWithinLimit(deps, 'match', next, distinctMatchConditions(live).size);
}

/** Every origin a traffic split names is a live origin of the route's tenant (field: its entry). */
async function requireSplitOriginsOfTenant(
  deps: CommandDeps,
  ctx: CommandContext,
  split: RouteState['traffic_split'] | undefined,
  tenantId: string,
): Promise<void> {
  for (const [index, entry] of (split?.origins ?? []).entries()) {
    try {
      await requireOriginOfTenant(deps, ctx, entry.origin_id, tenantId);
    } catch (error) {
      if (!(error instanceof DomainError) || error.field !== 'origin_id') throw error;
      const field = `traffic_split.origins.${index}.origin_id`;
      throw new DomainError(error.kind, error.message, field, {
        issue: error.issues[0]?.issue ?? error.message,
        ...(error.code === undefined ? {} : { code: error.code }),
      });
    }
  }
}

/**
 * A route's `match.hosts` are hosts of its own tenant: `<subdomain>.<base domain>` or a custom domain it
 * claimed (a pending one serves once verified). Another tenant's host would never reach this route.
 */
async function requireHostsOfTenant(
  deps: CommandDeps,
  hosts: readonly string[],
  tenantId: string,
): Promise<void> {
  if (hosts.length === 0) return;
  const { tenant, domains } = await foldStream(
    deps.store,
    streamName.tenant(tenantId),
    tenantDomainsDecider,
    deps.streamFolds,
  );
  if (tenant.status !== 'active') return; // requireLiveTenant / the route's own checks answer this
  const baseDomains = deps.customDomains?.baseDomains ?? DEFAULT_PLATFORM_BASE_DOMAINS;
  const own = new Set(baseDomains.map((base) => `${tenant.data.subdomain}.${base}`));
  for (const domain of domains.keys()) own.add(domain);
  hosts.forEach((host, index) => {
    if (!own.has(host)) {
      throw invalid(
        `${host} is not a host of this tenant (its hosts: ${[...own].join(', ')})`,
        `match.hosts.${index}`,
      );
    }
  });
}
