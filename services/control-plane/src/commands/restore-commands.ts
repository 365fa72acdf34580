import type { OriginState, RouteState } from '@vantageedge/shared/domain/events';
import { streamName } from '@vantageedge/shared/domain/events';
import type { Lifecycle } from '../domain/decision.js';
import { originDecider } from '../domain/origin.js';
import { restoreDecider } from '../domain/restore.js';
import { routeDecider } from '../domain/route.js';
import { notFound } from '../http/errors.js';
import type { OriginResource, RouteResource } from '../schemas/resources.js';
import {
  type CommandContext,
  type CommandDeps,
  type CommandOutcome,
  eventMetadata,
  requireAccess,
} from './context.js';
import { type HandledCommand, handleCommand } from './handle-command.js';
import { requireLiveTenant, requireOriginOfTenant } from './lookups.js';
import { requireRoomFor, requireShortStrings, requireTargetCount } from './tenant-limits.js';
import { originView, routeView } from './views.js';

/**
 * Re-creating a deleted origin or route under its own id, with the checks its create command makes
 * (write access, a live tenant, the tenant's limits, a live origin of the same tenant for a route).
 */

const restoreOriginDecider = restoreDecider<OriginState>(originDecider, {
  name: 'origin',
  created: 'OriginAdded',
});
const restoreRouteDecider = restoreDecider<RouteState>(routeDecider, {
  name: 'route',
  created: 'RouteCreated',
});

function outcomeOf<Data, Resource>(
  what: string,
  result: HandledCommand<Lifecycle<Data>>,
  view: (state: Extract<Lifecycle<Data>, { data: Data }>) => Resource,
): CommandOutcome<Resource> {
  const { state, revision, position } = result;
  if (state.status === 'absent' || revision === null || position === null) throw notFound(what);
  return { resource: view(state), revision, position };
}

export async function restoreOrigin(
  deps: CommandDeps,
  ctx: CommandContext,
  origin: OriginState,
): Promise<CommandOutcome<OriginResource>> {
  await requireAccess(deps, ctx.caller, origin.tenant_id, 'write');
  await requireLiveTenant(deps, origin.tenant_id);
  requireShortStrings(deps, origin);
  requireTargetCount(deps, origin.targets);
  await requireRoomFor(deps, 'origins', origin.tenant_id);
  const result = await handleCommand({
    store: deps.store,
    stream: streamName.origin(origin.origin_id),
    decider: restoreOriginDecider,
    metadata: () => eventMetadata(deps, ctx, origin.tenant_id),
    command: () => ({ type: 'Restore' as const, data: origin }),
  });
  return outcomeOf('origin', result, originView);
}

export async function restoreRoute(
  deps: CommandDeps,
  ctx: CommandContext,
  route: RouteState,
): Promise<CommandOutcome<RouteResource>> {
  await requireAccess(deps, ctx.caller, route.tenant_id, 'write');
  await requireLiveTenant(deps, route.tenant_id);
  await requireOriginOfTenant(deps, ctx, route.origin_id, route.tenant_id);
  requireShortStrings(deps, route);
  await requireRoomFor(deps, 'routes', route.tenant_id);
  const result = await handleCommand({
    store: deps.store,
    stream: streamName.route(route.route_id),
    decider: restoreRouteDecider,
    metadata: () => eventMetadata(deps, ctx, route.tenant_id),
    command: () => ({ type: 'Restore' as const, data: route }),
  });
  return outcomeOf('route', result, routeView);
}
