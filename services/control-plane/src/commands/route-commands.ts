import { randomUUID } from 'node:crypto';
import { DEFAULT_PLATFORM_BASE_DOMAINS } from '@vantageedge/shared/config/settings';
import { type RouteState, streamName } from '@vantageedge/shared/domain/events';
import { tenantDomainsDecider } from '../domain/custom-domain.js';
import { DomainError } from '../domain/decision.js';
import { type Route, type RouteCommand, routeDecider } from '../domain/route.js';
import { ApiError, notFound } from '../http/errors.js';
import type { CreateRouteBody, UpdateRouteBody } from '../schemas/requests.js';
import type { RouteResource } from '../schemas/resources.js';
import {
  type CommandContext,
  type CommandDeps,
  type CommandOutcome,
  eventMetadata,
  requireAccess,
  tenantOf,
} from './context.js';
import { fold, type HandledCommand, handleCommand } from './handle-command.js';
import { requireLiveTenant, requireOriginOfTenant, requireWritableResource } from './lookups.js';
import { requireRoomFor, requireRouteWithinLimits, requireShortStrings } from './tenant-limits.js';
import { routeView } from './views.js';

function outcome(result: HandledCommand<Route>): CommandOutcome<RouteResource> {
  if (result.state.status === 'absent' || result.revision === null || result.position === null) {
    throw notFound('route');
  }
  return { resource: routeView(result.state), revision: result.revision, position: result.position };
}

export async function createRoute(
  deps: CommandDeps,
  ctx: CommandContext,
  body: CreateRouteBody,
): Promise<CommandOutcome<RouteResource>> {
  await requireAccess(deps, ctx.caller, body.tenant_id, 'write');
  await requireLiveTenant(deps, body.tenant_id);
  if (body.origin_id !== null) await requireOriginOfTenant(deps, ctx, body.origin_id, body.tenant_id);
  requireShortStrings(deps, body);
  requireRouteWithinLimits(deps, body);
  await requireSplitOriginsOfTenant(deps, ctx, body.traffic_split, body.tenant_id);
  await requireHostsOfTenant(deps, body.match?.hosts ?? [], body.tenant_id);
  await requireRoomFor(deps, 'routes', body.tenant_id);
  const routeId = randomUUID();
  const { tenant_id, ...config } = body;
  const result = await handleCommand({
    store: deps.store,
    stream: streamName.route(routeId),
    decider: routeDecider,
    metadata: () => eventMetadata(deps, ctx, tenant_id),
    command: () => ({ type: 'CreateRoute' as const, route: { route_id: routeId, tenant_id, ...config } }),
  });
  return outcome(result);
}

export async function updateRoute(
  deps: CommandDeps,
  ctx: CommandContext,
  routeId: string,
  body: UpdateRouteBody,
): Promise<CommandOutcome<RouteResource>> {
  const result = await handleCommand({
    store: deps.store,
    stream: streamName.route(routeId),
    decider: routeDecider,
    ifMatch: ctx.ifMatch,
    metadata: (state) => eventMetadata(deps, ctx, tenantOf(state)),
    command: async (state): Promise<RouteCommand> => {
      const route = await requireWritableResource(deps, ctx, state, 'route');
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
      return { type: 'UpdateRoute', changes: body };
    },
  });
  return outcome(result);
}

export async function deleteRoute(
  deps: CommandDeps,
  ctx: CommandContext,
  routeId: string,
): Promise<CommandOutcome<RouteResource>> {
  const result = await handleCommand({
    store: deps.store,
    stream: streamName.route(routeId),
    decider: routeDecider,
    ifMatch: ctx.ifMatch,
    metadata: (state) => eventMetadata(deps, ctx, tenantOf(state)),
    command: async (state): Promise<RouteCommand> => {
      await requireWritableResource(deps, ctx, state, 'route');
      return { type: 'DeleteRoute' };
    },
  });
  return outcome(result);
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
      if (error instanceof ApiError) {
        throw new ApiError(
          error.status,
          error.code,
          error.message,
          error.details.map((detail) => ({ ...detail, field: `traffic_split.origins.${index}.origin_id` })),
        );
      }
      throw error;
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
  const { tenant, domains } = fold(
    tenantDomainsDecider,
    await deps.store.readStream(streamName.tenant(tenantId)),
  );
  if (tenant.status !== 'active') return; // requireLiveTenant / the route's own checks answer this
  const baseDomains = deps.customDomains?.baseDomains ?? DEFAULT_PLATFORM_BASE_DOMAINS;
  const own = new Set(baseDomains.map((base) => `${tenant.data.subdomain}.${base}`));
  for (const domain of domains.keys()) own.add(domain);
  hosts.forEach((host, index) => {
    if (!own.has(host)) {
      throw new DomainError(
        'invalid',
        `${host} is not a host of this tenant (its hosts: ${[...own].join(', ')})`,
        `match.hosts.${index}`,
      );
    }
  });
}
