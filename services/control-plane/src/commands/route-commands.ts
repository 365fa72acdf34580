import { randomUUID } from 'node:crypto';
import { streamName } from '@vantageedge/shared/domain/events';
import { type RouteCommand, routeDecider } from '../domain/route.js';
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
import { handleCommand } from './handle-command.js';
import { requireLiveTenant, requireOriginOfTenant, requireWritableResource } from './lookups.js';
import { outcomeOf } from './outcome.js';
import { requireRoomFor, requireShortStrings } from './tenant-limits.js';
import { routeView } from './views.js';

export async function createRoute(
  deps: CommandDeps,
  ctx: CommandContext,
  body: CreateRouteBody,
): Promise<CommandOutcome<RouteResource>> {
  await requireAccess(deps, ctx.caller, body.tenant_id, 'write');
  await requireLiveTenant(deps, body.tenant_id);
  await requireOriginOfTenant(deps, ctx, body.origin_id, body.tenant_id);
  requireShortStrings(deps, body);
  await requireRoomFor(deps, 'routes', body.tenant_id);
  const routeId = randomUUID();
  const { tenant_id, ...config } = body;
  const result = await handleCommand({
    store: deps.store,
    stream: streamName.route(routeId),
    decider: routeDecider,
    metadata: () => eventMetadata(deps, ctx, tenant_id),
    command: (): RouteCommand => ({ type: 'Create', data: { route_id: routeId, tenant_id, ...config } }),
  });
  return outcomeOf('route', result, routeView);
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
      if (body.origin_id !== undefined && body.origin_id !== route.origin_id) {
        await requireOriginOfTenant(deps, ctx, body.origin_id, route.tenant_id);
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
  const result = await handleCommand({
    store: deps.store,
    stream: streamName.route(routeId),
    decider: routeDecider,
    ifMatch: ctx.ifMatch,
    metadata: (state) => eventMetadata(deps, ctx, tenantOf(state)),
    command: async (state): Promise<RouteCommand> => {
      await requireWritableResource(deps, ctx, state, 'route');
      return { type: 'Delete' };
    },
  });
  return outcomeOf('route', result, routeView);
}
